/*
 * sse.h: the text/event-stream parser of sse.c, in plain C, so that both
 * core.sse (Lua) and a transfer's libcurl write callback (spec.sse, where
 * no Lua may run) can feed it. The parser owns its buffers; events are
 * handed to a sink as they complete and are the sink's to copy.
 */
#ifndef OWL_SSE_H
#define OWL_SSE_H

#include <stddef.h>

#include "buffer.h"

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

#define OWL_SSE_DEFAULT_MAX ((size_t)16 * 1024 * 1024)

typedef struct owl_sse {
  owl_buf line; /* the line begun but not ended: never holds CR or LF */
  owl_buf data; /* the data buffer: each data value followed by LF */
  owl_buf type; /* the event type buffer; empty means "message" */
  owl_buf id;   /* the last event ID buffer: persists across events */
  size_t max;   /* max_event_bytes */
  double retry; /* the last valid retry field in ms, or -1 */
  int bom;      /* BOM bytes matched at the start of the stream; -1 once past it */
  int skip_lf;  /* the last byte fed was a CR: an LF first in the next feed ends nothing */
  int failed;   /* err holds why; every later feed fails the same way */
  int oom;      /* the failure was an allocation, not the stream */
  char err[128];
} owl_sse;

/* One dispatched event. The pointers are valid during the sink call only.
 * id is NULL when the last event ID is empty. */
typedef struct owl_sse_event {
  const char *type, *data, *id;
  size_t type_len, data_len, id_len;
} owl_sse_event;

/* Receives each event a feed completes; returns 0 when it could not keep
 * it (out of memory), which fails the parser. */
typedef int (*owl_sse_sink)(void *ud, const owl_sse_event *ev);

void owl_sse_init(owl_sse *p, size_t max_event_bytes);

/* Runs n bytes through the parser, handing each completed event to sink.
 * Returns 1, or 0 once the parser has failed (then and on every later
 * call): p->err says why, and its buffers are freed. */
int owl_sse_feed(owl_sse *p, const char *s, size_t n, owl_sse_sink sink, void *ud);

/* Frees the buffers; the parser takes no more bytes meaningfully after. */
void owl_sse_free(owl_sse *p);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
