-- spec/support/files.lua: reading files in specs.
local files = {}

-- The whole file, or an assertion failure naming it.
function files.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

return files
