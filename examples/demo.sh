#!/bin/sh
# make demo: the coding flow against the real API when a key is set, else
# against owl's mock LLM server, started here on a free loopback port and
# stopped at the end. It always says which.
set -u
cd "$(dirname "$0")/.."
ROOT="$PWD"
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
LUA_CPATH="$ROOT/build/5.4/?.so;;"
export LUA_PATH LUA_CPATH

if [ -n "${OPENAI_API_KEY:-}" ]; then
  exec lua5.4 examples/coding.lua "$@"
fi
if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  echo "owl demo: ANTHROPIC_API_KEY is set, but this version of owl speaks only OpenAI-compatible APIs;" >&2
  echo "owl demo: the Anthropic Messages provider is a later issue. Using the mock instead." >&2
fi
echo "owl demo: no OPENAI_API_KEY: starting owl's MOCK LLM server (spec/mock/server.js)" >&2
dir="$(mktemp -d /tmp/owl-demo.XXXXXX)"
node spec/mock/server.js --port 0 --port-file "$dir/ports" --parent-pid $$ --max-lifetime 300 >"$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
while [ ! -s "$dir/ports" ] || ! grep -q '^pid=' "$dir/ports"; do
  i=$((i + 1))
  if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "owl demo: the mock server did not start:" >&2
    cat "$dir/log" >&2
    exit 1
  fi
  sleep 0.1
done
port="$(sed -n 's/^port=//p' "$dir/ports")"
OWL_DEMO_MOCK_URL="http://127.0.0.1:$port/v1" lua5.4 examples/coding.lua "$@"
