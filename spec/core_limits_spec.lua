-- spec/core_limits_spec.lua: owl.core under the process limits a host may
-- impose (a game thread's 128 KiB stack, ulimit -n 64). Each case runs a
-- child Lua under `sh -c 'ulimit ...'`, so this file is not in check-mem's
-- list: the memory tools would not follow the child anyway.
local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BUILD = os.getenv("OWL_BUILD_DIR") or ("build/" .. (type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")))

-- Runs `script` in a child Lua after `limits` (shell ulimit commands);
-- returns its output (stdout and stderr) and exit code.
local function child(limits, script)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('package.cpath = "' .. BUILD .. '/?.so;" .. package.cpath\n', script)
  f:close()
  local p = assert(io.popen("unset LD_PRELOAD; sh -c '" .. limits .. "; exec " .. LUA .. " " .. path .. "' 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out:gsub("exit=%d+\n$", ""), tonumber(out:match("exit=(%d+)\n$"))
end

describe("regression: JSON recursion on the C stack segfaulted on a 128 KiB stack", function()
  -- Nesting at the limit must work and one level past it must fail with the
  -- depth message, in both directions, for arrays and for objects. On 5.1
  -- and LuaJIT the Lua stack (8000 slots) ends 10000 levels first, with its
  -- own message: what matters is that nothing crashes.
  local SCRIPT = [[
local json = require("owl.core").json
local function nest(n, object)
  local root = {}
  local t = root
  for _ = 2, n do
    local inner = {}
    if object then t.a = inner else t[1] = inner end
    t = inner
  end
  return root
end
local function text(n, object)
  return string.rep(object and '{"a":' or "[", n) .. "1" .. string.rep(object and "}" or "]", n)
end
for _, limit in ipairs({ 1000, 10000 }) do
  local opts = { max_depth = limit }
  for _, object in ipairs({ false, true }) do
    local what = limit .. (object and " object" or " array")
    local ok, s = pcall(json.encode, nest(limit, object), opts)
    print(what, "encode at limit", ok and "ok" or s)
    ok, s = pcall(json.encode, nest(limit + 1, object), opts)
    print(what, "encode past limit", ok and "ok" or s)
    local v, err = json.decode(text(limit, object), opts)
    print(what, "decode at limit", v and "ok" or err)
    v, err = json.decode(text(limit + 1, object), opts)
    print(what, "decode past limit", v and "ok" or err)
  end
end
print("done")
]]

  it("encodes and decodes at max_depth, and refuses one level more, under ulimit -s 128", function()
    local out, code = child("ulimit -s 128", SCRIPT)
    assert.equal(0, code, out)
    assert.truthy(out:find("done\n", 1, true), out)
    local small_lua_stack = LUA == "lua5.1" or LUA == "luajit"
    for line in out:gmatch("([^\n]+)\n") do
      local limit, direction, where, result = line:match("^(%d+) %a+\t(%a+) (%a+) limit\t(.*)$")
      if limit then
        if where == "at" and (limit == "1000" or not small_lua_stack) then
          assert.equal("ok", result, line)
        elseif where == "past" and (limit == "1000" or not small_lua_stack) then
          assert.truthy(result:find("nesting deeper than " .. limit, 1, true), line)
        else -- 10000 on 5.1 / LuaJIT: the Lua stack's own limit
          assert.truthy(result:find("Lua stack exhausted", 1, true), line)
        end
        assert.truthy(direction == "encode" or direction == "decode")
      end
    end
  end)
end)

describe("regression: running out of file descriptors read 'Couldn't connect to server'", function()
  -- 100 transfers at once with ulimit -n 64, against a loopback listener
  -- that holds every connection it accepts.
  local SCRIPT = [[
local core = require("owl.core")
local loop = core.loop()
for _ = 1, 100 do loop:request{ url = "http://127.0.0.1:" .. PORT .. "/", timeout = 1 } end
print("limit", core.fd_limit())
for _, t in ipairs(loop:run()) do
  local kind, message = t:failure()
  print(kind, message)
end
loop:close()
]]
  local HOLD_JS = "const s = require('net').createServer(() => {}); " ..
    "s.listen(0, '127.0.0.1', () => console.log(s.address().port + ' ' + process.pid)); " ..
    "setTimeout(() => process.exit(0), 60000).unref()"

  it("names the limit", function()
    -- the listener runs outside the limit, in a process of its own
    local srv = assert(io.popen("unset LD_PRELOAD; exec node -e \"" .. HOLD_JS .. "\"", "r"))
    local port, pid = srv:read("*l"):match("^(%d+) (%d+)$")
    local out, code = child("ulimit -n 64", "local PORT = " .. port .. "\n" .. SCRIPT)
    os.execute("kill " .. pid)
    srv:close()
    assert.equal(0, code, out)
    assert.truthy(out:find("^limit\t64\t%d+\n"), out)
    local named = select(2, out:gsub("connect\tout of file descriptors: this process may open 64 %(ulimit %-n%); " ..
      "lower max_workers or raise the limit\n", ""))
    assert.is_true(named > 0, out)
    assert.is_nil(out:find("Couldn't connect", 1, true), out)
  end)
end)
