#!/bin/sh
# examples/game_loop.sh [lua5.4|luajit]: runs examples/game_loop.lua (a 60 Hz
# frame loop driving a 1000-worker flow with owl.step) against owl's mock
# LLM server, started here on a free loopback port and stopped at the end.
# Build first: make build-all (or make LUA_VERSION=jit for LuaJIT).
set -u
cd "$(dirname "$0")/.."
ROOT="$PWD"
lua="${1:-lua5.4}"
case "$lua" in luajit) v=jit ;; lua5.*) v="${lua#lua}" ;; *) echo "usage: $0 [lua5.4|lua5.3|lua5.1|luajit]" >&2; exit 2 ;; esac
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
LUA_CPATH="$ROOT/build/$v/?.so;;"
export LUA_PATH LUA_CPATH
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
. examples/start_mock.sh
start_mock "game_loop"
# The mock stands in for a server elsewhere: on a machine of two cores or
# more, it gets a core of its own, so that its work (a thousand requests
# answered) does not preempt the frame loop and count as owl's time.
pin=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
  taskset -a -p -c 1 "$mock_pid" >/dev/null 2>&1 && pin="taskset -c 0"
fi
OWL_BASE_URL="http://127.0.0.1:$port/v1" $pin "$lua" examples/game_loop.lua
