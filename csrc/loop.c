/* loop.c: placeholder. */
#include "owl.h"
void owl_loop_open(lua_State *L) { (void)L; }
