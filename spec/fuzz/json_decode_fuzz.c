/*
 * json_decode_fuzz.c: libFuzzer target for owl_json_decode (csrc/json_decode.c),
 * built by `make fuzz` with ASan and UBSan. The input is a JSON text as a
 * server would send it; every input gets a fresh Lua state, so a leak or a
 * value left behind belongs to that input alone.
 *
 * Beyond "no crash, no sanitizer report", each input checks what the
 * decoder promises (docs/api.md, JSON):
 *   - success pushes exactly one value, failure none and a message;
 *   - every decoded string, keys included, is valid UTF-8;
 *   - what it decodes, owl_json_encode encodes, and that text decodes to
 *     an equal value (arrays stay arrays, integers stay integers); the one
 *     documented exception is a number past double range, which decodes
 *     as +-inf, which encode refuses;
 *   - max_depth only cuts: a document read at a small depth reads the same
 *     at the default depth, and one the default depth refuses a small depth
 *     refuses too.
 * A broken promise aborts, which libFuzzer reports as a crash with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "json_decode_fuzz"
#include "check.h"

/* Every string in the value at idx (keys too) is valid UTF-8. */
static void check_utf8(lua_State *L, int idx, int depth) {
  size_t n;
  const char *s;
  CHECK(depth < OWL_JSON_DEPTH_CEILING + 2, "nesting past the ceiling");
  idx = owl_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &n);
    CHECK(owl_utf8_scan((const unsigned char *)s, n) == n, "a decoded string is not valid UTF-8");
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE) return;
  CHECK(lua_checkstack(L, 4), "Lua stack");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    check_utf8(L, -2, depth + 1);
    check_utf8(L, -1, depth + 1);
    lua_pop(L, 1);
  }
}

/* Does the value at idx hold +-inf anywhere? */
static int has_inf(lua_State *L, int idx) {
  int found = 0;
  idx = owl_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    return v - v != v - v; /* inf - inf is NaN; JSON has no NaN */
  }
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  CHECK(lua_checkstack(L, 4), "Lua stack");
  lua_pushnil(L);
  while (!found && lua_next(L, idx)) {
    found = has_inf(L, -1);
    lua_pop(L, 1);
  }
  if (found) lua_pop(L, 1); /* the key lua_next left */
  return found;
}

/* Are the values at a and b the same JSON value: same type, equal scalars
 * (integer and float kept apart on 5.3+), tables with the same metatable
 * (the array marker) and equal values under the same keys. */
static int same(lua_State *L, int a, int b) {
  int count_a = 0, count_b = 0, ok = 1;
  a = owl_absindex(L, a);
  b = owl_absindex(L, b);
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  if (lua_type(L, a) != LUA_TTABLE) {
#if LUA_VERSION_NUM >= 503
    if (lua_type(L, a) == LUA_TNUMBER && lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
#endif
    return lua_rawequal(L, a, b);
  }
  CHECK(lua_checkstack(L, 6), "Lua stack");
  if (lua_getmetatable(L, a)) {
    if (!lua_getmetatable(L, b)) return (lua_pop(L, 1), 0);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  } else if (lua_getmetatable(L, b)) {
    lua_pop(L, 1);
    ok = 0;
  }
  if (!ok) return 0;
  lua_pushnil(L);
  while (lua_next(L, a)) {
    count_a++;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    ok = same(L, -2, -1);
    lua_pop(L, 2);
    if (!ok) return (lua_pop(L, 1), 0);
  }
  lua_pushnil(L);
  while (lua_next(L, b)) {
    count_b++;
    lua_pop(L, 1);
  }
  return count_a == count_b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  char err[256];
  int small = 1 + (int)(size % 8); /* a depth some inputs pass and others do not */
  int ok, ok_small;
  owl_buf out = OWL_BUF_INIT;
  CHECK(L != NULL, "luaL_newstate");

  ok = owl_json_decode(L, (const char *)data, size, OWL_JSON_MAX_DEPTH, err, sizeof err);
  CHECK(lua_gettop(L) == (ok ? 1 : 0), "the decoder's stack effect");
  if (!ok) {
    CHECK(err[0] != '\0', "a failure without a message");
    CHECK(strncmp(err, "json: ", 6) == 0, "a failure message not starting 'json: '");
    ok_small = owl_json_decode(L, (const char *)data, size, small, err, sizeof err);
    CHECK(!ok_small, "a smaller max_depth read what the default refused");
    lua_close(L);
    return 0;
  }

  check_utf8(L, 1, 0);

  /* the round trip: encode, decode again, compare */
  if (owl_json_encode(L, 1, &out, err, sizeof err)) {
    CHECK(lua_gettop(L) == 1, "the encoder's stack effect");
    ok = owl_json_decode(L, out.data, out.len, OWL_JSON_MAX_DEPTH, err, sizeof err);
    CHECK(ok, "the encoder's output does not decode");
    CHECK(same(L, 1, 2), "decode(encode(v)) differs from v");
    lua_settop(L, 1);
  } else {
    CHECK(lua_gettop(L) == 1, "the encoder's stack effect");
    CHECK(has_inf(L, 1) && strstr(err, "inf") != NULL, "a decoded value does not encode");
  }

  if (owl_json_decode(L, (const char *)data, size, small, err, sizeof err))
    CHECK(same(L, 1, 2), "a smaller max_depth read a different value");

  owl_buf_free(&out);
  lua_close(L);
  return 0;
}
