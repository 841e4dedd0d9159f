-- owl.flow.plan: stage 1, orchestrate. One structured-output call returns
-- the plan, which must pass its schema: a refusal, a cut-off answer or an
-- invalid plan (its dependencies included, owl.flow.dag) is an error naming
-- why.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local schema = require("owl.schema")
local dag = require("owl.flow.dag")

local M = {}

local S = schema
M.schema = S.object{
  { "objective", S.string{ description = "The goal of the whole problem, in one or two sentences." } },
  { "subtasks", S.array(S.object{
      { "name", S.string{ description = "A short identifier for the subtask, like parse_input." } },
      { "description", S.string{ description = "What to build, precisely enough to do it without the other subtasks." } },
    }, { minItems = 1, description = "Independent parts that can be solved in parallel." }) },
}

-- The plan with dependencies (owl.flow.dag_plan_schema): a subtask that
-- needs another's result names it, and runs once that one is done.
M.dag_schema = S.object{
  { "objective", S.string{ description = "The goal of the whole problem, in one or two sentences." } },
  { "subtasks", S.array(S.object{
      { "name", S.string{ description = "A short unique identifier for the subtask, like parse_input." } },
      { "description", S.string{ description = "What to build, precisely enough to do it from this and the results it depends on." } },
      { "depends_on", S.array(S.string(), {
          description = "Names of the subtasks whose results this one needs; [] when it needs none." }) },
    }, { minItems = 1, description = "Parts of the problem; parts that depend on no other run in parallel." }) },
}

-- A structured answer as a table, or nil and an `invalid` error naming
-- what is wrong with it (what: "the plan", "the re-plan"). Model text an
-- error quotes is redacted of the client's secrets.
function M.decode(text, json_schema, secrets, what)
  local v, derr = json.decode(text)
  if v == nil then
    return nil, errors.new("invalid", errors.redact(what .. " is not JSON: " .. tostring(derr), secrets))
  end
  local ok, problems = schema.validate(json_schema, v)
  if not ok then
    local lines = {}
    for i = 1, math.min(#problems, 5) do
      local p = problems[i]
      lines[i] = (p.path == "" and "(root)" or p.path) .. ": " .. p.message
    end
    if #problems > 5 then lines[#lines + 1] = "and " .. (#problems - 5) .. " more" end
    local message = what .. " does not match its schema: " .. table.concat(lines, "; ")
    return nil, errors.new("invalid", errors.redact(message, secrets), { problems = problems, plan = v })
  end
  return v
end

-- Each subtask needs a name and a description (a custom schema may add
-- fields, never drop these two: the prompts use them).
function M.check_subtasks(subtasks, what, v)
  for i, st in ipairs(subtasks) do
    if type(st) ~= "table" or type(st.name) ~= "string" or type(st.description) ~= "string" then
      return errors.new("invalid", "subtask " .. i .. " of " .. what .. " needs a name and a description", { plan = v })
    end
  end
  return nil
end

local function read(text, json_schema, secrets)
  local plan, err = M.decode(text, json_schema, secrets, "the plan")
  if not plan then return nil, err end
  if type(plan.objective) ~= "string" or type(plan.subtasks) ~= "table" or #plan.subtasks == 0 then
    return nil, errors.new("invalid", "the plan needs an objective and at least one subtask", { plan = plan })
  end
  err = M.check_subtasks(plan.subtasks, "the plan", plan)
  if err then return nil, err end
  local order, derr = dag.resolve(plan.subtasks)
  if not order then
    err = derr
    err.message, err.plan = errors.redact(err.message, secrets), plan
    return nil, err
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
  ctx.partial.objective = plan.objective
  ctx:add(plan.subtasks)
  if #plan.subtasks > max_subtasks then
    return nil, errors.new("invalid", "the plan has " .. #plan.subtasks .. " subtasks, more than max_subtasks ("
      .. max_subtasks .. "); no worker was started", { plan = plan })
  end
  return plan
end

return M
