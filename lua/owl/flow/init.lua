-- owl.flow: owl.run, the orchestrator-workers flow. This is policy, meant
-- to be read and edited: which prompt goes where, what counts as a failed
-- step. It runs three stages over one context (owl.flow.context), each in
-- its own module, over provider-neutral requests:
--
--   1. plan (owl.flow.plan): one structured-output call returns the plan,
--      checked against its schema and max_subtasks;
--   2. workers (owl.flow.workers): one task per subtask, a window of them in
--      flight at once; a failed worker does not stop the others;
--   3. aggregate (owl.flow.aggregate): the outputs merged into the final
--      answer;
--   4. check (owl.flow.check), with the option `check`: the answer checked
--      and, while it fails, repaired up to max_repairs times.
local json = require("owl.json")
local schema = require("owl.schema")
local client_mod = require("owl.client")
local context = require("owl.flow.context")
local plan_stage = require("owl.flow.plan")
local workers_stage = require("owl.flow.workers")
local aggregate_stage = require("owl.flow.aggregate")
local check_stage = require("owl.flow.check")

local M = {}

M.plan_schema = plan_stage.schema

local OPTIONS = { prompts = "table", schema = "table", models = "table", model = "string",
                  max_workers = "number", max_subtasks = "number", max_total_response_bytes = "number",
                  on_event = "function", stream = "boolean",
                  check = "function", max_repairs = "number" }

-- A plan is a model's answer: without a bound, one runaway plan of ten
-- thousand subtasks is ten thousand paid calls. A run that wants more says so.
M.DEFAULT_MAX_SUBTASKS = 100
-- What every response of one run may add up to, all workers together.
M.DEFAULT_MAX_TOTAL_RESPONSE_BYTES = 256 * 1024 * 1024

local function is_count(v, max)
  return type(v) == "number" and v >= 1 and v <= max and v == math.floor(v)
end
local ROLES = { orchestrator = true, worker = true, aggregator = true }

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("owl.run: options must be a table, got " .. type(opts), 3) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == nil then error("owl.run: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then error("owl.run: option '" .. k .. "' must be a " .. want .. ", got " .. type(v), 3) end
  end
  if opts.models then
    for role, m in pairs(opts.models) do
      if not ROLES[role] then error("owl.run: models has an unknown role '" .. tostring(role) .. "'", 3) end
      if type(m) ~= "string" then error("owl.run: models." .. role .. " must be a string", 3) end
    end
  end
  -- Every bound is checked here, before the orchestrator call is paid for.
  -- max_workers may exceed the plan: it is a cap, not a count.
  if opts.max_workers ~= nil and not is_count(opts.max_workers, 2^53 - 1) then
    error("owl.run: option 'max_workers' must be a positive integer, got " .. tostring(opts.max_workers), 3)
  end
  if opts.max_subtasks ~= nil and not is_count(opts.max_subtasks, 1e6) then
    error("owl.run: option 'max_subtasks' must be an integer from 1 to 1000000, got " .. tostring(opts.max_subtasks), 3)
  end
  local total = opts.max_total_response_bytes
  if total ~= nil and not is_count(total, 2^53 - 1) then
    error("owl.run: option 'max_total_response_bytes' must be a positive integer, got " .. tostring(total), 3)
  end
  check_stage.check_options(opts)
  return opts
end

-- owl.run(client, problem, opts) -> result, or nil and an owl error whose
-- `partial` holds everything that did finish.
function M.run(client, problem, opts)
  if not client_mod.is_client(client) then error("owl.run: the first argument must be an owl client", 2) end
  if type(problem) ~= "string" or problem:find("^%s*$") then
    error("owl.run: the problem must be a non-empty string", 2)
  end
  local bad_byte = json.utf8_error(problem)
  if bad_byte then
    error("owl.run: the problem is not valid UTF-8 (byte " .. bad_byte .. ")", 2)
  end
  opts = check_options(opts)
  local ctx = context.new(client, problem, opts,
    opts.max_total_response_bytes or M.DEFAULT_MAX_TOTAL_RESPONSE_BYTES)
  for _, role in ipairs({ "orchestrator", "worker", "aggregator" }) do
    if type(ctx.prompts[role]) ~= "table" then error("owl.run: prompts." .. role .. " is missing", 2) end
  end
  local plan_decl = opts.schema or M.plan_schema
  local json_schema = schema.is_decl(plan_decl) and schema.to_json(plan_decl) or plan_decl

  local plan, err = plan_stage.run(ctx, json_schema, opts.max_subtasks or M.DEFAULT_MAX_SUBTASKS)
  if not plan then return ctx:fail(err) end
  ctx.partial.objective, ctx.partial.subtasks = plan.objective, plan.subtasks
  ctx:event("plan", { objective = plan.objective, subtasks = plan.subtasks })

  err = workers_stage.run(ctx, plan)
  if err then return ctx:fail(err) end

  ctx:event("aggregate_start", {})
  local final
  final, err = aggregate_stage.run(ctx, plan, ctx.partial.outputs)
  if not final then return ctx:fail(err) end

  local result = {
    objective = plan.objective,
    subtasks = plan.subtasks,
    outputs = ctx.partial.outputs,
    final = final,
    usage = ctx.usage,
  }
  if opts.check then
    err = check_stage.run(ctx, plan, result)
    if err then return ctx:fail(err) end
  end
  ctx:event("done", { usage = ctx.usage })
  return result
end

return M
