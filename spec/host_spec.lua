-- examples/host.c (issue 10 §3): a C program that embeds Lua 5.4 and owl
-- and drives a flow from its own loop with owl.step, built here with the
-- system compiler and run against the mock. Needs build/5.4.
local mock = require("support.mock")

describe("examples/host.c", function()
  local server, dir
  setup(function()
    server = mock.start()
    local _, _, out = mock.run("mktemp -d /tmp/owl-host.XXXXXX")
    dir = out:match("^[^\n]*")
  end)
  teardown(function()
    server:stop()
    if dir then mock.run("rm -rf " .. mock.shell_quote(dir)) end
  end)

  it("builds, embeds owl and runs a 20-worker flow turn by turn", function()
    local bin = dir .. "/host"
    local ok, code, out = mock.run("cc -O2 -Wall -Wextra -Werror -std=c99 -pedantic -o " .. mock.shell_quote(bin)
      .. " " .. mock.shell_quote(mock.root .. "/examples/host.c") .. " $(pkg-config --cflags --libs lua5.4)")
    assert(ok, "the build failed (" .. tostring(code) .. "): " .. out)
    ok, code, out = mock.run("timeout 60 " .. mock.shell_quote(bin) .. " " .. mock.shell_quote(mock.root) .. " "
      .. mock.shell_quote(server.url) .. " 20")
    assert(ok, "host exited " .. tostring(code) .. ": " .. out)
    local turns, outputs = out:match("host: flow done in (%d+) turns: (%d+) outputs")
    assert(turns, out)
    assert.equal(20, tonumber(outputs))
    assert.is_true(tonumber(turns) > 1) -- the flow ran across the host's turns
  end)

  it("says what is wrong when the server cannot be reached", function()
    local bin = dir .. "/host"
    local ok, _, out = mock.run("timeout 60 " .. mock.shell_quote(bin) .. " " .. mock.shell_quote(mock.root)
      .. " http://127.0.0.1:1/v1 3")
    assert.is_false(ok)
    assert.matches("host: the flow failed: ", out)
  end)
end)

-- examples/game_loop.lua (issue 10 §3): a 60 Hz frame loop driving a flow
-- with owl.step(1), run as written with this suite's Lua against the mock
-- (30 workers here; 1000 in bench/RESULTS.md).
describe("examples/game_loop.lua", function()
  local example = require("support.example")
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  local function run(env)
    local build = example.lua == "luajit" and "jit" or example.lua:match("lua(.*)")
    local cmd = "cd " .. mock.shell_quote(mock.root) .. " && env"
      .. " LUA_PATH=" .. mock.shell_quote(mock.root .. "/lua/?.lua;" .. mock.root .. "/lua/?/init.lua;;")
      .. " LUA_CPATH=" .. mock.shell_quote(mock.root .. "/build/" .. build .. "/?.so;;")
      .. " OWL_BASE_URL=" .. mock.shell_quote(server.url) .. " OWL_WORKERS=30 " .. (env or "")
      .. " timeout 120 " .. example.lua .. " examples/game_loop.lua 2>&1"
    local ok, code, out = mock.run(cmd)
    assert(ok, "game_loop.lua exited " .. tostring(code) .. ": " .. out)
    return out
  end

  -- the three figures of a line, checked to be times in order
  local function figures(out, label)
    local p50, p99, max = out:match(label .. "[^\n]-p50 ([%d.]+)  p99 ([%d.]+)  max ([%d.]+)")
    assert(p50, "no " .. label .. " line in: " .. out)
    p50, p99, max = tonumber(p50), tonumber(p99), tonumber(max)
    assert.is_true(p50 >= 0 and p50 <= p99 and p99 <= max, out)
    return p50, p99, max
  end

  it("runs the flow to its end, one owl.step a frame, and reports owl's time per frame", function()
    local out = run()
    local workers, outputs, frames = out:match("(%d+) workers, (%d+) outputs, (%d+) frames")
    assert(workers, out)
    assert.equal(30, tonumber(outputs))
    assert.is_true(tonumber(frames) > 3, out) -- the flow ran across frames
    figures(out, "wall:")
    figures(out, "cpu:")
    assert.not_matches("GC step", out) -- Lua's own collector, inside owl's slot
  end)

  it("reports the host's own GC step apart with OWL_GC=host", function()
    local out = run("OWL_GC=host")
    assert.matches("30 outputs", out)
    figures(out, "GC step cpu:")
  end)
end)
