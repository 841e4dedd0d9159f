-- owl.flow: owl.run, the orchestrator-workers flow. This is policy, meant
-- to be read and edited: which prompt goes where, what counts as a failed
-- step. It runs stages over one context (owl.flow.context), each in its own
-- module, over provider-neutral requests:
--
--   1. plan (owl.flow.plan): one structured-output call returns the plan,
--      checked against its schema, its dependencies and max_subtasks;
--   2. work (owl.flow.work): one task per subtask, a window of them in
--      flight at once, each once the subtasks it depends on are done; a
--      failed worker does not stop the others. With `replan`, the
--      orchestrator then judges the results (owl.flow.replan) and may ask
--      for another round;
--   3. aggregate (owl.flow.aggregate): the outputs merged into the final
--      answer, in a tree when they do not fit one aggregator call.
--   4. check (owl.flow.check), with the option `check`: the answer checked
--      and, while it fails, repaired up to max_repairs times.
--
-- The stages are public, so a custom flow recombines them without copying
-- owl.run: each takes the context and returns its product, or nil and an
-- owl error whose `partial` holds everything that did finish.
local json = require("owl.json")
local schema = require("owl.schema")
local client_mod = require("owl.client")
local context = require("owl.flow.context")
local plan_stage = require("owl.flow.plan")
local workers_stage = require("owl.flow.workers")
local replan_stage = require("owl.flow.replan")
local aggregate_stage = require("owl.flow.aggregate")
local worker_call = require("owl.flow.worker_call")
local check_stage = require("owl.flow.check")
local limits = require("owl.flow.limits")
local journal = require("owl.flow.journal")

local M = {}

M.plan_schema = plan_stage.schema
M.dag_plan_schema = plan_stage.dag_schema

local OPTIONS = { prompts = "table", schema = "table", models = "table", model = "string",
                  max_workers = "number", max_subtasks = "number", max_total_response_bytes = "number",
                  on_event = "function", stream = "boolean", max_retries = "number",
                  worker = "function",
                  replan = "boolean", max_rounds = "number", replan_bytes = "number",
                  max_aggregate_tokens = "number", -- or a table by model name
                  -- workers with tools (owl.flow.worker_call)
                  tools = "table", tools_for = "function", max_steps = "number", max_tool_result_bytes = "number",
                  -- checking the answer (owl.flow.check)
                  check = "function", max_repairs = "number",
                  output = "string",
                  -- reliability: failure policy, plan retries, limits, resuming
                  on_worker_error = "string", max_replans = "number", deadline = "number",
                  max_total_tokens = "number", journal = "string", plan = "table" }
local ON_WORKER_ERROR = { wait = true, fail_fast = true, skip = true }

-- A plan is a model's answer: without a bound, one runaway plan of ten
-- thousand subtasks is ten thousand paid calls. A run that wants more says so.
M.DEFAULT_MAX_SUBTASKS = 100
-- What every response of one run may add up to, all workers together.
M.DEFAULT_MAX_TOTAL_RESPONSE_BYTES = 256 * 1024 * 1024
-- Rounds of a run with replan = true, the first included.
M.DEFAULT_MAX_ROUNDS = 3

local function is_count(v, max)
  return type(v) == "number" and v >= 1 and v <= max and v == math.floor(v)
end
local ROLES = { orchestrator = true, worker = true, aggregator = true }

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("owl.run: options must be a table, got " .. type(opts), 4) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == nil then error("owl.run: unknown option '" .. tostring(k) .. "'", 4) end
    if k == "max_aggregate_tokens" and type(v) == "table" then want = "table" end
    if type(v) ~= want then error("owl.run: option '" .. k .. "' must be a " .. want .. ", got " .. type(v), 4) end
  end
  if opts.models then
    for role, m in pairs(opts.models) do
      if not ROLES[role] then error("owl.run: models has an unknown role '" .. tostring(role) .. "'", 4) end
      if type(m) ~= "string" then error("owl.run: models." .. role .. " must be a string", 4) end
    end
  end
  -- Every bound is checked here, before the orchestrator call is paid for.
  -- max_workers may exceed the plan: it is a cap, not a count.
  if opts.max_workers ~= nil and not is_count(opts.max_workers, 2^53 - 1) then
    error("owl.run: option 'max_workers' must be a positive integer, got " .. tostring(opts.max_workers), 4)
  end
  if opts.max_subtasks ~= nil and not is_count(opts.max_subtasks, 1e6) then
    error("owl.run: option 'max_subtasks' must be an integer from 1 to 1000000, got " .. tostring(opts.max_subtasks), 4)
  end
  client_mod.check_retries("owl.run", opts.max_retries, 4)
  if opts.output ~= nil and opts.output ~= "code" and opts.output ~= "text" then
    error("owl.run: option 'output' must be \"code\" or \"text\", got \"" .. opts.output .. "\"", 4)
  end
  for _, k in ipairs({ "max_total_response_bytes", "max_rounds", "replan_bytes" }) do
    if opts[k] ~= nil and not is_count(opts[k], 2^53 - 1) then
      error("owl.run: option '" .. k .. "' must be a positive integer, got " .. tostring(opts[k]), 4)
    end
  end
  local mat = opts.max_aggregate_tokens
  for model, v in pairs(type(mat) == "table" and mat or { [1] = mat }) do
    if not is_count(v, 2^53 - 1) then
      error("owl.run: option 'max_aggregate_tokens' must be a positive integer or a table of them by model name, got "
        .. (type(mat) == "table" and tostring(model) .. " = " or "") .. tostring(v), 4)
    end
  end
  worker_call.check_options(opts, 4)
  check_stage.check_options(opts, 5)
  if opts.on_worker_error ~= nil and not ON_WORKER_ERROR[opts.on_worker_error] then
    error("owl.run: option 'on_worker_error' must be 'wait', 'fail_fast' or 'skip', got '"
      .. opts.on_worker_error .. "'", 4)
  end
  local mr = opts.max_replans
  if mr ~= nil and not (mr >= 0 and mr <= 100 and mr == math.floor(mr)) then
    error("owl.run: option 'max_replans' must be an integer from 0 to 100, got " .. tostring(mr), 4)
  end
  limits.check_options(opts, 4)
  journal.check_options(opts, 4)
  return opts
