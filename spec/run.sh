#!/usr/bin/env bash
# spec/run.sh: runs every suite and ends with the plain line
#   N passed, N failed
# the sum over all suites (CI reads it; busted's own summary it does not).
#
#   spec/run.sh             luacheck and the clang build, the fuzz targets for
#                           10 s each, the specs on Lua 5.4 then 5.3 beside
#                           LuaJIT then 5.1 (two lanes; 5.3 and 5.1 with
#                           OWL_SHORT=1, see lane_54), then check-mem
#   spec/run.sh --mem-only  check-mem alone: the canaries, then valgrind beside ASan/UBSan
#   spec/run.sh --lua 5.4 [spec files]   the specs on one Lua (5.4, 5.3, 5.1 or jit)
#   spec/run.sh --fuzz-only  the fuzz checks alone (each libFuzzer target 10 s)
#
# Each suite prints its own line; a suite that dies without printing its
# count is counted as one failure, so a crash is never a silent pass.
set -u
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUSTED_PATH="/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/spec/?.lua;$BUSTED_PATH;;"
# Thousands of sockets at once in the fan-out specs (client and mock server).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

total_pass=0
total_fail=0
summary=()

# run_suite NAME CMD...: runs busted through CMD, adds its counts to the total.
run_suite() {
  local name="$1"; shift
  local log; log="$(mktemp /tmp/owl-suite.XXXXXX)"
  echo "== $name"
  "$@" -o spec/support/count_output.lua 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line; line="$(grep '^OWL-COUNT ' "$log" | tail -1)"
  rm -f "$log"
  local p=0 f=1
  if [ -n "$line" ]; then
    p="$(sed 's/.*passed=\([0-9]*\).*/\1/' <<<"$line")"
    f="$(sed 's/.*failed=\([0-9]*\) errors=\([0-9]*\).*/\1 \2/' <<<"$line" | awk '{print $1 + $2}')"
    # a suite whose process failed after counting (a leak found at exit, a
    # crash in a finalizer) has one failure more than it counted
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  fi
  echo
  echo "$name: $p passed, $f failed (exit $rc)"
  summary+=("$(printf '%-10s %5d passed, %d failed' "$name" "$p" "$f")")
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

lua_bin() { case "$1" in jit) echo luajit ;; *) echo "lua$1" ;; esac; }

run_lua() { # run_lua VERSION [spec files...]
  local v="$1" bin; shift; bin="$(lua_bin "$v")"
  OWL_BUILD_DIR="build/$v" run_suite "$bin" "$bin" /usr/bin/busted "$@"
}

# --- lanes -------------------------------------------------------------------
# Suites run two at a time, in lanes side by side: the machine has 2 cores,
# and much of a suite's time is waiting on sockets and timers. Each lane's
# output goes to its own log, printed whole once both are done so nothing
# interleaves; its counts add to the total. A lane that dies without
# counting is one failure.
lanes=()
lane_dir=""
start_lane() { # start_lane NAME CMD...: CMD (a function of this script) in the background
  local name="$1"; shift
  [ -n "$lane_dir" ] || lane_dir="$(mktemp -d /tmp/owl-lanes.XXXXXX)"
  echo "== lane $name: $* (its output follows when it ends)"
  ( total_pass=0; total_fail=0; summary=()
    "$@" >"$lane_dir/$name.log" 2>&1
    echo "$total_pass $total_fail" >"$lane_dir/$name.totals"
    printf '%s\n' "${summary[@]}" >"$lane_dir/$name.summary" ) &
  lanes+=("$name")
}
join_lanes() {
  wait
  local name p f line
  for name in "${lanes[@]}"; do
    cat "$lane_dir/$name.log"
    if [ -s "$lane_dir/$name.totals" ]; then
      read -r p f <"$lane_dir/$name.totals"
    else
      p=0; f=1; echo "lane $name: ended without its counts"
    fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    while IFS= read -r line; do [ -n "$line" ] && summary+=("$line"); done <"$lane_dir/$name.summary"
  done
  rm -rf "$lane_dir"; lane_dir=""; lanes=()
}

# check(NAME, CMD...): a single pass/fail check outside busted.
check() {
  local name="$1"; shift
  if "$@"; then
    echo "$name: ok"; total_pass=$((total_pass + 1)); summary+=("$(printf '%-10s %5d passed, %d failed' "$name" 1 0)")
  else
    echo "$name: FAILED"; total_fail=$((total_fail + 1)); summary+=("$(printf '%-10s %5d passed, %d failed' "$name" 0 1)")
  fi
}

# --- static checks -----------------------------------------------------------
# luacheck over lua/, bin/ and spec/, where one warning fails the check; and
# owl.core built with clang as well (make test's own builds use gcc), with the
# Makefile's -Wall -Wextra -Werror: each compiler warns about what the other
# misses. One Lua version is enough for the compiler's view of the C.
run_static() {
  check luacheck make --no-print-directory lint
  check clang make --no-print-directory CC=clang LUA_VERSION=5.4 BUILD=build/clang build
}

