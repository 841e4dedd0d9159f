-- spec/fuzz/make-seeds.lua: writes the seeds taken from the recorded
-- exchanges in ../shared/fixtures/real/ into the corpora under spec/fuzz/
-- (the files named real-*; the hand-written seeds are committed as they
-- are). Run from the repository root when the fixtures change:
--   LUA_PATH="spec/?.lua;;" lua5.4 spec/fuzz/make-seeds.lua
-- The fixtures are read with the mock's own JSON codec, not owl's: the
-- seeds must not depend on the decoder they are there to test.
local mock = require("support.mock")

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  f:close()
end

-- The data values of a stream's events, in order (the fixtures are
-- well-formed: "data: " lines, blank-line separated).
local function data_lines(body)
  local out = {}
  for line in body:gmatch("[^\n]+") do
    local v = line:match("^data: ?(.*)$")
    if v and v ~= "[DONE]" then out[#out + 1] = v end
  end
  return out
end

local count = 0
for _, name in ipairs(mock.fixture_names()) do
  local fx = mock.fixture(name)
  local stem = "real-" .. name:gsub("%.json$", "")
  if fx.body:match("^data:") or fx.body:match("^event:") then
    -- the SSE target: two control bytes (default cap, no chosen split), the stream
    write("spec/fuzz/sse/" .. stem, "\0\0" .. fx.body)
    -- the JSON and picker targets: the first chunk, one from the middle,
    -- the last two
    local lines = data_lines(fx.body)
    local picks = { 1, math.floor(#lines / 2), #lines - 1, #lines }
    local seen = {}
    for _, i in ipairs(picks) do
      if lines[i] and not seen[i] then
        seen[i] = true
        write(string.format("spec/fuzz/json_decode/%s-chunk-%02d", stem, i), lines[i])
        write(string.format("spec/fuzz/pick/%s-chunk-%02d", stem, i), lines[i])
        count = count + 2
      end
    end
    -- the picker's memo: a stream's data lines, one per line, in order
    write("spec/fuzz/pick/" .. stem .. "-lines", table.concat(lines, "\n"))
    count = count + 1
  else
    write("spec/fuzz/json_decode/" .. stem .. "-body", fx.body)
  end
  count = count + 1
end
print("make-seeds: wrote " .. count .. " seeds")
