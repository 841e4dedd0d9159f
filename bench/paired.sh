#!/bin/sh
# bench/paired.sh MODE PAIRS [URL]: runs ../shared/bench's c_curl_floor and
# bench/owl alternately, PAIRS times, against a running fake server (URL,
# default http://127.0.0.1:18500/v1: start one with
# `PORT=18500 node ../shared/bench/fake_openai/server.js`), 1000 subtasks,
# MODE 0 (json) or 1 (stream). Prints each pair (floor CPU s, owl CPU s,
# ratio, floor peak RSS KB, owl peak RSS KB, ratio) and the median ratios.
# Alternating takes most of a shared machine's drift out of the ratio,
# which run.sh, measuring one peer after the other, cannot.
set -eu
cd "$(dirname "$0")/.."
mode="${1:?usage: bench/paired.sh MODE PAIRS [URL]}"
pairs="${2:?usage: bench/paired.sh MODE PAIRS [URL]}"
OPENAI_BASE_URL="${3:-http://127.0.0.1:18500/v1}" SUBTASKS=1000 STREAM="$mode"
export OPENAI_BASE_URL SUBTASKS STREAM
floor=../shared/bench/peers/c_curl_floor/run
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
i=0
while [ "$i" -lt "$pairs" ]; do
  /usr/bin/time -f "%U %S %M" -o "$tmp/f" "$floor" >/dev/null
  /usr/bin/time -f "%U %S %M" -o "$tmp/o" bench/owl/run >/dev/null
  echo "$(cat "$tmp/f") $(cat "$tmp/o")"
  i=$((i + 1))
done | awk '{f = $1 + $2; o = $4 + $5; printf "%.2f %.2f %.3f %d %d %.3f\n", f, o, o / f, $3, $6, $6 / $3}' >"$tmp/pairs"
cat "$tmp/pairs"
median() { cut -d' ' -f"$1" "$tmp/pairs" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "median CPU ratio $(median 3), median peak RSS ratio $(median 6) ($pairs pairs, STREAM=$mode)"
