/*
 * examples/host.c: a C program that embeds Lua and owl and drives an
 * orchestrator-workers flow from its own loop: each turn of that loop (a
 * frame, an event-loop tick) calls owl.step(budget_ms) once, so owl never
 * blocks the host for more than about the budget (docs/api.md, "Driving
 * owl from a host").
 *
 *   cc -O2 -o host examples/host.c $(pkg-config --cflags --libs lua5.4)
 *   ./host OWL_ROOT BASE_URL [WORKERS]
 *
 * OWL_ROOT is owl's checkout (its lua/ and build/5.4/ are put on Lua's
 * paths); BASE_URL an OpenAI-compatible server such as owl's mock.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* The host's side of the work, in Lua: start the flow in a task and keep
 * it, so that each turn can ask whether it is done. */
static const char *START =
    "local root, base_url, workers = ...\n"
    "package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path\n"
    "package.cpath = root .. '/build/5.4/?.so;' .. package.cpath\n"
    "local owl = require('owl')\n"
    "local client = owl.client{ base_url = base_url, model = 'gpt-test', api_key = 'sk-host',\n"
    "  headers = { ['x-mock-subtasks'] = tostring(workers) } }\n"
    "return owl.spawn(owl.run, client, 'Write a tokenizer', { max_workers = workers, max_subtasks = workers })\n";

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(lua_State *L, const char *what) {
  fprintf(stderr, "host: %s: %s\n", what, lua_tostring(L, -1));
  lua_close(L);
  exit(1);
}

int main(int argc, char **argv) {
  lua_State *L;
  int task, step, turns = 0;
  double worst = 0;
  if (argc < 3) {
    fprintf(stderr, "usage: %s OWL_ROOT BASE_URL [WORKERS]\n", argv[0]);
    return 2;
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_loadstring(L, START) != LUA_OK) die(L, "load");
  lua_pushstring(L, argv[1]);
  lua_pushstring(L, argv[2]);
  lua_pushinteger(L, argc > 3 ? atoi(argv[3]) : 10);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) die(L, "start");
  task = luaL_ref(L, LUA_REGISTRYINDEX);
  /* owl.step, looked up once */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "owl");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die(L, "require owl");
  lua_getfield(L, -1, "step");
  step = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  for (;;) {
    double t0;
    int done;
    /* task:done()? */
    lua_rawgeti(L, LUA_REGISTRYINDEX, task);
    lua_getfield(L, -1, "done");
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) die(L, "task:done");
    done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (done) break;
    /* the host's turn: owl gets one millisecond of it */
    t0 = now_ms();
    lua_rawgeti(L, LUA_REGISTRYINDEX, step);
    lua_pushnumber(L, 1);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) die(L, "owl.step");
    if (now_ms() - t0 > worst) worst = now_ms() - t0;
    turns++;
    {
      struct timespec frame = {0, 16 * 1000 * 1000}; /* the rest of the host's frame */
      nanosleep(&frame, NULL);
    }
  }

  /* local result, err = task:wait() */
  lua_rawgeti(L, LUA_REGISTRYINDEX, task);
  lua_getfield(L, -1, "wait");
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) die(L, "task:wait");
  if (lua_isnil(L, -2)) {
    lua_pushstring(L, luaL_tolstring(L, -1, NULL));
    die(L, "the flow failed");
  }
  lua_getfield(L, -2, "outputs");
  printf("host: flow done in %d turns: %d outputs, worst turn inside owl %.2f ms\n", turns,
         (int)lua_rawlen(L, -1), worst);
  lua_close(L);
  return 0;
}
