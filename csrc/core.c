/*
 * core.c: registers owl.core. It only wires the concerns together; each lives
 * in its own file (loop.c, transfer.c, flow.c, json_*.c, regex.c).
 */
#include <curl/curl.h>

#include "owl.h"

OWL_EXPORT int luaopen_owl_core(lua_State *L);

int luaopen_owl_core(lua_State *L) {
  /* curl_global_init is not thread-safe before 7.84 and must run once; a
   * second require in another lua_State of the same process skips it. */
  static int curl_ready = 0;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "owl.core: curl_global_init failed");
    curl_ready = 1;
  }
  lua_newtable(L);
  owl_json_open(L);
  owl_regex_open(L);
  owl_transfer_open(L);
  owl_loop_open(L);
  owl_flow_open(L);
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  return 1;
}
