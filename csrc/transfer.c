/* transfer.c: placeholder. */
#include "owl.h"
void owl_transfer_open(lua_State *L) { (void)L; }
