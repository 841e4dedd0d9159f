#!/bin/sh
# make analysis: the data-analysis example (examples/analysis.lua) against
# OpenAI when OPENAI_API_KEY is set, against Anthropic when
# ANTHROPIC_API_KEY is, else against owl's mock LLM server, started here on
# a free loopback port with the scripted session
# examples/analysis/mock_session.json loaded, and stopped at the end. It
# always says which. Arguments go to the example: [output-folder [file.csv]].
set -u
caller="$PWD"
cd "$(dirname "$0")/.."
# The paths given are the caller's, not the checkout's.
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$caller" "$1" ;; esac; }
if [ $# -ge 2 ]; then
  out="$(abs "$1")"; csv="$(abs "$2")"; shift 2; set -- "$out" "$csv" "$@"
elif [ $# -eq 1 ]; then
  set -- "$(abs "$1")"
fi
ROOT="$PWD"
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
LUA_CPATH="$ROOT/build/5.4/?.so;;"
export LUA_PATH LUA_CPATH

if [ -n "${OPENAI_API_KEY:-}" ] || [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  exec lua5.4 examples/analysis.lua "$@"
fi
echo "owl analysis: no OPENAI_API_KEY or ANTHROPIC_API_KEY: starting owl's MOCK LLM server (spec/mock/server.js)" >&2
. examples/start_mock.sh
start_mock "owl analysis"
# The scripted answers, as data: the mock gives each request the entry
# whose "when" strings it holds.
if ! node -e '
  const [url, file] = process.argv.slice(1);
  fetch(url, { method: "POST", headers: { "content-type": "application/json" },
               body: require("fs").readFileSync(file) })
    .then(async (r) => { if (!r.ok) { console.error(await r.text()); process.exit(1); } })
    .catch((e) => { console.error(e.message); process.exit(1); });
' "http://127.0.0.1:$port/_mock/script" examples/analysis/mock_session.json; then
  echo "owl analysis: could not load the scripted session into the mock" >&2
  exit 1
fi
OWL_DEMO_MOCK_URL="http://127.0.0.1:$port/v1" lua5.4 examples/analysis.lua "$@"
