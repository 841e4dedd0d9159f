/*
 * core.c: registers owl.core. It only wires the concerns together; each lives
 * in its own file (loop.c, transfer.c, budget.c, flow.c, clock.c, json_*.c,
 * regex.c, sse.c, file.c, hash.c, pick.c). It also holds two process queries, core.fd_limit and
 * core.isatty.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "owl.h"

OWL_EXPORT int luaopen_owl_core(lua_State *L);

/* Which Lua this build is for. A build for another Lua usually cannot even
 * be loaded (dlopen stops at an undefined lua_* symbol) and then cannot say
 * what it is: owl.core_loader reads this string straight out of the file
 * instead, so the marker is spelt out in full and kept whole. LuaJIT shares
 * Lua 5.1's ABI (lua.h says 5.1); its own luaconf.h is how we tell it
 * apart. Static, like everything but luaopen_owl_core: nothing exported. */
#if LUA_VERSION_NUM == 501 && (defined(LUA_LJDIR) || defined(LUAJIT_VERSION))
#define OWL_BUILT_FOR "LuaJIT"
#else
#define OWL_BUILT_FOR LUA_VERSION
#endif
#define OWL_BUILT_FOR_MARK "owl.core built for: "
static const char owl_built_for[] = OWL_BUILT_FOR_MARK OWL_BUILT_FOR;

#ifdef OWL_CANARY
#include <stdlib.h>
#include <string.h>
/* Test builds only (make check-mem): leaks on purpose, so that check-mem can
 * prove valgrind and LeakSanitizer would catch a real leak. The volatile
 * store keeps the compiler from dropping the allocation. */
static int canary_leak(lua_State *L) {
  static char *volatile sink;
  sink = (char *)malloc(64);
  if (sink) memset(sink, 0x5a, 64);
  sink = NULL;
  (void)L;
  return 0;
}
#endif

/* Descriptors open now below the limit (a new one takes the lowest free
 * number, so only those use up room; inherited ones above the limit do
 * not), or -1 when they cannot be counted cheaply: the entries of
 * /proc/self/fd (less the one opendir holds), else a probe of every number
 * below a small limit. A host, or a parent process, may hold hundreds. */
static long open_fds(rlim_t limit) {
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    long n = 0;
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char *end;
      unsigned long fd;
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      fd = strtoul(e->d_name, &end, 10);
      if (*end == '\0' && fd < (unsigned long)limit && (long)fd != (long)own) n++;
    }
    closedir(d);
    return n;
  }
  if (limit <= 65536) {
    long n = 0;
    int fd;
    for (fd = 0; fd < (int)limit; fd++)
      if (fcntl(fd, F_GETFD) != -1) n++;
    return n;
  }
  return -1;
}

/* core.fd_limit() -> the soft RLIMIT_NOFILE and how many descriptors are
 * open now (nil when unknown), or nil when unlimited or unknown: how many
 * transfers a process can still have connecting at once. */
static int l_fd_limit(lua_State *L) {
  struct rlimit rl;
  long open;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || (double)rl.rlim_cur > 9007199254740991.0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)rl.rlim_cur);
  open = open_fds(rl.rlim_cur);
  if (open < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, (lua_Integer)open);
  return 2;
}

/* core.isatty(fd) -> whether fd is a terminal (the CLI colours and redraws
 * only then). */
static int l_isatty(lua_State *L) {
  int fd = (int)owl_checkint(L, 1, 0, 2147483647.0, "isatty fd");
  lua_pushboolean(L, isatty(fd) == 1);
  return 1;
}

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
  owl_budget_open(L);
  owl_clock_open(L);
  owl_sse_open(L);
  owl_file_open(L);
  owl_hash_open(L);
  owl_pick_open(L);
  lua_pushcfunction(L, l_fd_limit);
  lua_setfield(L, -2, "fd_limit");
  lua_pushcfunction(L, l_isatty);
  lua_setfield(L, -2, "isatty");
#ifdef OWL_CANARY
  lua_pushcfunction(L, canary_leak);
  lua_setfield(L, -2, "_canary_leak");
#endif
  /* curl_version() would initialise (and leak) the LDAP/SASL libraries just
   * to name their versions: the version record alone is enough. */
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  lua_pushstring(L, owl_built_for + sizeof(OWL_BUILT_FOR_MARK) - 1);
  lua_setfield(L, -2, "built_for");
  return 1;
}
