/*
 * budget.h: the response bytes every transfer given one budget may receive,
 * together (budget.c makes them: core.budget). The struct is counted: the
 * Lua handle holds one reference and each transfer given it another.
 */
#ifndef OWL_BUDGET_H
#define OWL_BUDGET_H

#include <stddef.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

typedef struct owl_budget {
  size_t limit;
  size_t used; /* only grows: a run's budget, not a rate */
  int refs;
} owl_budget;

void owl_budget_release(owl_budget *b);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
