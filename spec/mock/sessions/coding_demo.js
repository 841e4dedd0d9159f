// spec/mock/sessions/coding_demo.js: the scripted session `make demo` plays
// against the mock (header x-mock-session: coding_demo). These answers were
// written by hand, not by a model: a plan of three subtasks for the demo
// problem (examples/coding.lua), the code of each, a first integrated
// solution with a bug (the variance divided by n, where the tests want the
// sample variance, divided by n - 1), and its repair.
//
// Each reply is chosen by what the request holds, not by arrival order (the
// workers run in parallel): the first rule whose every `when` string occurs
// in the request's messages wins. So the repair (it quotes the buggy line)
// comes first, then the aggregator (it quotes every subtask name), then
// each worker (its own subtask name). A structured request gets the plan.
'use strict';

const plan = {
  objective: 'A Lua module stats: an accumulator with push, count, mean, variance (Welford\'s method), min and max, whose file runs its own tests when run as a script.',
  subtasks: [
    { name: 'running_moments', description: 'Welford\'s update of count, mean and the sum of squared deviations (fields n, mu, m2 of the accumulator), and the methods mean() (nil when empty) and variance() (the sample variance, nil below two values).' },
    { name: 'range_tracking', description: 'Keep the smallest and largest value pushed (fields lo and hi), and the methods min() and max() (nil when empty).' },
    { name: 'self_tests', description: 'Assert-based tests of the whole module that run when the file is run as a script (not when it is required): count, mean, sample variance, min and max of a known data set, an empty accumulator, a single value, and values far from zero.' },
  ],
};

const buggy = `-- stats: streaming statistics in one pass. The variance is kept by
-- Welford's method, which stays accurate where summing squares would not.
local stats = {}
stats.__index = stats

function stats.new()
  return setmetatable({ n = 0, mu = 0, m2 = 0, lo = nil, hi = nil }, stats)
end

-- Welford's update of the count, the mean and the sum of squared
-- deviations from the mean.
local function update_moments(acc, x)
  acc.n = acc.n + 1
  local delta = x - acc.mu
  acc.mu = acc.mu + delta / acc.n
  acc.m2 = acc.m2 + delta * (x - acc.mu)
end

local function update_range(acc, x)
  if acc.lo == nil or x < acc.lo then acc.lo = x end
  if acc.hi == nil or x > acc.hi then acc.hi = x end
end

function stats:push(x)
  assert(type(x) == "number" and x == x, "stats: push needs a number")
  update_moments(self, x)
  update_range(self, x)
  return self
end

function stats:count() return self.n end

-- nil until there is a value to average
function stats:mean()
  if self.n == 0 then return nil end
  return self.mu
end

-- the variance: nil below two values
function stats:variance()
  if self.n < 2 then return nil end
  return self.m2 / self.n
end

function stats:min() return self.lo end
function stats:max() return self.hi end

-- Tests: \`lua stats.lua\` runs them; require("stats") does not.
if ... == nil then -- run as a script: require passes the module name
  local function near(a, b) return math.abs(a - b) < 1e-9 end
  local acc = stats.new()
  for _, x in ipairs({ 2, 4, 4, 4, 5, 5, 7, 9 }) do acc:push(x) end
  assert(acc:count() == 8, "count: expected 8, got " .. tostring(acc:count()))
  assert(near(acc:mean(), 5), "mean: expected 5, got " .. tostring(acc:mean()))
  assert(near(acc:variance(), 32 / 7), "variance: expected " .. 32 / 7 .. ", got " .. tostring(acc:variance()))
  assert(acc:min() == 2 and acc:max() == 9, "min and max: expected 2 and 9")
  local empty = stats.new()
  assert(empty:mean() == nil and empty:variance() == nil and empty:min() == nil, "an empty accumulator has no statistics")
  local one = stats.new():push(-3.5)
  assert(one:mean() == -3.5 and one:variance() == nil and one:min() == -3.5 and one:max() == -3.5, "one value")
  -- Welford's method keeps its precision far from zero
  local big = stats.new()
  for _, x in ipairs({ 1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16 }) do big:push(x) end
  assert(near(big:variance(), 30), "variance far from zero: expected 30, got " .. tostring(big:variance()))
  print("stats: all tests passed")
end

return stats
`;

