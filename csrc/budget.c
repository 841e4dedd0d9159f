/*
 * budget.c: core.budget(max_bytes), the response bytes a whole run may
 * receive. The C struct is counted: the Lua handle holds one reference and
 * every transfer given the budget (spec.budget) another, so transfers keep
 * counting against it after the Lua side has dropped the handle.
 */
#include <stdint.h>
#include <stdlib.h>

#include "budget.h"
#include "owl.h"

void owl_budget_release(owl_budget *b) {
  if (b != NULL && --b->refs == 0) free(b);
}

static owl_budget *check_budget(lua_State *L) {
  return *(owl_budget **)luaL_checkudata(L, 1, OWL_BUDGET_MT);
}

/* core.budget(max_bytes): an exact integer from 1 to 2^53 - 1. */
static int l_budget(lua_State *L) {
  double max = owl_checkint(L, 1, 1, 9007199254740991.0, "budget max_bytes");
  owl_budget **bp = (owl_budget **)owl_newuserdata(L, sizeof *bp);
  *bp = NULL; /* until allocated, so that __gc has nothing to do */
  owl_setmetatable(L, OWL_BUDGET_MT);
  *bp = (owl_budget *)calloc(1, sizeof **bp);
  if (*bp == NULL) return luaL_error(L, "owl.core: out of memory");
  (*bp)->limit = max >= (double)SIZE_MAX ? SIZE_MAX : (size_t)max;
  (*bp)->refs = 1;
  return 1;
}

static int b_used(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_budget(L)->used);
  return 1;
}

static int b_limit(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_budget(L)->limit);
  return 1;
}

static int b_gc(lua_State *L) {
  owl_budget **bp = (owl_budget **)luaL_checkudata(L, 1, OWL_BUDGET_MT);
  owl_budget_release(*bp);
  *bp = NULL;
  return 0;
}

static int b_tostring(lua_State *L) {
  owl_budget *b = check_budget(L);
  lua_pushfstring(L, "owl.budget (%f of %f bytes)", (lua_Number)b->used, (lua_Number)b->limit);
  return 1;
}

void owl_budget_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"used", b_used}, {"limit", b_limit}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", b_gc}, {"__tostring", b_tostring}, {NULL, NULL}};
  owl_newclass(L, OWL_BUDGET_MT, methods, meta);
  lua_pushcfunction(L, l_budget);
  lua_setfield(L, -2, "budget");
}
