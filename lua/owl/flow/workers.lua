-- owl.flow.workers: stage 2, work. One task per subtask, up to a window of
-- them in flight at once (a semaphore); a failed worker does not stop the
-- others. A subtask with depends_on starts once those it names are done,
-- and reads their outputs; one whose dependency failed fails unrun.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local prompts = require("owl.prompts")
local text = require("owl.text")
local task = require("owl.task")
local dag = require("owl.flow.dag")
local replan = require("owl.flow.replan")
local worker_call = require("owl.flow.worker_call")

local M = {}

-- How many workers may be in flight: max_workers (all n when unset), and no
-- more than half the file descriptors the process has left (each call holds
-- a socket; the other half is left to the host, the loop and its files).
function M.window(max_workers, n)
  local window = math.min(max_workers or n, n)
  local limit, open = core.fd_limit()
  if limit then
    window = math.min(window, math.max(1, math.floor((limit - (open or 0)) / 2)))
  end
  return window
end

-- A block of the worker prompt ({dependencies}, {earlier}): "" for no
-- items, else the role's template around one section per item.
local function block(p, key, items)
  if #items == 0 then return "" end
  local tpl = p[key] or prompts.worker[key]
  local sections = prompts.sections(p.section or prompts.worker.section, items, "worker.section")
  return prompts.render(tpl, { sections = table.concat(sections) }, "worker." .. key)
end

-- The values a worker prompt may use: every field of the subtask (a custom
-- plan schema may add some; arrays and objects are written as JSON), the
-- problem, the objective, and the two blocks.
local function vars(ctx, plan, st, dependencies, earlier)
  local v = {}
  for k, x in pairs(st) do
    if type(k) == "string" then v[k] = x end
  end
  v.problem, v.objective = ctx.problem, plan.objective
  v.dependencies, v.earlier = dependencies, earlier
  return v
end

-- One worker's model call: its request made and read, each delta to
-- on_delta. The only place a worker talks to a model, so a worker with
-- tools can swap this for an agent loop. -> text, or nil and an error;
-- and the response (for its usage) when there was one.
function M.call(ctx, job)
  local client = ctx.client
  local body = client.provider.body(client, job.request)
  local shared = job.shared and job.shared()
  if not shared then -- a job made by hand: a spec of its own
    shared = ctx:spec_of(job.request)
    shared.body = nil
  end
  local res, err = ctx:call("workers", "the worker", job.request,
    function(loop) return core.work(loop, shared, { body })[1] end, job.on_delta,
    { name = job.vars and job.vars.name, index = job.index })
  if err then return nil, err, res end
  return ctx:answer_text(res), nil, res -- valid UTF-8, fences as `output` says
end

-- A user's worker (opts.worker): worker(ctx, subtask, job) returns the
-- output text [, usage], or nil and an error; a raise counts as its
-- failure (kind `callback`), never as the run's.
local function call_hook(ctx, hook, st, job)
  local ok, out, extra = task.pcall(hook, ctx, st, job)
  if not ok then
    if errors.is(out) then return nil, out end
    return nil, errors.new("callback", "the worker function raised: " .. tostring(out))
  end
  if type(out) == "string" then
    if type(extra) == "table" then ctx:add_usage("workers", extra) end
    return json.fix_utf8(out)
  end
  if out == nil then
    if errors.is(extra) then return nil, extra end
    return nil, errors.new("worker", "the worker function failed: " .. tostring(extra or "it returned nothing"))
  end
  return nil, errors.new("invalid", "the worker function returned a " .. type(out) .. ", not a string")
end

