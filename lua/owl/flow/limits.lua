-- owl.flow.limits: what ends a run from outside its stages: a deadline
-- (owl.run's `deadline`, seconds) and a token budget (`max_total_tokens`,
-- input and output tokens of every call of the run, counted as each call
-- finishes). Crossing one cancels the task the stages run in, which
-- cancels every task they spawned (workers, merges) and so every transfer
-- in flight; the run returns a `timeout` or `budget` error whose partial
-- keeps every finished output.
local errors = require("owl.errors")
local task = require("owl.task")

local M = {}

-- M.check_options(opts, level): raises naming a bad deadline or budget,
-- before any call is paid for.
function M.check_options(opts, level)
  local d = opts.deadline
  if d ~= nil and not (d > 0 and d <= 1e9) then
    error("owl.run: option 'deadline' must be a number of seconds above 0 and at most 1e9, got " .. tostring(d),
      level + 1)
  end
  local n = opts.max_total_tokens
  if n ~= nil and not (n >= 1 and n <= 2^53 - 1 and n == math.floor(n)) then
    error("owl.run: option 'max_total_tokens' must be a positive integer, got " .. tostring(n), level + 1)
  end
end

-- M.charge(ctx): called by the context after it counts a call's usage;
-- past max_total_tokens the run stops. The call that crossed it is kept
-- (its caller goes on with its answer); the others are cancelled.
function M.charge(ctx)
  local limits = ctx.limits
  if not limits or not limits.max_tokens or ctx.stopped then return end
  local t = ctx.usage.total
  local used = t.input_tokens + t.output_tokens
  if used > limits.max_tokens then
    limits.stop(errors.new("budget", "the run used " .. used .. " tokens (input and output), more than "
      .. "max_total_tokens (" .. limits.max_tokens .. "); the calls in flight were cancelled",
      { used = used, max_total_tokens = limits.max_tokens }))
  end
end

local unpack = table.unpack or unpack

-- M.guard(ctx, body) -> body(ctx)'s results, or nil and the error of the
-- limit that ended it. Without limits, body runs as it is. With them it
-- runs in a task of its own (the deadline is an owl.sleep timer task,
-- never a busy wait), which the limit crossed cancels.
function M.guard(ctx, body)
  local opts = ctx.opts
  if not opts.deadline and not opts.max_total_tokens then return body(ctx) end
  local runner
  local function stop(err)
    if ctx.stopped or (runner and runner:done()) then return end
    ctx.stopped = err
    if runner then runner:cancel() end
  end
  ctx.limits = { max_tokens = opts.max_total_tokens, stop = stop }
  local timer
  if opts.deadline then
    timer = task.spawn(function()
      task.sleep(opts.deadline)
      if task.current().cancelled then return end
      stop(errors.new("timeout", "the run passed its deadline of " .. opts.deadline
        .. " s; the calls in flight were cancelled", { deadline = opts.deadline }))
    end)
  end
  runner = task.spawn(function()
    local r = { body(ctx) }
    return r
  end)
  local r, terr = runner:wait()
  if timer then timer:cancel() end
  ctx.limits = nil
  if ctx.stopped then return ctx:fail(ctx.stopped) end
  -- a raise in the stages (a bug in a callback) is the caller's, as it
  -- would be without limits
  if r == nil then error(terr, 0) end
  return unpack(r, 1, 2)
end

return M
