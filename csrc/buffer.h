/*
 * buffer.h: a growable byte buffer. It owns data; len never exceeds cap.
 * Readers use len, never a terminator: append and reset write a NUL after
 * the bytes (reserve leaves room for one), but code that fills reserved
 * room directly (json_encode.c) need not. A failed allocation leaves the
 * buffer as it was and returns 0: callers turn that into an error, never a
 * crash.
 */
#ifndef OWL_BUFFER_H
#define OWL_BUFFER_H

#include <stddef.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

typedef struct owl_buf {
  char *data;
  size_t len;
  size_t cap;
} owl_buf;

#define OWL_BUF_INIT {NULL, 0, 0}

int owl_buf_reserve(owl_buf *b, size_t extra);
/* As reserve, but an empty buffer gets exactly room for extra bytes (and
 * the terminator) rather than a power of two: for a buffer whose final
 * size is known, held by each of a thousand transfers. */
int owl_buf_reserve_exact(owl_buf *b, size_t extra);
int owl_buf_append(owl_buf *b, const void *p, size_t n);
void owl_buf_reset(owl_buf *b); /* len = 0, keeps the memory */
/* len = n (n <= len): drops what was appended after n, keeps the memory. */
void owl_buf_truncate(owl_buf *b, size_t n);
void owl_buf_free(owl_buf *b);  /* releases the memory; the buffer is empty and reusable */

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
