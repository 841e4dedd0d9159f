/*
 * owl.h: what the C files of owl.core share. Each concern registers its
 * functions into the module table with owl_*_open(L), called by core.c with
 * that table on the top of the stack.
 */
#ifndef OWL_OWL_H
#define OWL_OWL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "buffer.h"
#include "compat.h"

/* Everything declared here stays inside the shared object, whatever the
 * build tool's flags (LuaRocks passes no -fvisibility): only
 * luaopen_owl_core is exported (core.c, OWL_EXPORT). */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden)
#endif

#define OWL_LOOP_MT "owl.loop"
#define OWL_TRANSFER_MT "owl.transfer"
#define OWL_GROUP_MT "owl.group"
#define OWL_REGEX_MT "owl.regex"
#define OWL_BUDGET_MT "owl.budget"
#define OWL_SSE_MT "owl.sse"
#define OWL_PICK_MT "owl.sse_pick"
#define OWL_JSON_ARRAY_MT "owl.json.array" /* registry key of the array metatable */
#define OWL_JSON_ROPE_MT "owl.json.rope"   /* registry key of the rope metatable */

#define OWL_JSON_MAX_DEPTH 1000

/* Registers the metatable `name` (one per type): meta holds its
 * metamethods, methods go in its __index. Leaves the stack as it was. */
static inline void owl_newclass(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta) {
  luaL_newmetatable(L, name);
  if (meta) owl_setfuncs(L, meta, 0);
  lua_newtable(L);
  owl_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/*
 * The number at idx as an integer from min to max, or a raised error naming
 * what ("loop:step timeout_ms") and what it got. Every number from Lua that
 * becomes a C integer goes through here or an equal test: a cast of NaN,
 * an infinity or 1e20 to an integer type is undefined behaviour, so the
 * range is checked on the double first. min and max must be exact doubles.
 */
static inline double owl_checkint(lua_State *L, int idx, double min, double max, const char *what) {
  double v = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : 0;
  char msg[160];
  if (lua_type(L, idx) != LUA_TNUMBER) {
    luaL_error(L, "owl.core: %s must be an integer, not %s", what, luaL_typename(L, idx));
  } else if (!(v >= min && v <= max) || v != (double)(long long)v) {
    /* lua_pushfstring knows no precision: format here */
    if (v != v) snprintf(msg, sizeof msg, "owl.core: %s must be an integer from %.0f to %.0f, got NaN", what, min, max);
    else snprintf(msg, sizeof msg, "owl.core: %s must be an integer from %.0f to %.0f, got %.17g", what, min, max, v);
    luaL_error(L, "%s", msg);
  }
  return v;
}

/* Milliseconds on the monotonic clock: for timeouts, never for dates. */
static inline int64_t owl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Registration, one per concern. */
void owl_loop_open(lua_State *L);
void owl_transfer_open(lua_State *L);
void owl_flow_open(lua_State *L);
void owl_json_open(lua_State *L); /* sets core.json */
void owl_regex_open(lua_State *L);
void owl_budget_open(lua_State *L);
void owl_clock_open(lua_State *L); /* sets core.now */
void owl_sse_open(lua_State *L);   /* sets core.sse */
void owl_file_open(lua_State *L);  /* sets core.append_line */
void owl_hash_open(lua_State *L);  /* sets core.sha256 */
void owl_pick_open(lua_State *L);  /* sets core.sse_pick */

/*
 * JSON for the other C files. Both report failure by returning 0 and writing
 * a message into err (errlen bytes); neither leaves heap memory unowned if a
 * Lua memory error is raised while they run.
 *
 * owl_json_encode appends the value at idx to out (which the caller owns).
 * owl_json_decode pushes the decoded value on success.
 */
int owl_json_encode(lua_State *L, int idx, owl_buf *out, char *err, size_t errlen);
int owl_json_decode(lua_State *L, const char *s, size_t len, int max_depth, char *err, size_t errlen);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
