-- owl.core_loader: loads owl.core (owl's C part) and, when the build that
-- package.cpath finds is for another Lua, says which one and how to rebuild,
-- where require alone says "undefined symbol: lua_replace". owl and bin/owl
-- load the core through this before anything else requires it.
--
-- A build for another Lua usually cannot be loaded at all, so it cannot be
-- asked what it is: core.c keeps "owl.core built for: Lua 5.4" (or LuaJIT)
-- as a string in the library, and this reads it from the file. LuaJIT and
-- Lua 5.1 share one C API: a build for either loads in both.
local M = {}

local MARK = "owl.core built for: "

-- The Lua running this code, named as core.c names a build.
function M.running()
  if type(jit) == "table" then return "LuaJIT" end
  return _VERSION
end

local function abi(name)
  if name == "LuaJIT" then return "Lua 5.1" end
  return name
end

-- The two commands that build owl.core for the Lua named `lua`.
function M.build_commands(lua)
  local make_version = lua == "LuaJIT" and "jit" or lua:match("%d+%.%d+") or "5.4"
  local rocks_version = lua == "LuaJIT" and "5.1" or make_version
  return "`make LUA_VERSION=" .. make_version .. "` (in a checkout) or `luarocks --lua-version="
    .. rocks_version .. " make rockspec/owl-scm-1.rockspec`"
end

-- The file require would load owl.core from (package.searchpath is 5.2+).
function M.find(cpath)
  for template in (cpath or package.cpath):gmatch("[^;]+") do
    local path = template:gsub("%?", "owl/core")
    local f = io.open(path, "rb")
    if f then
      f:close()
      return path
    end
  end
  return nil
end

-- What the library at path was built for ("Lua 5.4", "LuaJIT"), or nil
-- when it carries no mark (a build older than the mark, or not owl's).
function M.built_for(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  local at = data:find(MARK, 1, true)
  if not at then return nil end
  return data:match("^[^%z]*", at + #MARK)
end

local function mismatch(path, built, reason)
  local running = M.running()
  local was = built and ("for " .. built) or "for another Lua (it names none: an older build)"
  local why = reason and (" (" .. reason .. ")") or ""
  return "owl.core in " .. path .. " was built " .. was .. "; this is " .. running .. why .. ": rebuild with "
    .. M.build_commands(running)
end

-- require("owl.core"), or an error that names the build and the fix.
function M.load()
  local ok, core = pcall(require, "owl.core")
  if ok then
    local built = type(core) == "table" and core.built_for
    if built and abi(built) ~= abi(M.running()) then
      package.loaded["owl.core"] = nil
      error(mismatch(M.find() or "package.cpath", built), 0)
    end
    return core
  end
  local message = tostring(core)
  local path = M.find()
  if not path then
    error("owl.core (owl's C part) is not built for " .. M.running() .. ": build it with "
      .. M.build_commands(M.running())
      .. "\n" .. message, 0)
  end
  local built = M.built_for(path)
  local symbol = message:match("undefined symbol: (lua[%w_]*)")
  if built and abi(built) ~= abi(M.running()) then
    error(mismatch(path, built, symbol and ("undefined symbol " .. symbol)), 0)
  end
  if not built and symbol then
    error(mismatch(path, nil, "undefined symbol " .. symbol), 0)
  end
  -- the right Lua but another failure (a missing libcurl, say): require's
  -- own message says it best
  error(message, 0)
end

return M
