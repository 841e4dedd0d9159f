/*
 * flow.c: the orchestrator-workers primitives. Each starts transfers and
 * returns at once; completions are reported by the loop.
 *
 * They hold no policy: what a request looks like (fields, prompts, model) is
 * built by the Lua providers and handed in as spec tables. What lives here
 * is what is worth doing in C: encoding every body without a round trip
 * through Lua strings, sharing one header list across a fan-out, starting
 * a whole fan-out in one call, and writing the worker outputs into the
 * aggregator's body straight from their Lua strings (json.rope).
 */
#include <string.h>

#include "loop.h"

/* core.orchestrate(loop, spec): the structured plan call. */
static int l_orchestrate(lua_State *L) {
  return owl_loop_request(L);
}

/* core.aggregate(loop, spec): the aggregator call. Its body normally holds a
 * json.rope of the worker outputs, which the encoder escapes piece by piece
 * into the request body. */
static int l_aggregate(lua_State *L) {
  return owl_loop_request(L);
}

/* core.work(loop, spec, bodies) -> group, the array of transfers in the
 * order of bodies. Every body is encoded and configured before any member
 * starts, so a bad body raises without having sent anything. Every member
 * starts at once: how many run at a time is policy, the task layer's. */
static int l_work(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  owl_headers *headers;
  size_t i, n;
  int group;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4))
    return luaL_error(L, "owl.core.work takes no window: how many members run at once is the task layer's "
                         "(owl.run's max_workers)");
  lua_getfield(L, 2, "body");
  if (!lua_isnil(L, -1)) return luaL_argerror(L, 2, "a fan-out spec takes its bodies from the third argument, not spec.body");
  lua_pop(L, 1);
  lua_settop(L, 3);
  n = owl_rawlen(L, 3);
  headers = owl_headers_push(L, 2); /* index 4, released when collected */
  lua_createtable(L, (int)n, 0);    /* index 5: the group */
  group = 5;
  luaL_checkstack(L, 4, "owl.core.work");
  for (i = 1; i <= n; i++) {
    owl_transfer *t;
    lua_rawgeti(L, 3, (int)i);
    if (!lua_istable(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "owl.core.work: bodies[%d] must be a table or a string", (int)i);
    t = owl_transfer_push(L);
    owl_transfer_configure(L, t, 2, headers, -2);
    lua_rawseti(L, group, (int)i);
    lua_pop(L, 1);
  }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, group, (int)i);
    owl_loop_submit(L, loop, lua_gettop(L));
    lua_pop(L, 1);
  }
  luaL_getmetatable(L, OWL_GROUP_MT);
  lua_setmetatable(L, group);
  lua_pushvalue(L, group);
  return 1;
}

static int g_size(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushinteger(L, (lua_Integer)owl_rawlen(L, 1));
  return 1;
}

static int g_cancel(lua_State *L) {
  size_t i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = owl_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, (int)i);
    owl_transfer_cancel(owl_transfer_check(L, -1));
    lua_pop(L, 1);
  }
  return 0;
}

void owl_flow_open(lua_State *L) {
  static const luaL_Reg group_methods[] = {{"size", g_size}, {"cancel", g_cancel}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"orchestrate", l_orchestrate}, {"work", l_work}, {"aggregate", l_aggregate}, {NULL, NULL}};
  owl_newclass(L, OWL_GROUP_MT, group_methods, NULL);
  owl_setfuncs(L, fns, 0);
}
