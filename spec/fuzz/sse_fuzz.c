/*
 * sse_fuzz.c: libFuzzer target for the text/event-stream parser of
 * csrc/sse.c (its C API, csrc/sse.h), built by `make fuzz` with ASan and
 * UBSan.
 *
 * Input layout (so the fuzzer chooses the splits and the size cap too):
 *   byte 0      max_event_bytes: 0 the default (16 MiB), else 4 * byte 0
 *   byte 1      n, the number of chosen chunks (n % 32)
 *   n bytes     each chunk's length (0 to 255: empty feeds included)
 *   the rest    the stream; what the chunks leave is fed as one last chunk
 * A seed is "\0\0" followed by a recorded stream.
 *
 * The stream is parsed three ways, in one feed, one byte per feed, and in
 * the chosen chunks; the parser promises that splitting never changes
 * anything, so all three must give the same events, the same failure (or
 * none) and the same retry. Each event is checked on its own too: a
 * non-empty type, no CR or LF in any field, no NUL in the id, data within
 * max_event_bytes. A broken promise aborts, which libFuzzer reports as a
 * crash with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "sse_fuzz"
#include "check.h"

/* What one way of feeding produced: the events, serialized. */
typedef struct run {
  owl_buf log;
  size_t max;
} run;

static int no_eol(const char *s, size_t n) {
  return memchr(s, '\n', n) == NULL && memchr(s, '\r', n) == NULL;
}

static void log_field(owl_buf *b, const char *s, size_t n) {
  char len[32];
  int k = snprintf(len, sizeof len, "%zu:", n);
  CHECK(owl_buf_append(b, len, (size_t)k), "out of memory");
  if (n) CHECK(owl_buf_append(b, s, n), "out of memory");
}

static int sink(void *ud, const owl_sse_event *ev) {
  run *r = (run *)ud;
  CHECK(ev->type != NULL && ev->type_len > 0, "an event without a type");
  CHECK(ev->data != NULL, "an event without data");
  CHECK(ev->data_len <= r->max, "an event's data past max_event_bytes");
  CHECK(no_eol(ev->type, ev->type_len), "CR or LF in an event type");
  CHECK((ev->id == NULL) == (ev->id_len == 0), "an id pointer that disagrees with its length");
  if (ev->id) {
    CHECK(no_eol(ev->id, ev->id_len), "CR or LF in an id");
    CHECK(memchr(ev->id, '\0', ev->id_len) == NULL, "NUL in an id");
  }
  CHECK(memchr(ev->data, '\r', ev->data_len) == NULL, "CR in an event's data");
  log_field(&r->log, ev->type, ev->type_len);
  log_field(&r->log, ev->data, ev->data_len);
  log_field(&r->log, ev->id ? ev->id : "", ev->id_len);
  return 1;
}

/* Feeds s in the pieces lens[0..nlens) (then the rest), or one byte at a
 * time when bytewise; appends the outcome (failure and retry) to the log. */
static void parse(run *r, size_t max, const char *s, size_t n, const uint8_t *lens, size_t nlens, int bytewise) {
  owl_sse p;
  size_t at = 0, i = 0;
  int ok = 1;
  char tail[200];
  r->log.len = 0;
  r->max = max;
  owl_sse_init(&p, max);
  while (at < n && ok) {
    size_t k = bytewise ? 1 : i < nlens ? lens[i++] : n - at;
    if (k > n - at) k = n - at;
    ok = owl_sse_feed(&p, s + at, k, sink, r);
    at += k;
    CHECK(ok == !p.failed, "feed's result disagrees with the failed flag");
  }
  if (ok && !bytewise) CHECK(owl_sse_feed(&p, s + at, 0, sink, r), "an empty feed failed");
  CHECK(!p.oom, "out of memory");
  snprintf(tail, sizeof tail, "|failed=%d err=%s retry=%.0f", p.failed, p.failed ? p.err : "", p.retry);
  CHECK(owl_buf_append(&r->log, tail, strlen(tail)), "out of memory");
  owl_sse_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static run whole, bytes, chunks;
  size_t max, nlens;
  const uint8_t *lens;
  const char *s;
  if (size < 2) return 0;
  max = data[0] ? (size_t)data[0] * 4 : OWL_SSE_DEFAULT_MAX;
  nlens = data[1] % 32;
  if (size - 2 < nlens) return 0;
  lens = data + 2;
  s = (const char *)data + 2 + nlens;
  size -= 2 + nlens;

  parse(&whole, max, s, size, NULL, 0, 0);
  parse(&bytes, max, s, size, NULL, 0, 1);
  parse(&chunks, max, s, size, lens, nlens, 0);
  CHECK(whole.log.len == bytes.log.len && memcmp(whole.log.data, bytes.log.data, whole.log.len) == 0,
        "one byte per feed gives other events than one feed");
  CHECK(whole.log.len == chunks.log.len && memcmp(whole.log.data, chunks.log.data, whole.log.len) == 0,
        "the chosen split gives other events than one feed");
  return 0;
}