# --- fuzz -------------------------------------------------------------------
# Each libFuzzer target of `make fuzz` for FUZZ_SECONDS (10) with its seed
# corpus, one check per target, so 30 s or so in all. Without clang's
# libFuzzer (tools/install-deps fuzz installs it) the build fails and so
# does the check, saying so: a fuzz target that cannot run is never a pass.
FUZZ_TARGETS=(json_decode sse pick)
fuzz_one() {
  local t="$1"
  if ! make --no-print-directory "build/fuzz/$t" >"/tmp/owl-fuzz-build.$$" 2>&1; then
    sed 's/^/  /' "/tmp/owl-fuzz-build.$$" | tail -5
    rm -f "/tmp/owl-fuzz-build.$$"
    echo "fuzz $t: cannot build the libFuzzer target: clang and libclang-rt-14-dev are needed (tools/install-deps fuzz)"
    return 1
  fi
  rm -f "/tmp/owl-fuzz-build.$$"
  spec/fuzz/run.sh "${FUZZ_SECONDS:-10}" "$t"
}
run_fuzz() {
  # install-deps reports (and as root installs) what is missing; the build
  # below fails on its own if that did not work
  tools/install-deps fuzz || echo "fuzz: tools/install-deps fuzz failed: the fuzz checks will fail"
  local t
  for t in "${FUZZ_TARGETS[@]}"; do check "fuzz-${t%%_*}" fuzz_one "$t"; done
}

# --- check-mem --------------------------------------------------------------
MEM_CFLAGS="-O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror -std=c99 -pedantic -Wno-overlength-strings"
VALGRIND=(valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect
          --errors-for-leak-kinds=definite,indirect --track-origins=yes)
ASAN_LIB="$(gcc -print-file-name=libasan.so)"
asan_env=(env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=1:exitcode=1:abort_on_error=0
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OWL_UNDER_ASAN=1)

# The tool must pass the module loaded with no leak and fail the same run
# with the canary's deliberate leak: a failure for any other reason (the
# module not loading, say) would prove nothing.
canary_leaks() {
  local load='package.cpath = os.getenv("OWL_BUILD_DIR") .. "/?.so;" .. package.cpath
    local core = require("owl.core")'
  "$@" lua5.4 -e "$load; assert(core._canary_leak)" >/dev/null 2>&1 || { echo "canary: clean run failed under $1" >&2; return 1; }
  ! "$@" lua5.4 -e "$load; core._canary_leak()" >/dev/null 2>&1
}

# The specs that exercise the C core (HTTP, JSON, regex). The others (the
# mock's own, the CLI's process runs, the rockspec install) start other
# programs, which the memory tools do not follow anyway.
MEM_SPECS=(spec/json_spec.lua spec/loop_spec.lua spec/client_spec.lua spec/replay_spec.lua
           spec/flow_spec.lua spec/schema_spec.lua spec/schema_suite_spec.lua spec/core_hardening_spec.lua
           spec/hostile_review_spec.lua spec/sse_spec.lua spec/anthropic_provider_spec.lua
           spec/anthropic_client_spec.lua spec/anthropic_flow_spec.lua spec/stream_spec.lua
           spec/anthropic_stream_spec.lua spec/embed_spec.lua
           spec/sse_pick_spec.lua)

run_mem() {
  make --no-print-directory LUA_VERSION=5.4 BUILD=build/mem CFLAGS="$MEM_CFLAGS" EXTRA_CFLAGS=-DOWL_CANARY build >/dev/null || return 1
  make --no-print-directory LUA_VERSION=5.4 BUILD=build/asan \
    CFLAGS="$MEM_CFLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
    EXTRA_CFLAGS=-DOWL_CANARY EXTRA_LDFLAGS="-fsanitize=address,undefined" build >/dev/null || return 1
  start_lane valgrind mem_valgrind
  start_lane asan mem_asan
  join_lanes
}
mem_valgrind() {
  OWL_BUILD_DIR=build/mem check canary-vg canary_leaks "${VALGRIND[@]}"
  OWL_BUILD_DIR=build/mem OWL_UNDER_VALGRIND=1 run_suite valgrind "${VALGRIND[@]}" lua5.4 /usr/bin/busted "${MEM_SPECS[@]}"
}
mem_asan() {
  OWL_BUILD_DIR=build/asan check canary-asan canary_leaks "${asan_env[@]}"
  OWL_BUILD_DIR=build/asan run_suite asan "${asan_env[@]}" lua5.4 /usr/bin/busted "${MEM_SPECS[@]}"
}

# The four Luas in two lanes. 5.4 (scripts, the CLI) and LuaJIT (Neovim,
# game engines) run every spec in full; 5.3 and 5.1 run them with
# OWL_SHORT=1, where the slowest spec, the fault matrix, takes each fault
# once (one provider, one mode) instead of for every provider and mode:
# every row still runs on every Lua.
lane_54() { run_lua 5.4; OWL_SHORT=1 run_lua 5.3; }
lane_jit() { run_lua jit; OWL_SHORT=1 run_lua 5.1; }

mode="all"; only=""
case "${1:-}" in
  --mem-only) mode="mem" ;;
  --fuzz-only) mode="fuzz" ;;
  --lua) mode="one"; only="${2:?--lua needs 5.4, 5.3, 5.1 or jit}"; shift 2; files=("$@") ;;
  "") ;;
  *) echo "usage: spec/run.sh [--mem-only | --fuzz-only | --lua VERSION]" >&2; exit 2 ;;
esac

case "$mode" in
  all) run_static; run_fuzz; start_lane lua-5.4-5.3 lane_54; start_lane lua-jit-5.1 lane_jit; join_lanes; run_mem ;;
  one) run_lua "$only" ${files[@]+"${files[@]}"} ;;
  mem) run_mem ;;
  fuzz) run_fuzz ;;
esac

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
