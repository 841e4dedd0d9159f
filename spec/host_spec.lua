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
