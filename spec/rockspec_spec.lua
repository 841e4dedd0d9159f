-- The rockspec installs what the tree holds: every Lua module and every C
-- source is listed, and `luarocks make` gives an owl that loads from any
-- folder (installed here into a temporary tree, not the system's).
local ROCKSPEC = "rockspec/owl-scm-1.rockspec"

local read = require("support.files").read

local function lines_of(cmd)
  local out, p = {}, assert(io.popen(cmd))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

describe("rockspec", function()
  local env = {}
  setup(function()
    local chunk = assert((loadstring or load)(read(ROCKSPEC)))
    if setfenv then setfenv(chunk, env) else chunk = assert(load(read(ROCKSPEC), ROCKSPEC, "t", env)) end
    chunk()
  end)

  it("lists every Lua module under lua/", function()
    for _, path in ipairs(lines_of("find lua -name '*.lua' | sort")) do
      local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      assert.equal(path, env.build.modules[name], "module " .. name .. " is not in the rockspec")
    end
  end)

  it("lists every C source of owl.core", function()
    local listed = {}
    for _, s in ipairs(env.build.modules["owl.core"].sources) do listed[s] = true end
    for _, path in ipairs(lines_of("ls csrc/*.c")) do
      assert.is_true(listed[path], path .. " is not in the rockspec")
    end
  end)

  it("installs with luarocks make, and owl loads from another folder", function()
    local tree = os.tmpname()
    os.remove(tree)
    local ok = os.execute("luarocks --lua-version=5.4 --tree " .. tree .. " make " .. ROCKSPEC ..
      " --deps-mode=none >" .. tree .. ".log 2>&1")
    assert.is_true(ok == true or ok == 0, "luarocks make failed: " .. (io.open(tree .. ".log") and read(tree .. ".log") or ""))
    local out = lines_of("cd / && LUA_PATH='" .. tree .. "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua' " ..
      "LUA_CPATH='" .. tree .. "/lib/lua/5.4/?.so' lua5.4 -e " ..
      "'local owl = require(\"owl\"); print(owl.json.encode({ required = owl.json.array() }), " ..
      "package.searchpath(\"owl.core\", package.cpath))' 2>&1")
    os.execute("rm -rf " .. tree .. " " .. tree .. ".log")
    assert.equal('{"required":[]}', out[1]:match("^(%S+)"))
    assert.truthy(out[1]:find(tree .. "/lib/lua/5.4/owl/core.so", 1, true))
  end)
end)
