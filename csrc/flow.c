/* flow.c: placeholder. */
#include "owl.h"
void owl_flow_open(lua_State *L) { (void)L; }
