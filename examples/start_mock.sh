# examples/start_mock.sh, sourced by the example launchers (demo.sh,
# analysis.sh, game_loop.sh): start_mock NAME starts owl's mock LLM server
# (spec/mock/server.js) on a free loopback port, waits until it listens,
# and sets `port` (and `dir`, a temporary folder removed at exit); the
# server is stopped when the launcher exits, and dies with it anyway
# (--parent-pid) or after 300 s. NAME prefixes its messages. Run from the
# checkout's root.
start_mock() {
  dir="$(mktemp -d "/tmp/owl-mock.XXXXXX")"
  node spec/mock/server.js --port 0 --port-file "$dir/ports" --parent-pid $$ --max-lifetime 300 >"$dir/log" 2>&1 &
  mock_pid=$!
  trap 'kill "$mock_pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
  i=0
  while [ ! -s "$dir/ports" ] || ! grep -q '^pid=' "$dir/ports"; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$mock_pid" 2>/dev/null; then
      echo "$1: the mock server did not start:" >&2
      cat "$dir/log" >&2
      exit 1
    fi
    sleep 0.1
  done
  port="$(sed -n 's/^port=//p' "$dir/ports")"
}
