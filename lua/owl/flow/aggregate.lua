-- owl.flow.aggregate: stage 3. The aggregator call merges the worker
-- outputs into the final result; they go into its body as json.rope pieces,
-- escaped by the C encoder straight from their strings, never joined here.
--
-- Outputs too big for one aggregator call (their estimated tokens over
-- max_aggregate_tokens) are merged in a tree: the outputs are cut into
-- groups that fit, the groups merged in parallel, then the merged results
-- the same way, until one call takes them all. result.tree records it.
local core = require("owl.core")
local json = require("owl.json")
local prompts = require("owl.prompts")
local errors = require("owl.errors")
local task = require("owl.task")
local workers = require("owl.flow.workers")

local M = {}

-- An aggregator's window, in tokens, for its worker outputs, unless
-- max_aggregate_tokens says otherwise (a number, or a table by model name
-- with an optional `default`).
M.DEFAULT_MAX_TOKENS = 100000
-- Tokens are estimated, not counted: a byte count over this, a fair
-- figure for English and code with the tokenizers of both providers.
M.BYTES_PER_TOKEN = 4

function M.estimate(s)
  return math.ceil(#s / M.BYTES_PER_TOKEN)
end

-- The window for the aggregator's model.
function M.max_tokens(ctx)
  local m = ctx.opts.max_aggregate_tokens
  if type(m) == "number" then return m end
  if type(m) == "table" then
    local model = ctx:model_for("aggregator") or ctx.client.model
    return m[model] or m.default or M.DEFAULT_MAX_TOKENS
  end
  return M.DEFAULT_MAX_TOKENS
end

-- Consecutive groups whose outputs fit max tokens together. Every group
-- but a lone last one takes at least two items, whatever their size, so
-- each level has at most half the items of the one before: the tree ends.
function M.groups(items, max)
  local groups, cur, size = {}, nil, 0
  for i, item in ipairs(items) do
    if i % 16 == 0 then task.checkpoint() end -- a thousand outputs do not hold a host's frame
    local t = M.estimate(item.output) + M.estimate(item.name)
    if cur and #cur.items >= 2 and size + t > max then cur = nil end
    if not cur then
      cur, size = { first = i, items = {} }, 0
      groups[#groups + 1] = cur
    end
    cur.items[#cur.items + 1] = item
    cur.last, size = i, size + t
  end
  return groups
end

-- One aggregator call over items ({name, output}) -> text, or nil and an
-- error. info goes into its delta events (level, group).
local function merge(ctx, objective, items, info)
  local agg = ctx.prompts.aggregator
  local vars = { problem = ctx.problem, objective = objective }
  local outputs = prompts.sections(agg.section, items, "aggregator.section")
  task.checkpoint()
  local pieces = prompts.render_pieces(agg.user, {
    problem = ctx.problem, objective = objective, outputs = outputs,
  }, "aggregator.user")
  task.checkpoint()
  pieces = prompts.compact(pieces) -- the encoder then reads a few long strings
  task.checkpoint()
  local request = {
    model = ctx:model_for("aggregator"),
    messages = {
      { role = "system", content = prompts.render(agg.system, vars, "aggregator.system") },
      { role = "user", content = json.rope(pieces) },
    },
    stream = ctx.opts.stream or nil,
  }
  local deltas = 0
  local res, err = ctx:call("aggregator", "the aggregator", request,
    function(loop) return core.aggregate(loop, ctx:spec_of(request)) end,
    function(delta)
      deltas = deltas + 1
      ctx:event("aggregate_delta", { delta = delta, deltas = deltas, level = info.level, group = info.group })
    end)
  if not res then return nil, err end
  return ctx:answer_text(res)
end

-- Merges each group in its own task, a window at a time -> the merged
-- items of the next level, or nil and the first error.
local function level(ctx, objective, groups, depth)
  local window = task.semaphore(workers.window(ctx.opts.max_workers, #groups))
  local merged, failures, tasks = {}, {}, {}
  for g, group in ipairs(groups) do
    tasks[g] = task.spawn(function()
      if not window:acquire() then return end
      local out, err = merge(ctx, objective, group.items, { level = depth, group = g })
      window:release()
      if err then failures[#failures + 1] = { group = g, err = err } end
      local first, last = group.items[1].name, group.items[#group.items].name
      merged[g] = { name = "merged " .. first .. " to " .. last, output = out or false }
    end)
  end
  for g = 1, #tasks do
    if g % 16 == 0 then task.checkpoint() end
    local _, terr = tasks[g]:wait()
    if terr ~= nil and not (errors.is(terr) and terr.kind == "cancelled") then error(terr, 0) end
  end
  if #failures > 0 then
    table.sort(failures, function(a, b) return a.group < b.group end)
    return nil, failures[1].err
  end
  return merged
end

-- M.run(ctx, objective, items [, max_tokens]) -> the final answer (fences
-- stripped), or nil and an error; and the tree: one entry per level,
-- { inputs = n, groups = { {first, last}, ... }, seconds }, the last level
-- a single group. items: { {name, output}, ... }. Each level of a real
-- tree (more than one call) is announced: aggregate_level {level, inputs,
-- groups}.
function M.run(ctx, objective, items, max_tokens)
  max_tokens = max_tokens or M.max_tokens(ctx)
  local tree = {}
  ctx.partial.tree = tree
  local depth = 0
  while true do
    depth = depth + 1
    local groups = M.groups(items, max_tokens)
    local started = ctx:seconds()
    local record = { inputs = #items, groups = {} }
    for g, group in ipairs(groups) do record.groups[g] = { first = group.first, last = group.last } end
    tree[depth] = record
    -- a run whose outputs fit one call has no tree to report
    if depth > 1 or #groups > 1 then
      ctx:event("aggregate_level", { level = depth, inputs = #items, groups = #groups })
    end
    if #groups == 1 then
      local final, err = merge(ctx, objective, items, { level = depth, group = 1 })
      record.seconds = ctx:seconds() - started
      if not final then return nil, err end
      return final, tree
    end
    local merged, err = level(ctx, objective, groups, depth)
    record.seconds = ctx:seconds() - started
    if not merged then return nil, err end
    items = merged
  end
end

-- The items to merge: each subtask's name and output (a custom flow may
-- aggregate what it has, failures included).
function M.items(subtasks, outputs)
  local items = {}
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then task.checkpoint() end
    items[i] = { name = st.name, output = outputs[i] or "(no result: this subtask failed)" }
  end
  return items
end

return M
