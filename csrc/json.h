/*
 * json.h: what json_encode.c and json_decode.c share, private to the codec,
 * and the reading of JSON strings that the SSE picker (pick.c) shares with
 * the decoder. These symbols are not static because the files need each
 * other; the visibility pragma below keeps them inside the shared object.
 */
#ifndef OWL_JSON_H
#define OWL_JSON_H

#include <stdint.h>
#include <string.h>

#include "owl.h"

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

/* Neither direction recurses on the C stack (a game thread may have 128
 * KiB): each keeps one record per open container, the first
 * OWL_JSON_LOCAL_LEVELS in a local array and deeper ones on the heap. The
 * ceiling bounds that memory and the Lua stack slots (a few per level). */
#define OWL_JSON_DEPTH_CEILING 10000
#define OWL_JSON_LOCAL_LEVELS 32

#define OWL_JSON_MAX_BYTES 1073741824.0 /* decode's default max_bytes: 1 GiB */

/* Pushes the metatable registered under key (OWL_JSON_ARRAY_MT or
 * OWL_JSON_ROPE_MT), creating it on first use so that C callers of
 * owl_json_encode / owl_json_decode never see it missing. */
void owl_json_push_mt(lua_State *L, const char *key);

/* Pushes a userdata that owns an empty owl_buf and returns the buffer. Its
 * __gc frees the buffer, so the memory is owned even when a Lua error
 * unwinds past the caller; callers still free it as soon as they are done. */
owl_buf *owl_json_scratch(lua_State *L);

/* One option of encode/decode: an integer in [min, max], or with choices
 * (a NULL-terminated list) one of those strings, value being its index.
 * value holds the default until owl_json_read_opts sees the option. */
typedef struct owl_json_opt {
  const char *name;
  double min, max;
  double value;
  const char *const *choices;
} owl_json_opt;

/* Reads the options table at arg (absent or nil: defaults stay). Raises on
 * anything but a table, on an unknown key and on a value out of range:
 * options are written by programmers, so mistakes there are misuse. */
void owl_json_read_opts(lua_State *L, int arg, owl_json_opt *opts, int n);

/*
 * Does any of the 8 bytes at p need care inside a JSON string: a control
 * character, '"' or '\\'? The string scanners (owl_json_plain, the
 * encoder's) skip clean 8-byte blocks with this before looking at single
 * bytes: model output is mostly long runs of plain text. (v - 0x01..) & ~v
 * & 0x80.. is nonzero exactly when v has a zero byte; with 0x20.. in place
 * of 0x01.. when it has one below 0x20.
 */
static inline int owl_json_special8(const unsigned char *p) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t x, q, b;
  memcpy(&x, p, 8); /* an unaligned load, without undefined behaviour */
  q = x ^ (ones * '"');
  b = x ^ (ones * '\\');
  return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs ? 1 : 0;
}

/*
 * One record per open container. The first OWL_JSON_LOCAL_LEVELS records
 * are the caller's local array; past them they move to a scratch buffer
 * (owl_json_scratch) held in stack slot `slot`, so that a Lua error cannot
 * leak it. at() returns record depth (1-based), or NULL when out of memory.
 */
typedef struct owl_json_levels {
  lua_State *L;
  char *base;    /* the local array, then the heap copy */
  size_t size;   /* of one record */
  size_t cap;    /* records base holds */
  int slot;      /* holds nil until the heap is needed */
  owl_buf *heap;
} owl_json_levels;

static inline void *owl_json_level(owl_json_levels *lv, int depth) {
  size_t need = (size_t)depth;
  if (need > lv->cap) {
    size_t cap = lv->cap * 2 < need ? need : lv->cap * 2;
    if (lv->heap == NULL) {
      lv->heap = owl_json_scratch(lv->L);
      lua_replace(lv->L, lv->slot);
      if (!owl_buf_reserve(lv->heap, cap * lv->size)) return NULL;
      memcpy(lv->heap->data, lv->base, lv->cap * lv->size);
    } else if (!owl_buf_reserve(lv->heap, cap * lv->size - lv->heap->len)) {
      return NULL;
    }
    lv->heap->len = cap * lv->size;
    lv->base = lv->heap->data;
    lv->cap = cap;
  }
  return lv->base + (need - 1) * lv->size;
}

/*
 * UTF-8 as RFC 3629 and Unicode's table 3-7 define it: no overlongs, no
 * surrogates (ED A0..BF), nothing past U+10FFFF. For a lead byte c, sets
 * how many continuation bytes follow and the range of the first one (the
 * others are 80..BF); returns 0 when c cannot start a character (80..C1,
 * F5..FF).
 */
