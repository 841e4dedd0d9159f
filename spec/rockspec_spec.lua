-- The rockspec installs what the tree holds: every Lua module and every C
-- source is listed, and `luarocks make` gives an owl that loads from any
-- folder (installed here into a temporary tree, not the system's) and
-- exports nothing but luaopen_owl_core.
local ROCKSPEC = "rockspec/owl-scm-1.rockspec"

local read = require("support.files").read

local function lines_of(cmd)
  local out, p = {}, assert(io.popen(cmd))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- The function symbols a shared object exports (nm -D: T, W or i).
local function exported_functions(so)
  local names = {}
  for _, line in ipairs(lines_of("nm -D --defined-only " .. so .. " 2>&1")) do
    local kind, name = line:match("^%x+ (%a) (%S+)$")
    assert(kind, "nm: " .. line)
    if kind == "T" or kind == "W" or kind == "i" then names[#names + 1] = name end
  end
  return names
end

local BUILD = os.getenv("OWL_BUILD_DIR") or ("build/" .. (type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")))

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
    -- LuaRocks' builtin build passes no -fvisibility flag: the headers'
    -- visibility pragma alone keeps owl's internals out of the symbol table
    local exported = exported_functions(tree .. "/lib/lua/5.4/owl/core.so")
    os.execute("rm -rf " .. tree .. " " .. tree .. ".log")
    assert.equal('{"required":[]}', out[1]:match("^(%S+)"))
    assert.truthy(out[1]:find(tree .. "/lib/lua/5.4/owl/core.so", 1, true))
    assert.same({ "luaopen_owl_core" }, exported)
  end)

  it("the build under test exports luaopen_owl_core and no other function", function()
    assert.same({ "luaopen_owl_core" }, exported_functions(BUILD .. "/owl/core.so"))
  end)
end)
