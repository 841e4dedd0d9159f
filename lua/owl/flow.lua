-- owl.flow: the orchestrator-workers flow, owl.run. This is policy, meant to
-- be read and edited: the plan schema, which prompt goes where, what counts
-- as a failed step. The C primitives only start transfers.
--
--   1. orchestrate: one structured-output call returns the plan, which must
--      pass its schema (a refusal, a cut-off answer or an invalid plan is an
--      error naming why);
--   2. work: one task per subtask, their first calls started together by
--      core.work; a failed worker does not stop the others;
--   3. aggregate: the worker outputs go into the aggregator's body as a rope,
--      escaped by the C encoder straight from their strings.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local prompts = require("owl.prompts")
local schema = require("owl.schema")
local text = require("owl.text")
local task = require("owl.task")
local client_mod = require("owl.client")

local M = {}

local S = schema
M.plan_schema = S.object{
  { "objective", S.string{ description = "The goal of the whole problem, in one or two sentences." } },
  { "subtasks", S.array(S.object{
      { "name", S.string{ description = "A short identifier for the subtask, like parse_input." } },
      { "description", S.string{ description = "What to build, precisely enough to do it without the other subtasks." } },
    }, { minItems = 1, description = "Independent parts that can be solved in parallel." }) },
}

local OPTIONS = { prompts = "table", schema = "table", models = "table", model = "string",
                  max_workers = "number", max_subtasks = "number", max_total_response_bytes = "number",
                  on_event = "function" }

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
  return opts
end

local function new_usage()
  local function role() return { calls = 0, input_tokens = 0, output_tokens = 0, cached_input_tokens = 0 } end
  return { orchestrator = role(), workers = role(), aggregator = role(), total = role() }
end

local function count(usage, role, res)
  local u, t = usage[role], usage.total
  u.calls = u.calls + 1
  t.calls = t.calls + 1
  if res and res.usage then
    for _, k in ipairs({ "input_tokens", "output_tokens", "cached_input_tokens" }) do
      local n = res.usage[k] or 0
      u[k] = u[k] + n
      t[k] = t[k] + n
    end
  end
end

-- A response that is not usable as an answer: refused or cut off. Model
-- text quoted in an error is redacted of the client's secrets, like a
-- server's (a model may echo anything it was sent).
local function unusable(res, who, secrets)
  if res.refusal then
    return errors.new("refusal", errors.redact(who .. " refused: " .. tostring(res.refusal), secrets))
  end
  if res.finish_reason == "length" then
    return errors.new("length", who .. " was cut off at the token limit (finish_reason length)")
  end
  if type(res.text) ~= "string" then
    return errors.new("protocol", who .. " returned no text (finish_reason " .. tostring(res.finish_reason) .. ")")
  end
  return nil
end

local function messages(p, vars, label)
  return {
    { role = "system", content = prompts.render(p.system, vars, label .. ".system") },
    { role = "user", content = prompts.render(p.user, vars, label .. ".user") },
  }
end

local function model_for(opts, role)
  return (opts.models and opts.models[role]) or opts.model
end

-- The plan as a table, or nil and an error naming what is wrong with it.
local function read_plan(res, json_schema, secrets)
  local bad = unusable(res, "the orchestrator", secrets)
  if bad then return nil, bad end
  local plan, derr = json.decode(res.text)
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
    return nil, errors.new("invalid", errors.redact("the plan does not match its schema: " .. table.concat(lines, "; "), secrets),
      { problems = problems, plan = plan })
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

-- How many workers may be in flight: max_workers (all n when unset), and no
-- more than half the file descriptors the process has left (each call holds
-- a socket; the other half is left to the host, the loop and its files).
local function worker_window(max_workers, n)
  local window = math.min(max_workers or n, n)
  local limit, open = core.fd_limit()
  if limit then
    window = math.min(window, math.max(1, math.floor((limit - (open or 0)) / 2)))
  end
  return window
end

