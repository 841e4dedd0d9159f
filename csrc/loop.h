/*
 * loop.h: the multi loop (loop.c), as the primitives of flow.c use it.
 *
 * The loop runs transfers (transfer.h) and owns their scheduling: from the
 * moment a transfer is submitted until the loop reports it done, the loop
 * pins it with a registry reference, so it cannot be collected while libcurl
 * uses it.
 */
#ifndef OWL_LOOP_H
#define OWL_LOOP_H

#include "transfer.h"

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

typedef struct owl_loop owl_loop;

/* The open loop at idx; raises if it is not one or is closed. */
owl_loop *owl_loop_check(lua_State *L, int idx);

/* Hands the configured transfer at t_idx to the loop, which pins it and
 * starts it, or queues it while max_in_flight transfers run. */
void owl_loop_submit(lua_State *L, owl_loop *loop, int t_idx);

/* loop:request(spec) -> transfer; also core.orchestrate and core.aggregate. */
int owl_loop_request(lua_State *L);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
