-- owl.flow.plan: stage 1, orchestrate. One structured-output call returns
-- the plan, which must pass its schema: a refusal, a cut-off answer or an
-- invalid plan (its dependencies included, owl.flow.dag) is an error naming
-- why. An invalid plan is asked for again (max_replans), with the answer
-- and what was wrong with it; a plan given in opts.plan is checked alike.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local schema = require("owl.schema")
local prompts = require("owl.prompts")
local dag = require("owl.flow.dag")
local task = require("owl.task")

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
  if not ok then return nil, M.schema_error(problems, v, secrets, what) end
  return v
end

-- The `invalid` error of a value failing its schema: the first five
-- problems in the message, all of them in err.problems.
function M.schema_error(problems, v, secrets, what)
  local lines = {}
  for i = 1, math.min(#problems, 5) do
    local p = problems[i]
    lines[i] = (p.path == "" and "(root)" or p.path) .. ": " .. p.message
  end
  if #problems > 5 then lines[#lines + 1] = "and " .. (#problems - 5) .. " more" end
  local message = what .. " does not match its schema: " .. table.concat(lines, "; ")
  return errors.new("invalid", errors.redact(message, secrets), { problems = problems, plan = v })
end

-- Each subtask needs a name and a description (a custom schema may add
-- fields, never drop these two: the prompts use them).
function M.check_subtasks(subtasks, what, v)
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then task.checkpoint() end
    if type(st) ~= "table" or type(st.name) ~= "string" or type(st.description) ~= "string" then
      return errors.new("invalid", "subtask " .. i .. " of " .. what .. " needs a name and a description", { plan = v })
    end
  end
  return nil
end

-- A plan (decoded, or given by the caller) checked as the flow needs it:
-- its schema, a name and description per subtask, its dependencies, and
-- max_subtasks. -> plan, or nil and an `invalid` error (err.plan, and
-- err.problems for a schema failure; err.too_many past max_subtasks).
local function check(plan, json_schema, secrets, max_subtasks, what)
  local ok, problems = schema.validate(json_schema, plan)
  if not ok then return nil, M.schema_error(problems, plan, secrets, what) end
  if type(plan.objective) ~= "string" or type(plan.subtasks) ~= "table" or #plan.subtasks == 0 then
    return nil, errors.new("invalid", what .. " needs an objective and at least one subtask", { plan = plan })
  end
  local err = M.check_subtasks(plan.subtasks, what, plan)
  if err then return nil, err end
  local order, derr = dag.resolve(plan.subtasks)
  if not order then
    err = derr
    err.message, err.plan = errors.redact(err.message, secrets), plan
    return nil, err
  end
  if #plan.subtasks > max_subtasks then
    return nil, errors.new("invalid", what .. " has " .. #plan.subtasks .. " subtasks, more than max_subtasks ("
      .. max_subtasks .. "); no worker was started", { plan = plan, too_many = true })
  end
  return plan
end

-- A plan the model has another try at (max_replans) fails for any reason
-- it can mend: not JSON, its schema, its names or dependencies, its size.
-- A refusal or a cut-off answer is not asked again.
M.DEFAULT_MAX_REPLANS = 1

-- The orchestrator's messages for another try: the conversation so far,
-- the answer that could not be used, and what was wrong with it.
local function retry_messages(ctx, messages, answer, err)
  local p = ctx.prompts.orchestrator.retry or prompts.orchestrator.retry
  local copy = {}
  for i, m in ipairs(messages) do copy[i] = m end
  copy[#copy + 1] = { role = "assistant", content = answer }
  copy[#copy + 1] = { role = "user", content = prompts.render(p, { errors = err.message }, "orchestrator.retry") }
  return copy
end

-- The plan's subtasks join the run (ctx.partial), in order.
local function adopt(ctx, plan)
  ctx.partial.objective = plan.objective
  ctx:add(plan.subtasks)
end

-- M.run(ctx, json_schema, max_subtasks) -> plan, or nil and an error. The
-- plan is opts.plan when given (no call), else the orchestrator's: one
-- call, and up to opts.max_replans more while its answer cannot be used,
-- each shown the answer before and its errors. A plan over max_subtasks
-- is refused before any worker is paid for.
function M.run(ctx, json_schema, max_subtasks)
  local secrets = ctx.client.secrets
  if ctx.opts.plan ~= nil then
    local plan, err = check(ctx.opts.plan, json_schema, secrets, max_subtasks, "the given plan")
    if not plan then return nil, err end
    adopt(ctx, plan)
    return plan
  end
  local messages = ctx:messages(ctx.prompts.orchestrator, { problem = ctx.problem }, "orchestrator")
  local tries = (ctx.opts.max_replans or M.DEFAULT_MAX_REPLANS) + 1
  local plan, err
  for try = 1, tries do
    local request = {
      model = ctx:model_for("orchestrator"),
      messages = messages,
      structured = { name = "plan", schema = json_schema },
      stream = ctx.opts.stream or nil, -- read whole either way: no events for the plan's pieces
    }
    local res
    res, err = ctx:call("orchestrator", "the orchestrator", request,
      function(loop) return core.orchestrate(loop, ctx:spec_of(request)) end)
    if not res then return nil, err end
    -- a plan of a thousand subtasks takes a while to decode and check: not
    -- in the host's frame that received it
    task.checkpoint()
    local value
    value, err = json.decode(res.text)
    if value == nil then
      err = errors.new("invalid", errors.redact("the plan is not JSON: " .. tostring(err), secrets))
    else
      plan, err = check(value, json_schema, secrets, max_subtasks, "the plan")
      if plan then break end
    end
    err.tries = try
    if try < tries then
      ctx:event("plan_retry", { try = try, err = err })
      messages = retry_messages(ctx, messages, res.text, err)
    end
  end
  if not plan then
    -- a plan refused only for its size is still the run's plan, unrun
    if err.too_many then adopt(ctx, err.plan) end
    return nil, err
  end
  adopt(ctx, plan)
  return plan
end

return M
