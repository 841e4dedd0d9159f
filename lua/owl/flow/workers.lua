-- owl.flow.workers: stage 2, work. One task per subtask, all in flight at
-- once up to a window (a semaphore); a failed worker does not stop the
-- others. outputs[i] is subtask i's output, or false when it failed.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local text = require("owl.text")
local task = require("owl.task")

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

-- The values a worker prompt may use: the subtask's own fields (a custom
-- plan schema may add some), the problem and the objective.
local function vars(problem, plan, st)
  local v = {}
  for k, x in pairs(st) do
    if type(x) == "string" or type(x) == "number" then v[k] = x end
  end
  v.problem, v.objective = problem, plan.objective
  return v
end

-- M.run(ctx, plan) -> nil when every worker succeeded, else the `worker`
-- error naming the first failure (every failure is in err.errors). The
-- outputs go into ctx.partial.outputs as they finish.
function M.run(ctx, plan)
  local subtasks = plan.subtasks
  local client = ctx.client
  -- one spec (url, headers, timeouts) shared by all, a body each
  local requests, bodies = {}, {}
  local model = ctx:model_for("worker")
  for i, st in ipairs(subtasks) do
    requests[i] = {
      model = model,
      messages = ctx:messages(ctx.prompts.worker, vars(ctx.problem, plan, st), "worker"),
      stream = ctx.opts.stream or nil,
    }
    bodies[i] = client.provider.body(client, requests[i])
  end
  local shared = ctx:spec_of(bodies[1])
  shared.body = nil
  shared.headers = core.headers(shared.headers) -- built once, not per worker

  local window = task.semaphore(M.window(ctx.opts.max_workers, #subtasks))
  local outputs, failures, tasks = ctx.partial.outputs, {}, {}
  for i = 1, #subtasks do outputs[i] = false end
  for i, st in ipairs(subtasks) do
    tasks[i] = task.spawn(function()
      if not window:acquire() then return end -- cancelled while waiting its turn
      local started = ctx:seconds()
      ctx:event("worker_start", { index = i, name = st.name })
      local deltas = 0
      local res, err = ctx:call("workers", "the worker", requests[i],
        function(loop) return core.work(loop, shared, { bodies[i] })[1] end,
        function(delta)
          deltas = deltas + 1
          ctx:event("worker_delta", { index = i, name = st.name, delta = delta, deltas = deltas })
        end)
      window:release()
      local usage = res and res.usage or nil
      if err then
        failures[#failures + 1] = { index = i, err = err }
      else
        -- a provider's text is valid UTF-8 when it came through owl's JSON
        -- decoder; anything else is repaired (U+FFFD) here, as it must go
        -- on into the aggregator's JSON body
        outputs[i] = text.strip_fences(json.fix_utf8(res.text))
      end
      ctx:event("worker_done", { index = i, name = st.name, ok = err == nil, err = err, usage = usage,
                                 duration = ctx:seconds() - started })
    end)
  end
  for i = 1, #tasks do
    -- a worker task returns nothing; an error raised in it is a bug in a
    -- callback (on_event) or in this code: never swallowed
    local _, terr = tasks[i]:wait()
    if terr ~= nil and not (errors.is(terr) and terr.kind == "cancelled") then error(terr, 0) end
  end
  if #failures == 0 then return nil end
  table.sort(failures, function(a, b) return a.index < b.index end)
  local first = failures[1]
  local all = {}
  for i, f in ipairs(failures) do all[i] = f.err end
  return errors.new("worker", #failures .. " of " .. #subtasks .. " workers failed; first: " .. tostring(first.err),
    { subtask = subtasks[first.index].name, cause = first.err, errors = all })
end

return M
