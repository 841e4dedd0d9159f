/*
 * owl.h: what the C files of owl.core share. Each concern registers its
 * functions into the module table with owl_*_open(L), called by core.c with
 * that table on the top of the stack.
 */
#ifndef OWL_OWL_H
#define OWL_OWL_H

#include "buffer.h"
#include "compat.h"

#define OWL_LOOP_MT "owl.loop"
#define OWL_TRANSFER_MT "owl.transfer"
#define OWL_GROUP_MT "owl.group"
#define OWL_REGEX_MT "owl.regex"
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

/* Registration, one per concern. */
void owl_loop_open(lua_State *L);
void owl_transfer_open(lua_State *L);
void owl_flow_open(lua_State *L);
void owl_json_open(lua_State *L); /* sets core.json */
void owl_regex_open(lua_State *L);

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

#endif
