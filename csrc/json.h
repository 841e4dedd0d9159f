/*
 * json.h: what json_encode.c and json_decode.c share, private to the codec.
 * These symbols are not static because the two files need each other, but
 * the build hides them (-fvisibility=hidden): only luaopen_owl_core leaves
 * the shared object.
 */
#ifndef OWL_JSON_H
#define OWL_JSON_H

#include <stdint.h>
#include <string.h>

#include "owl.h"

/* The codec recurses on the C stack once per nesting level, so no option
 * may raise max_depth past what a small host thread stack can afford. */
#define OWL_JSON_DEPTH_CEILING 10000

#define OWL_JSON_MAX_BYTES 1073741824.0 /* decode's default max_bytes: 1 GiB */

/* Pushes the metatable registered under key (OWL_JSON_ARRAY_MT or
 * OWL_JSON_ROPE_MT), creating it on first use so that C callers of
 * owl_json_encode / owl_json_decode never see it missing. */
void owl_json_push_mt(lua_State *L, const char *key);

/* Pushes a userdata that owns an empty owl_buf and returns the buffer. Its
 * __gc frees the buffer, so the memory is owned even when a Lua error
 * unwinds past the caller; callers still free it as soon as they are done. */
owl_buf *owl_json_scratch(lua_State *L);

/* One numeric option of encode/decode: the integer range it accepts and its
 * value (the default until owl_json_read_opts sees it). */
typedef struct owl_json_opt {
  const char *name;
  double min, max;
  double value;
} owl_json_opt;

/* Reads the options table at arg (absent or nil: defaults stay). Raises on
 * anything but a table, on an unknown key and on a value out of range:
 * options are written by programmers, so mistakes there are misuse. */
void owl_json_read_opts(lua_State *L, int arg, owl_json_opt *opts, int n);

/*
 * Does any of the 8 bytes at p need care inside a JSON string: a control
 * character, '"' or '\\'? Both string scanners skip clean 8-byte blocks
 * with this before looking at single bytes: model output is mostly long
 * runs of plain text. (v - 0x01..) & ~v & 0x80.. is nonzero exactly when v
 * has a zero byte; with 0x20.. in place of 0x01.. when it has one below 0x20.
 */
static inline int owl_json_special8(const unsigned char *p) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t x, q, b;
  memcpy(&x, p, 8); /* an unaligned load, without undefined behaviour */
  q = x ^ (ones * '"');
  b = x ^ (ones * '\\');
  return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs ? 1 : 0;
}

/* core.json.decode, registered by owl_json_open. */
int owl_json_decode_lua(lua_State *L);

#endif
