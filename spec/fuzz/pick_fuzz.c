/*
 * pick_fuzz.c: libFuzzer target for the SSE picker (csrc/pick.c, pick.h),
 * built by `make fuzz` with ASan and UBSan. The input is one event's data,
 * as a server would send it; every input gets a fresh Lua state.
 *
 * The picker promises (pick.h) that it only ever takes the fast road: an
 * event it picks is one owl's decoder (json_decode.c) reads, and each value
 * it gives is the string the decoder reads at that path. So for every
 * picker below and every input the picker picks:
 *   - the decoder reads the input, as an object;
 *   - a field is given exactly when the decoded value at its path is a
 *     string, and then with the same bytes;
 *   - an "absent" path is nil or null in the decoded value;
 * and for every input it picks or hands whole, it never reports running
 * out of memory (the fuzzer has memory enough).
 * An input the picker hands whole promises nothing here: the decoder
 * (json_decode's own target) reads it as it would without a picker.
 * The input's lines, fed in order with a memo (owl_pick_event_memo), give
 * what each line gives alone.
 * A broken promise aborts, which libFuzzer reports as a crash with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/json.h"
#include "../../csrc/pick.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "pick_fuzz"
#include "check.h"

/* A path is a list of steps: a member name, or "#n" for array index n. */
#define MAX_STEPS 4
typedef struct fz_path {
  const char *field; /* NULL: an "absent" path */
  int join;
  const char *steps[MAX_STEPS + 1];
} fz_path;

/* openai_stream.lua's picker, and one with short names the fuzzer finds
 * easily, two fields on one path (each value given twice) and a name in
 * UTF-8 (which the picker matches only when the event spells it raw). */
static const fz_path openai[] = {
  {"text", 1, {"choices", "#1", "delta", "content"}},
  {"id", 0, {"id"}},
  {"model", 0, {"model"}},
  {"finish_reason", 0, {"choices", "#1", "finish_reason"}},
  {NULL, 0, {"error"}},
  {NULL, 0, {"usage"}},
  {NULL, 0, {"choices", "#1", "delta", "refusal"}},
  {NULL, 0, {"choices", "#1", "delta", "tool_calls"}},
};
static const fz_path short_names[] = {
  {"a", 1, {"a"}},
  {"a_again", 0, {"a"}},
  {"b", 0, {"b", "#2", "c"}},
  {"q", 0, {"q\xc3\xa9"}},
  {NULL, 0, {"e"}},
  {NULL, 0, {"b", "#1"}},
};

/* Pushes the step as core.sse_pick takes it. */
static void push_step(lua_State *L, const char *step) {
  if (step[0] == '#') lua_pushnumber(L, atoi(step + 1));
  else lua_pushstring(L, step);
}

