-- owl.flow.aggregate: stage 3. The aggregator call merges the worker
-- outputs into the final result; they go into its body as json.rope pieces,
-- escaped by the C encoder straight from their strings, never joined here.
local core = require("owl.core")
local json = require("owl.json")
local prompts = require("owl.prompts")
local text = require("owl.text")

local M = {}

-- M.run(ctx, plan, outputs) -> the final answer (fences stripped), or nil
-- and an error.
function M.run(ctx, plan, outputs)
  local items = {}
  for i, st in ipairs(plan.subtasks) do items[i] = { name = st.name, output = outputs[i] } end
  local agg = ctx.prompts.aggregator
  local vars = { problem = ctx.problem, objective = plan.objective }
  local pieces = prompts.render_pieces(agg.user, {
    problem = ctx.problem, objective = plan.objective,
    outputs = prompts.sections(agg.section, items, "aggregator.section"),
  }, "aggregator.user")
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
      ctx:event("aggregate_delta", { delta = delta, deltas = deltas })
    end)
  if not res then return nil, err end
  return text.strip_fences(json.fix_utf8(res.text))
end

return M