const fixed = `-- stats: streaming statistics in one pass. The variance is kept by
-- Welford's method, which stays accurate where summing squares would not.
local stats = {}
stats.__index = stats

function stats.new()
  return setmetatable({ n = 0, mu = 0, m2 = 0, lo = nil, hi = nil }, stats)
end

-- Welford's update of the count, the mean and the sum of squared
-- deviations from the mean.
local function update_moments(acc, x)
  acc.n = acc.n + 1
  local delta = x - acc.mu
  acc.mu = acc.mu + delta / acc.n
  acc.m2 = acc.m2 + delta * (x - acc.mu)
end

local function update_range(acc, x)
  if acc.lo == nil or x < acc.lo then acc.lo = x end
  if acc.hi == nil or x > acc.hi then acc.hi = x end
end

function stats:push(x)
  assert(type(x) == "number" and x == x, "stats: push needs a number")
  update_moments(self, x)
  update_range(self, x)
  return self
end

function stats:count() return self.n end

-- nil until there is a value to average
function stats:mean()
  if self.n == 0 then return nil end
  return self.mu
end

-- the sample variance (divided by n - 1): nil below two values
function stats:variance()
  if self.n < 2 then return nil end
  return self.m2 / (self.n - 1)
end

function stats:min() return self.lo end
function stats:max() return self.hi end

-- Tests: \`lua stats.lua\` runs them; require("stats") does not.
if ... == nil then -- run as a script: require passes the module name
  local function near(a, b) return math.abs(a - b) < 1e-9 end
  local acc = stats.new()
  for _, x in ipairs({ 2, 4, 4, 4, 5, 5, 7, 9 }) do acc:push(x) end
  assert(acc:count() == 8, "count: expected 8, got " .. tostring(acc:count()))
  assert(near(acc:mean(), 5), "mean: expected 5, got " .. tostring(acc:mean()))
  assert(near(acc:variance(), 32 / 7), "variance: expected " .. 32 / 7 .. ", got " .. tostring(acc:variance()))
  assert(acc:min() == 2 and acc:max() == 9, "min and max: expected 2 and 9")
  local empty = stats.new()
  assert(empty:mean() == nil and empty:variance() == nil and empty:min() == nil, "an empty accumulator has no statistics")
  local one = stats.new():push(-3.5)
  assert(one:mean() == -3.5 and one:variance() == nil and one:min() == -3.5 and one:max() == -3.5, "one value")
  -- Welford's method keeps its precision far from zero
  local big = stats.new()
  for _, x in ipairs({ 1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16 }) do big:push(x) end
  assert(near(big:variance(), 30), "variance far from zero: expected 30, got " .. tostring(big:variance()))
  print("stats: all tests passed")
end

return stats
`;

module.exports = {
  plan,
  replies: [
    { when: ['return self.m2 / self.n\n'], text: '```lua\n' + fixed + '```' },
    { when: ['running_moments', 'range_tracking', 'self_tests'], text: '```lua\n' + buggy + '```' },
    { when: ['running_moments'], text: `\`\`\`lua
-- Welford's update of the count, the mean and the sum of squared
-- deviations from the mean: one pass, accurate far from zero.
local function update_moments(acc, x)
  acc.n = acc.n + 1
  local delta = x - acc.mu
  acc.mu = acc.mu + delta / acc.n
  acc.m2 = acc.m2 + delta * (x - acc.mu)
end

function stats:mean()
  if self.n == 0 then return nil end
  return self.mu
end

-- the sample variance (divided by n - 1): nil below two values
function stats:variance()
  if self.n < 2 then return nil end
  return self.m2 / (self.n - 1)
end
\`\`\`` },
    { when: ['range_tracking'], text: `\`\`\`lua
-- The smallest and largest values seen; nil before the first push.
local function update_range(acc, x)
  if acc.lo == nil or x < acc.lo then acc.lo = x end
  if acc.hi == nil or x > acc.hi then acc.hi = x end
end

function stats:min() return self.lo end
function stats:max() return self.hi end
\`\`\`` },
    { when: ['self_tests'], text: `\`\`\`lua
-- Tests: \`lua stats.lua\` runs them; require("stats") does not.
if ... == nil then
  local function near(a, b) return math.abs(a - b) < 1e-9 end
  local acc = stats.new()
  for _, x in ipairs({ 2, 4, 4, 4, 5, 5, 7, 9 }) do acc:push(x) end
  assert(acc:count() == 8, "count: expected 8, got " .. tostring(acc:count()))
  assert(near(acc:mean(), 5), "mean: expected 5, got " .. tostring(acc:mean()))
  assert(near(acc:variance(), 32 / 7), "variance: expected " .. 32 / 7 .. ", got " .. tostring(acc:variance()))
  assert(acc:min() == 2 and acc:max() == 9, "min and max: expected 2 and 9")
  local empty = stats.new()
  assert(empty:mean() == nil and empty:variance() == nil and empty:min() == nil, "an empty accumulator has no statistics")
  local one = stats.new():push(-3.5)
  assert(one:mean() == -3.5 and one:variance() == nil and one:min() == -3.5 and one:max() == -3.5, "one value")
  -- Welford's method keeps its precision far from zero
  local big = stats.new()
  for _, x in ipairs({ 1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16 }) do big:push(x) end
  assert(near(big:variance(), 30), "variance far from zero: expected 30, got " .. tostring(big:variance()))
  print("stats: all tests passed")
end
\`\`\`` },
  ],
};
