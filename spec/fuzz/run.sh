#!/usr/bin/env bash
# spec/fuzz/run.sh SECONDS TARGET...: runs each built libFuzzer target
# (build/fuzz/TARGET, made by `make fuzz`) for SECONDS, and prints one line
# per target:
#   fuzz json_decode: ok, 812345 runs in 10 s, corpus 74 inputs
#   fuzz sse: FAILED (crash: build/fuzz/sse-crash-...; add it to spec/fuzz/sse/ once fixed)
# Exits nonzero when any target failed or could not run.
#
# The seeds in spec/fuzz/TARGET/ are read, never written: what the fuzzer
# adds goes to build/fuzz/TARGET-corpus/ (kept between runs, so a longer run
# starts where the last ended), crashes to build/fuzz/TARGET-crash-*.
set -u
cd "$(dirname "$0")/../.."
seconds="${1:?usage: spec/fuzz/run.sh SECONDS TARGET...}"; shift
rc=0
for t in "$@"; do
  bin="build/fuzz/$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz $t: FAILED (no $bin: make fuzz builds it)"
    rc=1; continue
  fi
  mkdir -p "build/fuzz/$t-corpus"
  log="build/fuzz/$t.log"
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: one that
  # grows past 2 GiB is unbounded memory; both are reported as failures.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build/fuzz/$t-" "build/fuzz/$t-corpus" "spec/fuzz/$t" >"$log" 2>&1
  code=$?
  runs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -1)"
  corpus="$(ls "build/fuzz/$t-corpus" | wc -l)"
  if [ "$code" = 0 ] && [ -n "$runs" ]; then
    echo "fuzz $t: ok, $runs, corpus $corpus inputs"
  else
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
    grep -m1 -E 'ERROR: |broken promise|runtime error' "$log" | sed "s/^/fuzz $t: /"
    echo "fuzz $t: FAILED (exit $code${artifact:+, input: $artifact}; log: $log)${artifact:+ - fix it, then add the input to spec/fuzz/$t/ with a regression spec}"
    rc=1
  fi
done
exit $rc