-- The values a worker prompt may use: the subtask's own fields (a custom
-- plan schema may add some), the problem and the objective.
local function worker_vars(problem, plan, st)
  local vars = {}
  for k, v in pairs(st) do
    if type(v) == "string" or type(v) == "number" then vars[k] = v end
  end
  vars.problem, vars.objective = problem, plan.objective
  return vars
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
  local p = opts.prompts or prompts
  for _, role in ipairs({ "orchestrator", "worker", "aggregator" }) do
    if type(p[role]) ~= "table" then error("owl.run: prompts." .. role .. " is missing", 2) end
  end
  local plan_decl = opts.schema or M.plan_schema
  local json_schema = schema.is_decl(plan_decl) and schema.to_json(plan_decl) or plan_decl
  local on_event = opts.on_event or function() end
  local provider, loop = client.provider, client:get_loop()
  local max_subtasks = opts.max_subtasks or M.DEFAULT_MAX_SUBTASKS
  -- one budget for every response of the run, counted in C as bytes arrive
  local budget = core.budget(opts.max_total_response_bytes or M.DEFAULT_MAX_TOTAL_RESPONSE_BYTES)
  local function spec_of(request)
    local spec = provider.build(client, request)
    spec.budget = budget
    return spec
  end
  local usage = new_usage()
  local partial = { usage = usage, outputs = {} }

  local function fail(err)
    err.partial = partial
    return nil, err
  end

  -- 1. orchestrate
  local request = {
    model = model_for(opts, "orchestrator"),
    messages = messages(p.orchestrator, { problem = problem }, "orchestrator"),
    structured = { name = "plan", schema = json_schema },
  }
  -- the request goes to the reader too: a provider may need it to read the
  -- answer (Anthropic's forced tool, whose input is the plan)
  local res, err = client:call(function() return core.orchestrate(loop, spec_of(request)) end, loop, request)
  count(usage, "orchestrator", res)
  if not res then return fail(err) end
  local plan
  plan, err = read_plan(res, json_schema, client.secrets)
  if not plan then return fail(err) end
  local subtasks = plan.subtasks
  partial.objective, partial.subtasks = plan.objective, subtasks
  if #subtasks > max_subtasks then
    return fail(errors.new("invalid", "the plan has " .. #subtasks .. " subtasks, more than max_subtasks ("
      .. max_subtasks .. "); no worker was started", { plan = plan }))
  end
  on_event("plan", { objective = plan.objective, subtasks = subtasks })

  -- 2. work: one task per subtask; a semaphore keeps the window. One spec
  -- (url, headers, timeouts) is shared by all, with a body each; a worker
  -- starts its call once it holds a slot.
  local requests, bodies = {}, {}
  local worker_model = model_for(opts, "worker")
  for i, st in ipairs(subtasks) do
    requests[i] = {
      model = worker_model,
      messages = messages(p.worker, worker_vars(problem, plan, st), "worker"),
    }
    bodies[i] = provider.body(client, requests[i])
  end
  local shared = spec_of(bodies[1])
  shared.body = nil
  local window = task.semaphore(worker_window(opts.max_workers, #subtasks))
  local outputs, failures = partial.outputs, {}
  local tasks = {}
  for i = 1, #subtasks do
    tasks[i] = task.spawn(function()
      if not window:acquire() then return end -- cancelled while waiting its turn
      local wres, werr = client:call(function() return core.work(loop, shared, { bodies[i] })[1] end, loop, requests[i])
      window:release()
      count(usage, "workers", wres)
      if wres then werr = unusable(wres, "the worker", client.secrets) end
      if werr then
        failures[#failures + 1] = { index = i, err = werr }
        on_event("worker_done", { index = i, name = subtasks[i].name, ok = false, err = werr })
        return
      end
      -- a provider's text is valid UTF-8 when it came through owl's JSON
      -- decoder; anything else is repaired (U+FFFD) here, as it must go on
      -- into the aggregator's JSON body
      outputs[i] = text.strip_fences(json.fix_utf8(wres.text))
      on_event("worker_done", { index = i, name = subtasks[i].name, ok = true })
    end)
  end
  for i = 1, #tasks do
    -- a worker task returns nothing; an error raised in it is a bug in a
    -- callback (on_event) or in this code: never swallowed
    local _, terr = tasks[i]:wait()
    if terr ~= nil then error(terr, 0) end
  end
  if #failures > 0 then
    table.sort(failures, function(a, b) return a.index < b.index end)
    local first = failures[1]
    local all = {}
    for i, f in ipairs(failures) do all[i] = f.err end
    return fail(errors.new("worker",
      #failures .. " of " .. #subtasks .. " workers failed; first: " .. tostring(first.err),
      { subtask = subtasks[first.index].name, cause = first.err, errors = all }))
  end

  -- 3. aggregate: the outputs go in as rope pieces, never joined here
  on_event("aggregate", {})
  local items = {}
  for i, st in ipairs(subtasks) do items[i] = { name = st.name, output = outputs[i] } end
  local agg = p.aggregator
  local pieces = prompts.render_pieces(agg.user, {
    problem = problem, objective = plan.objective,
    outputs = prompts.sections(agg.section, items, "aggregator.section"),
  }, "aggregator.user")
  local agg_request = {
    model = model_for(opts, "aggregator"),
    messages = {
      { role = "system", content = prompts.render(agg.system, { problem = problem, objective = plan.objective }, "aggregator.system") },
      { role = "user", content = json.rope(pieces) },
    },
  }
  res, err = client:call(function() return core.aggregate(loop, spec_of(agg_request)) end, loop, agg_request)
  count(usage, "aggregator", res)
  if not res then return fail(err) end
  err = unusable(res, "the aggregator", client.secrets)
  if err then return fail(err) end

  return {
    objective = plan.objective,
    subtasks = subtasks,
    outputs = outputs,
    final = text.strip_fences(json.fix_utf8(res.text)),
    usage = usage,
  }
end

return M