end

-- owl.flow.context(client, problem [, opts]) -> the context the stages
-- share. opts are owl.run's; every one is checked here, so a bad one
-- raises before any call is paid for.
local function new_context(client, problem, opts, level)
  if not client_mod.is_client(client) then error("owl.run: the first argument must be an owl client", level) end
  if type(problem) ~= "string" or problem:find("^%s*$") then
    error("owl.run: the problem must be a non-empty string", level)
  end
  local bad_byte = json.utf8_error(problem)
  if bad_byte then
    error("owl.run: the problem is not valid UTF-8 (byte " .. bad_byte .. ")", level)
  end
  opts = check_options(opts)
  local ctx = context.new(client, problem, opts,
    opts.max_total_response_bytes or M.DEFAULT_MAX_TOTAL_RESPONSE_BYTES)
  for _, role in ipairs({ "orchestrator", "worker", "aggregator" }) do
    if type(ctx.prompts[role]) ~= "table" then error("owl.run: prompts." .. role .. " is missing", level) end
  end
  return ctx
end

function M.context(client, problem, opts)
  local ctx = new_context(client, problem, opts, 3)
  -- the limits end a run from outside its stages: only owl.run has one
  for _, k in ipairs({ "deadline", "max_total_tokens" }) do
    if ctx.opts[k] ~= nil then error("owl.flow.context: option '" .. k .. "' is owl.run's only", 2) end
  end
  -- a custom flow's calls are journalled too; a journal it cannot open
  -- raises here, as the context has no error to return
  local err = journal.attach(ctx)
  if err then error(tostring(err), 2) end
  return ctx
end

local function json_schema_of(decl)
  return schema.is_decl(decl) and schema.to_json(decl) or decl
end

-- owl.flow.plan(ctx [, schema]) -> plan {objective, subtasks}, or nil and
-- an error. schema: a declaration or JSON Schema; default opts.schema, else
-- owl.flow.plan_schema. Its subtasks join ctx.partial.subtasks.
function M.plan(ctx, plan_schema)
  local json_schema = json_schema_of(plan_schema or ctx.opts.schema or M.plan_schema)
  local plan, err = plan_stage.run(ctx, json_schema, ctx.opts.max_subtasks or M.DEFAULT_MAX_SUBTASKS)
  if not plan then return ctx:fail(err) end
  return plan
end

-- owl.flow.work(ctx, plan [, subtasks]) -> outputs (entry i: subtasks[i]'s
-- text), or nil and a `worker` error. subtasks defaults to plan.subtasks.
function M.work(ctx, plan, subtasks)
  local outputs, err = workers_stage.run(ctx, plan, subtasks)
  if not outputs then return ctx:fail(err) end
  return outputs
end

-- owl.flow.worker(ctx, subtask, job) -> text, or nil and an error: what a
-- worker does when opts.worker does not replace it (one model call with
-- job.request), for a worker function that handles some subtasks itself.
function M.worker(ctx, _, job)
  local text, err = workers_stage.call(ctx, job)
  return text, err
end

-- owl.flow.replan(ctx, plan, round) -> {done, subtasks}, or nil and an
-- error: the orchestrator's verdict on every result so far.
function M.replan(ctx, plan, round)
  ctx.replan_schema = ctx.replan_schema
    or replan_stage.schema_for(json_schema_of(ctx.opts.schema or M.plan_schema))
  local answer, err = replan_stage.run(ctx, plan, round, {
    json_schema = ctx.replan_schema,
    max_rounds = ctx.opts.max_rounds or M.DEFAULT_MAX_ROUNDS,
    budget = ctx.opts.replan_bytes or replan_stage.DEFAULT_BYTES,
    max_subtasks = ctx.opts.max_subtasks or M.DEFAULT_MAX_SUBTASKS,
  })
  if not answer then return ctx:fail(err) end
  return answer
