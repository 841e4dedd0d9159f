/* json_encode.c: placeholder until the codec lands. */
#include "owl.h"
void owl_json_open(lua_State *L) { (void)L; }
int owl_json_encode(lua_State *L, int idx, owl_buf *out, char *err, size_t errlen) { (void)L; (void)idx; (void)out; (void)err; (void)errlen; return 0; }
