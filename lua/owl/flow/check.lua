-- owl.flow.check: stage 4, make sure the solution works. The user's check
-- runs on the aggregator's answer; when it fails, the aggregator gets its
-- own answer and the check's report (prompts.repair) and answers with a
-- repaired solution, which is checked again, up to max_repairs times. A
-- solution that never passes is still the run's result, marked unverified:
-- finished work is not lost.
--
-- A check that raises is a bug in the check (a missing tool, a typo), not a
-- verdict on the solution: the model could not fix it, so no repair is paid
-- for. The run ends with a `callback` error whose partial keeps the
-- solution and the checks so far.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local prompts = require("owl.prompts")
local task = require("owl.task")
local text = require("owl.text")

local M = {}

M.DEFAULT_MAX_REPAIRS = 2
-- A report is cut here (with a note) before it is recorded and put into
-- the repair prompt: a check's output may be anything.
M.MAX_REPORT_BYTES = 64 * 1024

-- Raises (at owl.run's caller) for check options that cannot work, before
-- any call is paid for.
function M.check_options(opts, level)
  level = level or 4 -- owl.run's caller: run -> check_options -> here
  if opts.max_repairs ~= nil then
    if opts.check == nil then error("owl.run: option 'max_repairs' needs the option 'check'", level) end
    local n = opts.max_repairs
    if not (n >= 0 and n <= 100 and n == math.floor(n)) then
      error("owl.run: option 'max_repairs' must be an integer from 0 to 100, got " .. tostring(n), level)
    end
  end
  if opts.check ~= nil and type((opts.prompts or prompts).repair) ~= "table" then
    error("owl.run: prompts.repair is missing (the option 'check' needs it)", level)
  end
end

-- The report as text fit for an event, a record and a prompt: a string,
-- valid UTF-8, redacted of the client's secrets, cut at MAX_REPORT_BYTES.
local function report_text(ctx, passed, report)
  if report == nil then
    report = passed and "" or "the check failed and gave no report"
  elseif type(report) ~= "string" then
    report = tostring(report)
  end
  return text.cap(errors.redact(json.fix_utf8(report), ctx.client.secrets), M.MAX_REPORT_BYTES)
end

-- One repair call: the aggregator's role, model and usage; the answer with
-- its fences stripped, or nil and an error.
local function repair(ctx, plan, final, report, n)
  local vars = { problem = ctx.problem, objective = plan.objective, solution = final, report = report, attempt = n }
  local request = {
    model = ctx:model_for("aggregator"),
    messages = ctx:messages(ctx.prompts.repair, vars, "repair"),
    stream = ctx.opts.stream or nil,
  }
  local deltas = 0
  local res, err = ctx:call("aggregator", "the repair", request,
    function(loop) return core.aggregate(loop, ctx:spec_of(request)) end,
    function(delta)
      deltas = deltas + 1
      ctx:event("repair_delta", { repair = n, delta = delta, deltas = deltas })
    end)
  if not res then return nil, err end
  return text.strip_fences(json.fix_utf8(res.text))
end

-- M.run(ctx, plan, result) -> nil, or the error that ends the run. It sets
-- result.checks (one record per check: ok, report, seconds) and
-- result.verified, and replaces result.final by each repair; ctx.partial
-- follows along, so an error keeps the latest solution.
function M.run(ctx, plan, result)
  local check = ctx.opts.check
  local max_repairs = ctx.opts.max_repairs or M.DEFAULT_MAX_REPAIRS
  local checks = {}
  result.checks, result.verified = checks, false
  ctx.partial.final, ctx.partial.checks, ctx.partial.verified = result.final, checks, false
  for attempt = 1, max_repairs + 1 do
    ctx:event("check_start", { attempt = attempt })
    local started = core.now()
    -- owl.pcall: a check may wait (run a command, call a model) in a task
    local ok, passed, report = task.pcall(check, result.final, result)
    local took = core.now() - started
    if not ok then
      if errors.is(passed) and passed.kind == "cancelled" then return passed end
      local err = errors.new("callback", errors.redact("the check raised: " .. tostring(passed), ctx.client.secrets),
        { cause = passed, attempt = attempt })
      ctx:event("check_done", { attempt = attempt, ok = false, err = err, duration = took })
      return err
    end
    passed = passed and true or false
    report = report_text(ctx, passed, report)
    checks[attempt] = { ok = passed, report = report, seconds = took }
    result.verified, ctx.partial.verified = passed, passed
    ctx:event("check_done", { attempt = attempt, ok = passed, report = report, duration = took })
    if passed or attempt > max_repairs then return nil end

    ctx:event("repair_start", { repair = attempt, report = report })
    local repaired, err = repair(ctx, plan, result.final, report, attempt)
    if not repaired then return err end
    result.final, ctx.partial.final = repaired, repaired
  end
end

return M