static inline int owl_utf8_lead(unsigned c, int *need, unsigned *lo, unsigned *hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    *need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    *need = 2;
    if (c == 0xE0) *lo = 0xA0;
    if (c == 0xED) *hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    *need = 3;
    if (c == 0xF0) *lo = 0x90;
    if (c == 0xF4) *hi = 0x8F;
  } else {
    return 0;
  }
  return 1;
}

/* The non-ASCII character at p (*p >= 0x80): its length when well formed,
 * else 0 with *bad the length of its maximal subpart, which Unicode's
 * "substitution of maximal subparts" replaces by one U+FFFD. */
static inline size_t owl_utf8_char(const unsigned char *p, const unsigned char *end, size_t *bad) {
  int need, i;
  unsigned lo, hi;
  if (!owl_utf8_lead(*p, &need, &lo, &hi)) {
    *bad = 1;
    return 0;
  }
  for (i = 1; i <= need; i++) {
    if (end - p <= i || p[i] < lo || p[i] > hi) {
      *bad = (size_t)i;
      return 0;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  return (size_t)need + 1;
}

/* Has any of the 8 bytes at p its high bit set? */
static inline int owl_json_high8(const unsigned char *p) {
  uint64_t x;
  memcpy(&x, p, 8);
  return (x & 0x8080808080808080ULL) != 0;
}

/* The offset of the first byte of s that is not part of a well-formed
 * character, or n when s is valid UTF-8. */
static inline size_t owl_utf8_scan(const unsigned char *s, size_t n) {
  const unsigned char *p = s, *end = s + n;
  while (p < end) {
    size_t len, bad;
    while (end - p >= 8 && !owl_json_high8(p)) p += 8;
    while (p < end && *p < 0x80) p++;
    if (p == end) break;
    if ((len = owl_utf8_char(p, end, &bad)) == 0) return (size_t)(p - s);
    p += len;
  }
  return n;
}

/* 1 for the ASCII bytes that end owl_json_plain's byte loop: the closing
 * quote, a backslash, and the control characters, which RFC 8259 forbids
 * raw (json_decode.c). A table, as one load beats four comparisons there. */
extern const unsigned char owl_json_str_stop[128];

/*
 * JSON strings, read by the decoder and by the SSE picker (pick.c), which
 * must accept exactly the strings the decoder accepts and give the same
 * bytes for them: both read them with these two functions.
 *
 * owl_json_plain: p is inside a string's content. Advances over the bytes
 * the string holds as they are (ASCII but '"', '\\' and the controls, and
 * well-formed UTF-8) and stops at anything else: the closing quote, a
 * backslash, a control character, a byte from 0x80 that starts no
 * well-formed character, or end: for most strings, the closing quote.
 */
static inline const unsigned char *owl_json_plain(const unsigned char *p, const unsigned char *end) {
  for (;;) {
    size_t len, bad;
    while (end - p >= 8 && !owl_json_special8(p) && !owl_json_high8(p)) p += 8;
    while (p < end && *p < 0x80 && !owl_json_str_stop[*p]) p++;
    if (p >= end || *p < 0x80 || (len = owl_utf8_char(p, end, &bad)) == 0) return p;
    p += len;
  }
}

/* Why owl_json_unescape refused a string, and where (at). */
typedef enum owl_json_strfail {
  OWL_JSON_STR_UNTERMINATED, /* at: the opening quote */
  OWL_JSON_STR_UTF8,         /* at: the byte that starts no well-formed character */
  OWL_JSON_STR_CONTROL,      /* at: the raw control character */
  OWL_JSON_STR_ESCAPE,       /* at: the backslash of an escape RFC 8259 has not */
  OWL_JSON_STR_HEX,          /* at: the backslash of a \u without 4 hex digits */
  OWL_JSON_STR_SURROGATE,    /* at: the backslash of a \u that is half a pair alone */
  OWL_JSON_STR_NOMEM         /* at: where out could not grow */
} owl_json_strfail;

typedef struct owl_json_strerr {
  owl_json_strfail what;
  const unsigned char *at;
} owl_json_strerr;

/*
 * The string whose content starts at s (just past its opening quote), read
 * on from p = owl_json_plain(s, end), so that nothing is scanned twice.
 * Returns the closing quote, or NULL with *err saying why RFC 8259 refuses
 * the string: escapes are checked, a \u high surrogate needs a \u low one
 * right after it, and a low one alone is refused. With out, appends the
 * content decoded to it (on failure, some of it); with NULL, only checks
 * (the picker skipping a value it does not want).
 */
const unsigned char *owl_json_unescape(const unsigned char *s, const unsigned char *p, const unsigned char *end, owl_buf *out,
                                       owl_json_strerr *err);

/* Appends s to b with each maximal invalid subpart replaced by U+FFFD;
 * 0 when out of memory. */
int owl_utf8_fix(owl_buf *b, const char *s, size_t n);

/* core.json.decode, registered by owl_json_open. */
int owl_json_decode_lua(lua_State *L);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