static void push_path(lua_State *L, const fz_path *p) {
  int i;
  lua_newtable(L);
  for (i = 0; p->steps[i]; i++) {
    push_step(L, p->steps[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Compiles the paths with core.sse_pick (at module index mod); leaves the
 * picker's userdata on the stack and returns it. */
static owl_pick *compile(lua_State *L, int mod, const fz_path *paths, int n) {
  int i, nabsent = 0;
  lua_getfield(L, mod, "sse_pick");
  lua_newtable(L);
  lua_newtable(L); /* join */
  lua_newtable(L); /* last */
  lua_newtable(L); /* absent */
  for (i = 0; i < n; i++) {
    push_path(L, &paths[i]);
    if (paths[i].field == NULL) lua_rawseti(L, -2, ++nabsent);
    else lua_setfield(L, paths[i].join ? -4 : -3, paths[i].field);
  }
  lua_setfield(L, -4, "absent");
  lua_setfield(L, -3, "last");
  lua_setfield(L, -2, "join");
  CHECK(lua_pcall(L, 1, 1, 0) == 0, "core.sse_pick refused the harness's picker");
  return owl_pick_check(L, -1);
}

/* Pushes the value at the path in the decoded value at idx, nil when a
 * step meets no table. An index step in an object, or a name step in an
 * array, finds nil, as the picker reads them: a decoded object's keys are
 * strings, an array's integers. */
static void push_at(lua_State *L, int idx, const fz_path *p) {
  int i;
  lua_pushvalue(L, idx);
  for (i = 0; p->steps[i]; i++) {
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_pushnil(L);
      return;
    }
    push_step(L, p->steps[i]);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
}

/* Checks one picked event against the decoder's reading of it. */
static void check_picked(lua_State *L, const owl_pick *pk, const fz_path *paths, int n, const uint8_t *data, size_t size,
                         const owl_buf *out) {
  char err[256];
  int i, doc, given[OWL_PICK_MAX_PATHS];
  size_t at = 0;
  CHECK(owl_json_decode(L, (const char *)data, size, OWL_JSON_MAX_DEPTH, err, sizeof err), "picked what the decoder refuses");
  doc = lua_gettop(L);
  CHECK(lua_type(L, doc) == LUA_TTABLE, "picked what is not an object");
  CHECK(lua_getmetatable(L, doc) == 0, "picked an array");
  memset(given, 0, sizeof given);
  while (at < out->len) {
    owl_pick_value pv;
    size_t len, glen;
    int join;
    const char *name, *got;
    CHECK(out->len - at >= sizeof pv, "a cut record");
    memcpy(&pv, out->data + at, sizeof pv);
    at += sizeof pv;
    CHECK(pv.field >= 0 && pv.field < owl_pick_nfields(pk), "a record of no field");
    CHECK(pv.len <= out->len - at, "a record past the output");
    name = owl_pick_field(pk, pv.field, &len, &join);
    for (i = 0; i < n && !(paths[i].field && strcmp(paths[i].field, name) == 0); i++) continue;
    CHECK(i < n, "a field the harness did not ask for");
    CHECK(!given[i], "a field given twice");
    given[i] = 1;
    push_at(L, doc, &paths[i]);
    CHECK(lua_type(L, -1) == LUA_TSTRING, "a value given where the decoder reads no string");
    got = lua_tolstring(L, -1, &glen);
    CHECK(glen == pv.len && memcmp(got, out->data + at, glen) == 0, "a value other than the decoder's");
    lua_pop(L, 1);
    at += pv.len;
  }
  for (i = 0; i < n; i++) {
    push_at(L, doc, &paths[i]);
    if (paths[i].field == NULL)
      CHECK(lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL),
            "picked with an absent path present");
    else if (!given[i])
      CHECK(lua_type(L, -1) != LUA_TSTRING, "a string the decoder reads not given");
    lua_pop(L, 1);
  }
  lua_settop(L, doc - 1);
}

static void run(lua_State *L, int mod, const fz_path *paths, int n, const uint8_t *data, size_t size) {
  owl_buf out = OWL_BUF_INIT;
  owl_pick *pk = compile(L, mod, paths, n);
  int r = owl_pick_event(pk, "message", 7, (const char *)data, size, &out);
  CHECK(r != -1, "out of memory");
  if (r == 1) check_picked(L, pk, paths, n, data, size, &out);
  else CHECK(out.len == 0, "an event handed whole left output behind");
  owl_buf_free(&out);
  lua_pop(L, 1);
}

/* The memo (owl_pick_event_memo) promises the plain walk's answer: the
 * input's lines, fed in order as one stream's events, each give the same
 * verdict and the same bytes with the memo as without. The output keeps
 * what earlier events wrote, as a transfer's queue does. */
static void run_memo(lua_State *L, int mod, const fz_path *paths, int n, const uint8_t *data, size_t size) {
  owl_buf plain = OWL_BUF_INIT, memod = OWL_BUF_INIT;
  owl_pick_memo memo;
  owl_pick *pk = compile(L, mod, paths, n);
  size_t at = 0;
  static const uint8_t none[1] = {0};
  if (size == 0) data = none; /* libFuzzer's empty input has no bytes to point at */
  memset(&memo, 0, sizeof memo);
  while (at <= size) {
    const uint8_t *nl = at < size ? memchr(data + at, '\n', size - at) : NULL;
    size_t len = (nl ? (size_t)(nl - data) : size) - at, before = memod.len;
    int r1, r2;
    owl_buf_reset(&plain);
    r1 = owl_pick_event(pk, "message", 7, (const char *)data + at, len, &plain);
    r2 = owl_pick_event_memo(pk, &memo, "message", 7, (const char *)data + at, len, &memod);
    CHECK(r1 == r2, "the memo's verdict differs from the walk's");
    CHECK(memod.len - before == plain.len && (plain.len == 0 || memcmp(memod.data + before, plain.data, plain.len) == 0),
          "the memo's values differ from the walk's");
    if (!nl) break;
    at += len + 1;
  }
  owl_pick_memo_free(&memo);
  owl_buf_free(&plain);
  owl_buf_free(&memod);
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  int mod;
  CHECK(L != NULL, "luaL_newstate");
  lua_newtable(L);
  mod = lua_gettop(L);
  owl_pick_open(L);
  run(L, mod, openai, (int)(sizeof openai / sizeof openai[0]), data, size);
  run(L, mod, short_names, (int)(sizeof short_names / sizeof short_names[0]), data, size);
  run_memo(L, mod, openai, (int)(sizeof openai / sizeof openai[0]), data, size);
  run_memo(L, mod, short_names, (int)(sizeof short_names / sizeof short_names[0]), data, size);
  lua_close(L);
  return 0;
}
