-- Installing owl, as a user does, and what happens when owl.core is a build
-- for another Lua.
--
-- The rockspec installs into a temporary tree for the Lua running the spec
-- (LuaJIT: LuaRocks' 5.1 tree, whose build LuaJIT loads), from the
-- checkout, which must hold no new file afterwards: LuaRocks' builtin
-- backend used to leave csrc/*.o and ./owl/core.so there, and bin/owl run in
-- the checkout under Lua 5.4 then loaded that 5.1 build and died on
-- "undefined symbol: lua_replace". The installed bin/owl, and a script that
-- requires owl from the tree alone, then run a flow against the mock from
-- another folder. LuaRocks runs with its proxies at a closed loopback port:
-- owl needs no rock from a server (its one dependency, lua, is the
-- interpreter itself), and a fetch would fail the install.
local mock = require("support.mock")
local read = require("support.files").read

local FLAVOR = type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")
local LUA = FLAVOR == "jit" and "luajit" or ("lua" .. FLAVOR)
-- LuaRocks has no LuaJIT of its own on Debian: its 5.1 tree serves LuaJIT
local ROCKS_LUA = FLAVOR == "jit" and "5.1" or FLAVOR
-- The versioned rockspec on 5.4, 5.1 and LuaJIT, the scm one on 5.3 (make
-- test runs the spec on all four): one install per Lua keeps each run near
-- 30 s, and spec/rockspec_spec.lua holds the two rockspecs' builds equal.
local ROCKSPEC = FLAVOR == "5.3" and "rockspec/owl-scm-1.rockspec" or "rockspec/owl-0.2.0-1.rockspec"
local NO_NETWORK = "http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 no_proxy=127.0.0.1"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its stdout+stderr and exit code.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)\n$"))
  return (out:gsub("exit=%d+\n$", "")), code
end

local function temp_dir()
  local out = sh("mktemp -d /tmp/owl-install.XXXXXX")
  return (out:gsub("%s+$", ""))
end

local function exported_functions(so)
  local names = {}
  for line in (sh("nm -D --defined-only " .. q(so)) .. ""):gmatch("[^\n]+") do
    local kind, name = line:match("^%x+ (%a) (%S+)$")
    if kind == "T" or kind == "W" or kind == "i" then names[#names + 1] = name end
  end
  return names
end

-- Every file in the checkout, ignored ones included, that git does not track.
local function untracked()
  local out, code = sh("git status --porcelain --ignored --untracked-files=all")
  assert.equal(0, code, out)
  return out
end

-- A Lua script that runs a flow on the mock with the owl it finds, and says
-- where every owl module and owl.core came from.
local SCRIPT = [[
local owl = require("owl")
local client = owl.client{ base_url = arg[1], api_key = "sk-install", model = "gpt-4o-mini", max_retries = 0,
  headers = { ["x-mock-subtasks"] = "2" } }
local result = assert(owl.run(client, "Write a parser"))
print("final: " .. result.final:gsub("\n", " "))
print("built_for: " .. require("owl.core").built_for)
for name in pairs(package.loaded) do
  if name == "owl" or name:match("^owl%.") then
    local m = package.loaded[name]
    local f = type(m) == "table" and (m.run or m.new or m.load or m.encode)
    local src = name == "owl.core" and package.searchpath and package.searchpath("owl.core", package.cpath)
    if type(f) == "function" and debug.getinfo(f, "S").source:sub(1, 1) == "@" then
      src = debug.getinfo(f, "S").source:sub(2)
    end
    if src then print("module " .. name .. " " .. src) end
  end
end
]]

describe("installing with LuaRocks", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  do
    local rockspec = ROCKSPEC
    it(rockspec .. " installs for Lua " .. ROCKS_LUA .. ", leaves the checkout as it was, and runs a flow from another folder",
      function()
        local tree, elsewhere = temp_dir(), temp_dir()
        local before = untracked()
        local out, code = sh(NO_NETWORK .. " luarocks --lua-version=" .. ROCKS_LUA .. " --tree " .. q(tree) .. " make " .. rockspec)
        local after = untracked()
        finally(function() sh("rm -rf " .. q(tree) .. " " .. q(elsewhere)) end)
        assert.equal(0, code, out)
        assert.equal(before, after, "luarocks make left files in the checkout")

        local lib = tree .. "/lib/lua/" .. ROCKS_LUA
        local share = tree .. "/share/lua/" .. ROCKS_LUA
        assert.same({ "luaopen_owl_core" }, exported_functions(lib .. "/owl/core.so"))
        for path in sh("find lua -name '*.lua'"):gmatch("[^\n]+") do
          assert.equal(read(path), read(share .. path:gsub("^lua", "")), path .. " is not installed as it is")
        end
        -- LuaRocks' wrapper runs the tree's Lua with the tree first on its
        -- paths (with --deps-mode=none it puts no tree there at all)
        local wrapper = read(tree .. "/bin/owl")
        assert.truthy(wrapper:find('package.path="' .. share .. "/?.lua;", 1, true), wrapper)
        assert.truthy(wrapper:find('package.cpath="' .. lib .. "/?.so;", 1, true), wrapper)

        local env = "env -u LD_PRELOAD -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_PATH_5_3 "
          .. "-u LUA_CPATH_5_3 " .. NO_NETWORK .. " OPENAI_API_KEY=sk-install "
        out, code = sh("cd " .. q(elsewhere) .. " && " .. env .. q(tree .. "/bin/owl") .. " run --base-url " .. server.url
          .. " --header 'x-mock-subtasks: 2' Write a parser")
        assert.equal(0, code, out)
        assert.truthy(out:find("Part 1 of 2 of the problem.", 1, true), out)
        assert.truthy(out:find("Part 2 of 2 of the problem.", 1, true), out)

        -- require("owl") with the tree alone on the paths (no ";;": not the
        -- system's trees, not the checkout)
        local script = elsewhere .. "/flow.lua"
        local f = assert(io.open(script, "w"))
        f:write(SCRIPT)
        f:close()
        local paths = "LUA_PATH=" .. q(share .. "/?.lua;" .. share .. "/?/init.lua") .. " LUA_CPATH=" .. q(lib .. "/?.so")
        out, code = sh("cd " .. q(elsewhere) .. " && " .. env .. paths .. " " .. LUA .. " flow.lua " .. server.url)
        assert.equal(0, code, out)
        assert.truthy(out:find("final: [^\n]*Part 1 of 2 of the problem%."), out)
        assert.truthy(out:find("built_for: " .. (FLAVOR == "jit" and "Lua 5.1" or _VERSION) .. "\n", 1, true), out)
        local modules = 0
        for name, src in out:gmatch("module (%S+) (%S+)") do
          modules = modules + 1
          assert.truthy(src:find(tree, 1, true) == 1, name .. " came from " .. src .. ", not the tree")
        end
        assert.is_true(modules >= 5, out)
      end)
  end
end)

describe("owl.core for another Lua", function()
  -- A Lua with a C API other than the running one's (5.1 and LuaJIT share one).
  local OTHER = (FLAVOR == "5.1" or FLAVOR == "jit") and "5.4" or "5.1"
  local scratch, server
  setup(function()
    server = mock.start()
    scratch = temp_dir()
    local out, code = sh("make --no-print-directory LUA_VERSION=" .. OTHER .. " build")
    assert.equal(0, code, out)
  end)
  teardown(function()
    server:stop()
    sh("rm -rf " .. q(scratch))
  end)

  local function require_owl(cpath)
    return sh("cd " .. q(scratch) .. " && env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_PATH_5_3 -u LUA_CPATH_5_3 "
      .. "LUA_PATH=" .. q(mock.root .. "/lua/?.lua;" .. mock.root .. "/lua/?/init.lua") .. " LUA_CPATH=" .. q(cpath)
      .. " " .. LUA .. " -e 'print(require(\"owl\").version)'")
  end

  local running = FLAVOR == "jit" and "LuaJIT" or _VERSION
  local make_v = FLAVOR
  local rocks_v = ROCKS_LUA

  it("is named, with the commands that rebuild it", function()
    sh("mkdir -p " .. q(scratch .. "/a/owl") .. " && cp build/" .. OTHER .. "/owl/core.so " .. q(scratch .. "/a/owl/"))
    local out, code = require_owl(scratch .. "/a/?.so")
    assert.is_not.equal(0, code)
    assert.truthy(out:find("owl.core in " .. scratch .. "/a/owl/core.so was built for Lua " .. OTHER .. "; this is "
      .. running, 1, true), out)
    assert.truthy(out:find("rebuild with `make LUA_VERSION=" .. make_v .. "`", 1, true), out)
    assert.truthy(out:find("`luarocks --lua-version=" .. rocks_v .. " make rockspec/owl-scm-1.rockspec`", 1, true), out)
  end)

  it("is reported as for another Lua when it is older than the mark", function()
    sh("mkdir -p " .. q(scratch .. "/b/owl"))
    local f = assert(io.open(scratch .. "/b/owl/core.so", "wb"))
    f:write((read("build/" .. OTHER .. "/owl/core.so"):gsub("owl%.core built for: ", "owl.core xxxxx for: ")))
    f:close()
    local out, code = require_owl(scratch .. "/b/?.so")
    assert.is_not.equal(0, code)
    assert.truthy(out:find("was built for another Lua (it names none: an older build); this is " .. running, 1, true), out)
    assert.truthy(out:find("undefined symbol lua", 1, true), out)
  end)

  it("is never loaded out of the folder bin/owl runs in (the checkout a 5.1 luarocks make left ./owl/core.so in)",
    function()
      -- a checkout with ./owl/core.so for another Lua and, at first, no
      -- build for this one
      local co = scratch .. "/checkout"
      sh("mkdir -p " .. q(co .. "/bin") .. " " .. q(co .. "/owl") .. " && cp bin/owl " .. q(co .. "/bin/")
        .. " && ln -s " .. q(mock.root .. "/lua") .. " " .. q(co .. "/lua")
        .. " && cp build/" .. OTHER .. "/owl/core.so " .. q(co .. "/owl/"))
      local function owl(base_url)
        return sh("cd " .. q(co) .. " && env -u LUA_PATH -u LUA_PATH_5_4 -u LUA_PATH_5_3 -u LUA_CPATH_5_4 -u LUA_CPATH_5_3 "
          .. "LUA_CPATH='./?.so' LUA_CPATH_" .. FLAVOR:gsub("%.", "_") .. "='./?.so' OPENAI_API_KEY=sk-install " .. LUA
          .. " bin/owl run --base-url " .. base_url .. " --header 'x-mock-subtasks: 2' Write a parser")
      end
      local out, code = owl("http://127.0.0.1:9/v1")
      assert.equal(1, code, out)
      assert.truthy(out:find("owl: owl.core (owl's C part) is not built for " .. running .. ": build it with `make LUA_VERSION="
        .. make_v .. "`", 1, true), out)
      assert.is_nil(out:find("undefined symbol", 1, true), out)

      -- with the checkout's build for this Lua, it runs, ./owl/core.so or not
      sh("mkdir -p " .. q(co .. "/build") .. " && ln -s " .. q(mock.root .. "/build/" .. FLAVOR) .. " " .. q(co .. "/build/" .. FLAVOR))
      out, code = owl(server.url)
      assert.equal(0, code, out)
      assert.truthy(out:find("Part 2 of 2 of the problem.", 1, true), out)
    end)
end)
