#!/bin/sh
# make demo: the coding flow, checked and repaired, against OpenAI when
# OPENAI_API_KEY is set, against Anthropic when ANTHROPIC_API_KEY is, else
# against owl's mock LLM server playing a scripted session, started here on
# a free loopback port and stopped at the end. It always says which. The
# check runs the solution's own tests with lua5.4 in a temporary folder.
set -u
cd "$(dirname "$0")/.."
ROOT="$PWD"
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
LUA_CPATH="$ROOT/build/5.4/?.so;;"
export LUA_PATH LUA_CPATH

if [ -n "${OPENAI_API_KEY:-}" ] || [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  exec lua5.4 examples/coding.lua "$@"
fi
echo "owl demo: no OPENAI_API_KEY or ANTHROPIC_API_KEY: starting owl's MOCK LLM server (spec/mock/server.js)" >&2
. examples/start_mock.sh
start_mock "owl demo"
OWL_DEMO_MOCK_URL="http://127.0.0.1:$port/v1" lua5.4 examples/coding.lua "$@"
