/*
 * compat.h: the one place where Lua 5.1, LuaJIT, 5.2, 5.3 and 5.4 differ for
 * owl. Every shim carries the owl_ prefix so that it never clashes with the
 * host's own luaL_* (a Neovim or game build may define some of them), and
 * everything here is static inline: nothing is exported.
 */
#ifndef OWL_COMPAT_H
#define OWL_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if defined(__GNUC__)
#define OWL_EXPORT __attribute__((visibility("default")))
#else
#define OWL_EXPORT
#endif

#if LUA_VERSION_NUM >= 503
#define OWL_HAS_INTEGERS 1
#else
#define OWL_HAS_INTEGERS 0
#endif

/* Raw length of the table or string at idx. */
static inline size_t owl_rawlen(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 502
  return (size_t)lua_rawlen(L, idx);
#else
  return (size_t)lua_objlen(L, idx);
#endif
}

static inline int owl_absindex(lua_State *L, int idx) {
  return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* luaL_setfuncs for 5.1 (LuaJIT has it, plain 5.1 does not). */
static inline void owl_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

/* The userdata at idx if it has metatable tname, else NULL. */
static inline void *owl_testudata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

/* Set the metatable named tname on the value at the top of the stack. */
static inline void owl_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

/* Is the number at idx an integer subtype (always false before 5.3)? */
static inline int owl_isinteger(lua_State *L, int idx) {
#if OWL_HAS_INTEGERS
  return lua_isinteger(L, idx);
#else
  (void)L; (void)idx;
  return 0;
#endif
}

/* A new userdata with room for size bytes (5.4 takes a user-value count). */
static inline void *owl_newuserdata(lua_State *L, size_t size) {
#if LUA_VERSION_NUM >= 504
  return lua_newuserdatauv(L, size, 1);
#else
  return lua_newuserdata(L, size);
#endif
}

#endif
