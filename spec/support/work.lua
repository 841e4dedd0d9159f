-- spec/support/work.lua: how much work a function does on an input, in
-- units of one linear pass over it, for the specs that pin linear text
-- handling (a bound on the work relative to the input, not a wall-clock
-- time).
--
--   local work = require("support.work")
--   assert.is_true(work(text.strip_fences, s) < 40)

-- CPU seconds per call of f(s), over enough calls to be measurable.
local function cost(f, s)
  local calls, start = 0, os.clock()
  repeat
    f(s)
    calls = calls + 1
  until os.clock() - start >= 0.05
  return (os.clock() - start) / calls
end

-- The work f does on s, in units of one linear pass over s (a gsub that
-- visits and copies every byte). A linear f stays a small constant whatever
-- the size; a quadratic one grows with the input (at 16k bytes, thousands).
local function work(f, s)
  return cost(f, s) / cost(function(x) return x:gsub(".", "%0") end, s)
end

return work
