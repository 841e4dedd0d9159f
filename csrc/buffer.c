/* buffer.c: the growable byte buffer of buffer.h. */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

int owl_buf_reserve(owl_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > (size_t)-1 - b->len - 1) return 0;
  need = b->len + extra + 1;
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  p = realloc(b->data, cap);
  if (p == NULL) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

int owl_buf_reserve_exact(owl_buf *b, size_t extra) {
  char *p;
  if (b->cap > 0 || extra == (size_t)-1) return owl_buf_reserve(b, extra);
  p = malloc(extra + 1);
  if (p == NULL) return 0;
  b->data = p;
  b->cap = extra + 1;
  return 1;
}

int owl_buf_append(owl_buf *b, const void *p, size_t n) {
  if (!owl_buf_reserve(b, n)) return 0;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 1;
}

void owl_buf_reset(owl_buf *b) { owl_buf_truncate(b, 0); }

void owl_buf_truncate(owl_buf *b, size_t n) {
  b->len = n;
  if (b->data) b->data[n] = '\0';
}

void owl_buf_free(owl_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
