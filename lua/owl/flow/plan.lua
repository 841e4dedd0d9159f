-- owl.flow.plan: stage 1, orchestrate. One structured-output call returns
-- the plan, which must pass its schema: a refusal, a cut-off answer or an
-- invalid plan is an error naming why.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local schema = require("owl.schema")

local M = {}

local S = schema
M.schema = S.object{
  { "objective", S.string{ description = "The goal of the whole problem, in one or two sentences." } },
  { "subtasks", S.array(S.object{
      { "name", S.string{ description = "A short identifier for the subtask, like parse_input." } },
      { "description", S.string{ description = "What to build, precisely enough to do it without the other subtasks." } },
    }, { minItems = 1, description = "Independent parts that can be solved in parallel." }) },
}

-- The plan as a table, or nil and an error naming what is wrong with it.
-- Model text an error quotes is redacted of the client's secrets.
local function read(text, json_schema, secrets)
  local plan, derr = json.decode(text)
  if plan == nil then
    return nil, errors.new("invalid", errors.redact("the plan is not JSON: " .. tostring(derr), secrets))
  end
  local ok, problems = schema.validate(json_schema, plan)
  if not ok then
    local lines = {}
    for i = 1, math.min(#problems, 5) do
      local p = problems[i]
      lines[i] = (p.path == "" and "(root)" or p.path) .. ": " .. p.message
    end
    if #problems > 5 then lines[#lines + 1] = "and " .. (#problems - 5) .. " more" end
    local message = "the plan does not match its schema: " .. table.concat(lines, "; ")
    return nil, errors.new("invalid", errors.redact(message, secrets), { problems = problems, plan = plan })
  end
  if type(plan.objective) ~= "string" or type(plan.subtasks) ~= "table" or #plan.subtasks == 0 then
    return nil, errors.new("invalid", "the plan needs an objective and at least one subtask", { plan = plan })
  end
  for i, st in ipairs(plan.subtasks) do
    if type(st) ~= "table" or type(st.name) ~= "string" or type(st.description) ~= "string" then
      return nil, errors.new("invalid", "subtask " .. i .. " of the plan needs a name and a description", { plan = plan })
    end
  end
  return plan
end

-- M.run(ctx, json_schema, max_subtasks) -> plan, or nil and an error. A plan
-- over max_subtasks is refused here, before any worker is paid for.
function M.run(ctx, json_schema, max_subtasks)
  local request = {
    model = ctx:model_for("orchestrator"),
    messages = ctx:messages(ctx.prompts.orchestrator, { problem = ctx.problem }, "orchestrator"),
    structured = { name = "plan", schema = json_schema },
    stream = ctx.opts.stream or nil, -- read whole either way: no events for the plan's pieces
  }
  local res, err = ctx:call("orchestrator", "the orchestrator", request,
    function(loop) return core.orchestrate(loop, ctx:spec_of(request)) end)
  if not res then return nil, err end
  local plan
  plan, err = read(res.text, json_schema, ctx.client.secrets)
  if not plan then return nil, err end
  if #plan.subtasks > max_subtasks then
    return nil, errors.new("invalid", "the plan has " .. #plan.subtasks .. " subtasks, more than max_subtasks ("
      .. max_subtasks .. "); no worker was started", { plan = plan })
  end
  return plan
end

return M
