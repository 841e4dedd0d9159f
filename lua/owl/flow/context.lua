-- owl.flow.context: what the stages of one owl.run share: the client and
-- its loop, the options, the response budget, usage per role, the partial
-- result, the clock events are stamped with. Each stage takes a context and
-- returns its product or an error; only a provider knows a wire format.
--
-- The context is public (owl.flow.context): a custom flow makes one and
-- hands it to the stages it wants. Fields a user may read: client, problem,
-- opts, prompts, usage, partial ({objective, subtasks, outputs, usage, ...}).
local core = require("owl.core")
local errors = require("owl.errors")
local prompts = require("owl.prompts")
local json = require("owl.json")
local text = require("owl.text")
local limits = require("owl.flow.limits")
local task = require("owl.task")

local Context = {}
Context.__index = Context

local M = {}

local function new_usage()
  local function role() return { calls = 0, input_tokens = 0, output_tokens = 0, cached_input_tokens = 0 } end
  return { orchestrator = role(), workers = role(), aggregator = role(), total = role() }
end

-- M.new(client, problem, opts, max_total_response_bytes) -> context.
function M.new(client, problem, opts, max_total)
  local ctx = setmetatable({
    client = client,
    loop = client:get_loop(),
    problem = problem,
    opts = opts,
    prompts = opts.prompts or prompts,
    -- one budget for every response of the run, counted in C as bytes arrive
    budget = core.budget(max_total),
    usage = new_usage(),
    started = core.now(),
    on_event = opts.on_event or function() end,
  }, Context)
  -- Every subtask of the run, of every round, in order, with outputs dense
  -- beside it (false until it finished). position maps a subtask table to
  -- its index there.
  ctx.partial = { usage = ctx.usage, subtasks = {}, outputs = {} }
  ctx.position = {}
  return ctx
end

-- Adds the subtasks the run has not seen yet to partial.subtasks (their
-- outputs false); returns each one's index in the run, in order.
function Context:add(subtasks)
  local at, p = {}, self.partial
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then task.checkpoint() end -- a long plan does not hold a host's frame
    local k = self.position[st]
    if not k then
      k = #p.subtasks + 1
      p.subtasks[k], p.outputs[k] = st, false
      self.position[st] = k
    end
    at[i] = k
  end
  return at
end

-- Seconds since the run started.
-- The text a call's answer gives the run: valid UTF-8 (a provider's text
-- is, through owl's decoder; anything else is repaired with U+FFFD, as it
-- goes on into later JSON bodies), and with output = "code" (the default)
-- the code of its fenced blocks only. output = "text" keeps the answer as
-- the model wrote it: prose and Markdown around a fence are not lost.
function Context:answer_text(res)
  local s = json.fix_utf8(res.text)
  if self.opts.output == "text" then return s end
  return text.strip_fences(s)
end

function Context:seconds()
  return core.now() - self.started
end

-- Reports one progress event; every event carries `seconds` since the start.
function Context:event(name, data)
  data.seconds = self:seconds()
  self.on_event(name, data)
end

-- The run's error, with everything that did finish in err.partial.
function Context:fail(err)
  err.partial = self.partial
  return nil, err
end

function Context:model_for(role)
  local models = self.opts.models
  return (models and models[role]) or self.opts.model
end

-- A system and a user message from a role's prompts and the values given.
function Context.messages(_, p, vars, label)
  return {
    { role = "system", content = prompts.render(p.system, vars, label .. ".system") },
    { role = "user", content = prompts.render(p.user, vars, label .. ".user") },
  }
end

-- The provider's spec for a neutral request, counted against the budget.
function Context:spec_of(request)
  local spec = self.client.provider.build(self.client, request)
  spec.budget = self.budget
  return spec
end

-- Counts one finished call (res may be nil: a failed call still counts).
function Context:count(role, res)
  local u, t = self.usage[role], self.usage.total
  u.calls = u.calls + 1
  t.calls = t.calls + 1
  if res and res.usage then
    for _, k in ipairs({ "input_tokens", "output_tokens", "cached_input_tokens" }) do
      local n = res.usage[k] or 0
      u[k] = u[k] + n
      t[k] = t[k] + n
    end
  end
  limits.charge(self)
end

-- Adds usage counted elsewhere (a worker hook's nested run: its
-- result.usage.total) to role's and to the total.
function Context:add_usage(role, u)
  local r, t = self.usage[role], self.usage.total
  for _, k in ipairs({ "calls", "input_tokens", "output_tokens", "cached_input_tokens" }) do
    local n = tonumber(u[k]) or 0
    r[k] = r[k] + n
    t[k] = t[k] + n
  end
  limits.charge(self)
end

-- Makes one call for role: start(loop) starts the transfer of request once
-- the client has a slot; the response is read (as a stream when the run
-- streams, each delta going to on_delta), counted and checked as an answer.
-- The request goes to the reader too: a provider may need it to read the
-- answer (Anthropic's forced tool, whose input is the plan).
-- tag ({name, index}, optional) says which subtask the call is for, in
-- the journal.
function Context:call(role, who, request, start, on_delta, tag)
  return self:journalled(role, request, tag, function()
    local loop = self.loop
    -- deltas are only worth a call per piece when someone listens
    local stream = self.opts.stream and { on_delta = self.opts.on_event and on_delta or nil } or nil
    local res, err = self.client:call(function() return start(loop) end, loop, request, stream,
      self.opts.max_retries)
    self:count(role, res)
    if res then err = self:unusable(res, who) end
    if err then return nil, err end
    return res
  end)
end

-- make() -> response or nil, err: one call of the run. With a journal
-- (owl.flow.journal), an answer it holds for this request is taken
-- instead of calling, and a new answer is written to it.
function Context:journalled(role, request, tag, make)
  local j = self.journal
  if not j then return make() end
  local res = j:take(request)
  if res then
    self.partial.reused = (self.partial.reused or 0) + 1
    return res
  end
  local err
  res, err = make()
  if res then
    local warning = j:write(role, tag, request, res)
    if warning then self:warn(warning) end
  end
  return res, err
end

-- A warning (a torn journal line, a journal that could not be written):
-- the run goes on; on_event gets `warning` {message}.
function Context:warn(message)
  self:event("warning", { message = message })
end

-- A response that is not usable as an answer: refused or cut off. Model
-- text quoted in an error is redacted of the client's secrets, like a
-- server's (a model may echo anything it was sent).
function Context:unusable(res, who)
  if res.refusal then
    return errors.new("refusal", errors.redact(who .. " refused: " .. tostring(res.refusal), self.client.secrets))
  end
  if res.finish_reason == "length" then
    return errors.new("length", who .. " was cut off at the token limit (finish_reason length)")
  end
  if type(res.text) ~= "string" then
    return errors.new("protocol", who .. " returned no text (finish_reason " .. tostring(res.finish_reason) .. ")")
  end
  return nil
end

return M
