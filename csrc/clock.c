/*
 * clock.c: core.now(), the monotonic clock the Lua driver's timers (owl.sleep)
 * run on, and core.sleep, how the blocking driver waits when only timers
 * are pending (a loop with no transfer returns at once). os.time has whole
 * seconds and moves with the wall clock; os.clock is CPU time: neither can
 * time a sleep.
 */
#include <errno.h>
#include <time.h>

#include "owl.h"

/* core.now() -> seconds (with a fraction) since an arbitrary fixed point. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.sleep(seconds): blocks the whole process (seconds from 0 to 1e9);
 * resumed after a signal for the time that is left. */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec ts, left;
  if (!(s >= 0 && s <= 1e9)) return luaL_argerror(L, 1, "seconds must be from 0 to 1e9");
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &left) != 0 && errno == EINTR) ts = left;
  return 0;
}

void owl_clock_open(lua_State *L) {
  lua_pushcfunction(L, l_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, l_sleep);
  lua_setfield(L, -2, "sleep");
}