-- M.run(ctx, plan [, subtasks]) -> outputs (entry i: subtasks[i]'s text),
-- or nil and the `worker` error naming the first failure (every failure in
-- err.errors). subtasks defaults to plan.subtasks; each output also goes
-- into ctx.partial.outputs, at the subtask's index in the run, as it ends.
-- ctx.opts.on_worker_error: "wait" (the others finish first), "fail_fast"
-- (the first failure cancels the rest) or "skip" (outputs returned with
-- false for each failure, listed in ctx.partial.failures; an error only
-- when every worker failed).
function M.run(ctx, plan, subtasks)
  subtasks = subtasks or plan.subtasks
  local n = #subtasks
  local batch = {}
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then task.checkpoint() end
    batch[st] = true
  end
  local order, deps, outside = dag.resolve(subtasks, dag.lookup(ctx.partial.subtasks, batch))
  if not order then return nil, deps end
  local at = ctx:add(subtasks)
  local outputs, all_outputs, all_subtasks = {}, ctx.partial.outputs, ctx.partial.subtasks
  for i = 1, n do
    if i % 16 == 0 then task.checkpoint() end
    outputs[i] = false
  end

  -- what earlier rounds found, shortened, for every worker of this one
  local seen = {}
  for k = 1, #all_subtasks do
    if not batch[all_subtasks[k]] and all_outputs[k] then seen[#seen + 1] = k end
  end
  local earlier = ""
  if #seen > 0 then
    local share = math.max(replan.MIN_SHARE,
      math.floor((ctx.opts.replan_bytes or replan.DEFAULT_BYTES) / #seen))
    local items = {}
    for j, k in ipairs(seen) do
      items[j] = { name = all_subtasks[k].name, output = text.cap(all_outputs[k], share) }
    end
    earlier = block(ctx.prompts.worker, "earlier", items)
  end

  local model = ctx:model_for("worker")
  local hook = ctx.opts.worker
  -- one spec (url, headers, timeouts) shared by all, a body each
  local shared_spec
  local function shared()
    if not shared_spec then
      shared_spec = ctx:spec_of({ model = model, messages = { { role = "user", content = "" } },
                                  stream = ctx.opts.stream or nil })
      shared_spec.body = nil
      shared_spec.headers = core.headers(shared_spec.headers) -- built once, not per worker
    end
    return shared_spec
  end

  local window = task.semaphore(M.window(ctx.opts.max_workers, n))
  local policy = ctx.opts.on_worker_error or "wait"
  local failures, failed, tasks = {}, {}, {}
  -- fail_fast: set at the first failure; every worker still running or
  -- waiting is cancelled, and what fails after it is that cancellation
  local stopped, cancelled = nil, 0
  local function fail(i, err)
    failed[i] = err
    if stopped then
      cancelled = cancelled + 1
      return
    end
    failures[#failures + 1] = { index = i, err = err }
    if policy == "fail_fast" then
      stopped = i
      for j, t in pairs(tasks) do
        if j ~= i and not t:done() then t:cancel() end
      end
    end
  end

  local function worker(i)
    local st, k = subtasks[i], at[i]
    if stopped then -- spawned after fail_fast stopped the round
      failed[i] = errors.new("cancelled", "not run: fail_fast stopped the run")
      cancelled = cancelled + 1
      return
    end
    for _, j in ipairs(deps[i]) do tasks[j]:wait() end
    for _, j in ipairs(deps[i]) do
      if failed[j] or not outputs[j] then
        local err = errors.new("worker", "not run: it depends on '" .. subtasks[j].name .. "', which failed",
          { subtask = st.name, dependency = subtasks[j].name, cause = failed[j] })
        fail(i, err)
        ctx:event("worker_done", { index = k, name = st.name, ok = false, err = err, duration = 0 })
        return
      end
    end
    if not window:acquire() then -- cancelled while waiting its turn
      fail(i, errors.new("cancelled", "not run: the worker was cancelled while waiting its turn"))
      return
    end
    local started = ctx:seconds()
    ctx:event("worker_start", { index = k, name = st.name })
    local items = {}
    for _, j in ipairs(deps[i]) do items[#items + 1] = { name = subtasks[j].name, output = outputs[j] } end
    for _, e in ipairs(outside[i]) do items[#items + 1] = { name = all_subtasks[e].name, output = all_outputs[e] } end
    local v = vars(ctx, plan, st, block(ctx.prompts.worker, "dependencies", items), earlier)
    local deltas = 0
    local job = {
      index = k, vars = v, shared = shared,
      request = { model = model, messages = ctx:messages(ctx.prompts.worker, v, "worker"),
                  stream = ctx.opts.stream or nil },
      on_delta = function(delta)
        deltas = deltas + 1
        ctx:event("worker_delta", { index = k, name = st.name, delta = delta, deltas = deltas })
      end,
    }
    local out, err, res
    if hook then
      out, err = call_hook(ctx, hook, st, job)
    else
      -- a worker with tools runs the tool loop (owl.flow.worker_call)
      local tools
      tools, err = worker_call.tools(ctx, st)
      if tools then
        res, err = worker_call.run(ctx, k, st, job.request, tools, job.on_delta)
        if res then out = ctx:answer_text(res) end
      elseif not err then
        out, err, res = M.call(ctx, job)
      end
    end
    window:release()
    if err then fail(i, err) else outputs[i], all_outputs[k] = out, out end
    ctx:event("worker_done", { index = k, name = st.name, ok = err == nil, err = err,
                               usage = res and res.usage or nil, duration = ctx:seconds() - started })
  end

  -- spawned in dependency order, so a task waits only for tasks that exist
  for _, i in ipairs(order) do
    tasks[i] = task.spawn(worker, i)
    task.checkpoint() -- a thousand spawns do not hold a host's frame
  end
  for i = 1, n do
    -- a thousand finished workers' waits return at once, one after the
    -- other: together they would hold a host's frame
    if i % 16 == 0 then task.checkpoint() end
    -- a worker task returns nothing; an error raised in it is a bug in a
    -- callback (on_event) or in this code: never swallowed
    local _, terr = tasks[i]:wait()
    if terr ~= nil and not (errors.is(terr) and terr.kind == "cancelled") then error(terr, 0) end
  end
  if #failures == 0 then return outputs end
  table.sort(failures, function(a, b) return a.index < b.index end)
  if policy == "skip" and #failures < n then
    -- the run goes on with what succeeded; the failures are listed in
    -- ctx.partial.failures (result.failures) with their run index
    local list = ctx.partial.failures or {}
    ctx.partial.failures = list
    for _, f in ipairs(failures) do
      list[#list + 1] = { index = at[f.index], name = subtasks[f.index].name, err = f.err }
    end
    return outputs
  end
  local first = failures[1]
  local all = {}
  for i, f in ipairs(failures) do all[i] = f.err end
  local message = #failures .. " of " .. n .. " workers failed; first: " .. tostring(first.err)
  if stopped then
    message = "a worker failed and fail_fast cancelled the " .. cancelled .. " still running or waiting: "
      .. tostring(first.err)
  elseif policy == "skip" then
    message = "every worker failed (" .. n .. "); first: " .. tostring(first.err)
  end
  return nil, errors.new("worker", message,
    { subtask = subtasks[first.index].name, cause = first.err, errors = all, cancelled = stopped and cancelled or nil })
end

return M