end

-- owl.flow.aggregate(ctx [, plan [, outputs]]) -> final, tree; or nil and
-- an error. Default: every subtask of the run and its output
-- (ctx.partial); with plan, plan.subtasks and outputs (default: theirs in
-- ctx.partial).
function M.aggregate(ctx, plan, outputs)
  local subtasks, objective = ctx.partial.subtasks, ctx.partial.objective
  if plan then
    subtasks, objective = plan.subtasks, plan.objective
    if not outputs then
      outputs = {}
      for i, st in ipairs(subtasks) do outputs[i] = ctx.partial.outputs[ctx.position[st]] or false end
    end
  end
  outputs = outputs or ctx.partial.outputs
  local final, tree = aggregate_stage.run(ctx, objective or "", aggregate_stage.items(subtasks, outputs))
  if not final then return ctx:fail(tree) end
  return final, tree
end

-- owl.flow.check(ctx, plan, result) -> result (with checks and verified),
-- or nil and an error: stage 4, the check of result.final and its repairs
-- (ctx.opts.check, max_repairs).
function M.check(ctx, plan, result)
  local err = check_stage.run(ctx, plan, result)
  if err then return ctx:fail(err) end
  return result
end

-- The stages of owl.run, in order, over ctx.
local function run(ctx)
  local opts = ctx.opts
  local plan, err = M.plan(ctx)
  if not plan then return nil, err end
  ctx:event("plan", { objective = plan.objective, subtasks = plan.subtasks })

  -- rounds: the plan's subtasks, then (replan) what the orchestrator asks
  -- for after each, until it says done or max_rounds
  local rounds = {}
  ctx.partial.rounds = rounds
  local max_rounds = opts.replan and (opts.max_rounds or M.DEFAULT_MAX_ROUNDS) or 1
  local batch = plan.subtasks
  for round = 1, max_rounds do
    local started = ctx:seconds()
    local first = #ctx.partial.subtasks + 1
    local entry = { round = round, first = ctx.position[batch[1]] or first }
    rounds[round] = entry
    if opts.replan then ctx:event("round_start", { round = round, subtasks = batch }) end
    local outputs
    outputs, err = M.work(ctx, plan, batch)
    entry.last = #ctx.partial.subtasks
    entry.seconds = ctx:seconds() - started
    if not outputs then return nil, err end
    if round == max_rounds then break end
    local answer
    answer, err = M.replan(ctx, plan, round)
    if not answer then return nil, err end
    entry.done = answer.done or #answer.subtasks == 0
    ctx:event("replan", { round = round, done = entry.done, subtasks = answer.subtasks })
    if entry.done then break end
    batch = answer.subtasks
  end

  ctx:event("aggregate_start", {})
  local final, tree
  if ctx.partial.failures then
    -- on_worker_error = "skip": the aggregator sees what succeeded only
    local ok_subtasks, ok_outputs = {}, {}
    for i, st in ipairs(ctx.partial.subtasks) do
      if ctx.partial.outputs[i] then
        ok_subtasks[#ok_subtasks + 1] = st
        ok_outputs[#ok_outputs + 1] = ctx.partial.outputs[i]
      end
    end
    final, tree = M.aggregate(ctx, { objective = plan.objective, subtasks = ok_subtasks }, ok_outputs)
  else
    final, tree = M.aggregate(ctx)
  end
  if not final then return nil, tree end

  local result = {
    objective = plan.objective,
    subtasks = ctx.partial.subtasks,
    outputs = ctx.partial.outputs,
    final = final,
    rounds = rounds,
    tree = tree,
    usage = ctx.usage,
    failures = ctx.partial.failures or {},
    reused = ctx.partial.reused,
  }
  if opts.check then
    local checked
    checked, err = M.check(ctx, plan, result)
    if not checked then return nil, err end
  end
  ctx:event("done", { usage = ctx.usage })
  return result
end

-- owl.run(client, problem, opts) -> result, or nil and an owl error whose
-- `partial` holds everything that did finish.
function M.run(client, problem, opts)
  local ctx = new_context(client, problem, opts, 3)
  if ctx.opts.replan then -- a plan schema re-planning cannot use raises before any call
    ctx.replan_schema = replan_stage.schema_for(json_schema_of(ctx.opts.schema or M.plan_schema))
  end
  local err = journal.attach(ctx)
  if err then return ctx:fail(err) end
  -- deadline and max_total_tokens end the run from outside its stages
  return limits.guard(ctx, run)
end

return M
