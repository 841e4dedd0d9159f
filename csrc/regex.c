/* regex.c: placeholder until the PCRE2 binding lands. */
#include "owl.h"
void owl_regex_open(lua_State *L) { (void)L; }
