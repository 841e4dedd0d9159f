-- The rockspecs install what the tree holds: every Lua module is listed,
-- the Makefile target they build with compiles every C source, the
-- versioned rockspec is the scm one at a release tag and nothing else, both
-- pass `luarocks lint`, and a build exports nothing but luaopen_owl_core.
-- spec/install_spec.lua installs them.
local SCM = "rockspec/owl-scm-1.rockspec"
local RELEASE = "rockspec/owl-0.2.0-1.rockspec"

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

-- A rockspec's globals, as LuaRocks reads them (a chunk run in its own env).
local function load_rockspec(path)
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadstring(read(path), path))
    setfenv(chunk, env)
  else
    chunk = assert(load(read(path), path, "t", env))
  end
  chunk()
  return env
end

local function deep_equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local BUILD = os.getenv("OWL_BUILD_DIR") or ("build/" .. (type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")))

describe("rockspec", function()
  local scm, release
  setup(function()
    scm, release = load_rockspec(SCM), load_rockspec(RELEASE)
  end)

  it("lists every Lua module under lua/, where it lives in the tree", function()
    local listed = 0
    for _, path in ipairs(lines_of("find lua -name '*.lua' | sort")) do
      local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/", ".")
      assert.equal(path, scm.build.install.lua[name], "module " .. name .. " is not in the rockspec")
      listed = listed + 1
    end
    local count = 0
    for _ in pairs(scm.build.install.lua) do count = count + 1 end
    assert.equal(listed, count, "the rockspec lists a module lua/ does not hold")
    assert.equal("bin/owl", scm.build.install.bin.owl)
  end)

  it("builds with the Makefile's rock target, which compiles every C source into BUILD alone", function()
    assert.equal("make", scm.build.type)
    assert.equal("rock", scm.build.build_target)
    assert.equal("$(LIBDIR)", scm.build.build_variables.BUILD)
    local cmd = table.concat(lines_of("make -n --no-print-directory rock BUILD=/x/lib 2>&1"), "\n")
    for _, path in ipairs(lines_of("ls csrc/*.c")) do
      assert.truthy(cmd:find(path, 1, true), path .. " is not compiled by `make rock`: " .. cmd)
    end
    assert.truthy(cmd:find("-o /x/lib/owl/core.so", 1, true), cmd)
    -- one compiler call, sources to library: no object file to leave behind
    assert.is_nil(cmd:find("%.o[%s]"), cmd)
  end)

  it("the versioned rockspec is the scm one at the release tag", function()
    local version = RELEASE:match("owl%-([%d.]+)%-%d+%.rockspec$")
    assert.equal(version .. "-1", release.version)
    assert.equal("v" .. version, release.source.tag)
    assert.equal(scm.source.url, release.source.url)
    assert.equal("scm-1", scm.version)
    for _, field in ipairs({ "rockspec_format", "package", "description", "dependencies",
                             "external_dependencies", "build" }) do
      assert.is_true(deep_equal(scm[field], release[field]), field .. " differs between " .. SCM .. " and " .. RELEASE)
    end
    -- owl.version names the release the versioned rockspec installs
    assert.equal(version, require("owl").version)
  end)

  it("both pass luarocks lint, which fails a broken one", function()
    for _, path in ipairs({ SCM, RELEASE }) do
      local out = table.concat(lines_of("luarocks lint " .. path .. " 2>&1; echo \"exit=$?\""), "\n")
      assert.truthy(out:find("exit=0", 1, true), path .. ": " .. out)
    end
    local dir = lines_of("mktemp -d /tmp/owl-lint.XXXXXX")[1]
    local broken = dir .. "/owl-0.2.0-1.rockspec"
    local f = assert(io.open(broken, "w"))
    f:write((read(RELEASE):gsub('tag = "v[^"]*"', "tag = 2")))
    f:close()
    local out = table.concat(lines_of("luarocks lint " .. broken .. " 2>&1; echo \"exit=$?\""), "\n")
    os.execute("rm -rf " .. dir)
    assert.truthy(out:find("source.tag", 1, true), out)
    assert.is_nil(out:find("exit=0", 1, true), out)
  end)

  it("the build under test exports luaopen_owl_core and no other function", function()
    assert.same({ "luaopen_owl_core" }, exported_functions(BUILD .. "/owl/core.so"))
  end)
end)
