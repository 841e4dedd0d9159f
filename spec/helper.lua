-- spec/helper.lua: loaded by busted before every spec file. Puts the build
-- of owl.core for the running interpreter first on package.cpath and the
-- repository's Lua modules first on package.path, so the specs test this
-- checkout, never an installed copy.
local flavor
if type(jit) == "table" then
  flavor = "jit"
else
  flavor = _VERSION:match("Lua (%d+%.%d+)")
end
local build = os.getenv("OWL_BUILD_DIR") or ("build/" .. flavor)
package.cpath = build .. "/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
