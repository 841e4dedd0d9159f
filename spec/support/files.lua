-- spec/support/files.lua: reading and writing files in specs.
local files = {}

-- The whole file, or an assertion failure naming it.
function files.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The whole file, or nil when it cannot be opened (not there yet).
function files.read_if(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Makes text the whole file (created or emptied first), or an assertion
-- failure naming it.
function files.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

return files
