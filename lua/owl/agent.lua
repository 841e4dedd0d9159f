-- owl.agent: the tool loop. The model answers; when it asks for tool
-- calls, owl checks each call (a tool of that name, arguments that are a
-- JSON object matching the tool's schema), runs every call of the turn at
-- once, each in its own task (a handler may wait: call a model, sleep),
-- answers every call id, and asks again, until the model answers without
-- tools. A bad call never stops the loop: what went wrong is that call's
-- result, marked as an error, and the model may try again (the peers'
-- lesson: catching only some failures, or losing a turn's other results
-- to one failure, were the bugs their users met). At max_steps one last
-- call is made with tools disabled, so the run ends with an answer.
--
-- The transcript is owl's neutral messages (owl.providers.openai_tools
-- describes them); each provider writes it in its own shape.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local task = require("owl.task")
local text = require("owl.text")
local tool_mod = require("owl.tool")
local client_mod = require("owl.client")

local M = {}

M.DEFAULT_MAX_STEPS = 10
-- A tool result is read by the model in full: a runaway one (a whole file,
-- a log) would fill its window and cost every later step. 100 KB is about
-- 25k tokens.
M.DEFAULT_MAX_TOOL_RESULT_BYTES = 100000

local OPTIONS = { tools = "table", max_steps = "number", on_event = "function",
                  max_tool_result_bytes = "number", call = "function" }

local pack = function(...) return { n = select("#", ...), ... } end

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("owl.agent: options must be a table, got " .. type(opts), 3) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == nil then error("owl.agent: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then error("owl.agent: option '" .. k .. "' must be a " .. want .. ", got " .. type(v), 3) end
  end
  local n = opts.max_steps
  if n ~= nil and not (n >= 0 and n <= 1e6 and n == math.floor(n)) then
    error("owl.agent: option 'max_steps' must be an integer from 0 to 1000000, got " .. tostring(n), 3)
  end
  local b = opts.max_tool_result_bytes
  if b ~= nil and not (b >= 1 and b <= 2^53 - 1 and b == math.floor(b)) then
    error("owl.agent: option 'max_tool_result_bytes' must be a positive integer, got " .. tostring(b), 3)
  end
  return opts
end

local function new_usage()
  return { input_tokens = 0, output_tokens = 0, cached_input_tokens = 0 }
end

local function add_usage(sum, u)
  if type(u) ~= "table" then return end
  for k in pairs(sum) do
    if type(u[k]) == "number" then sum[k] = sum[k] + u[k] end
  end
end

-- The text a handler's return values make, and whether it is an error:
-- a string as it is, a table as JSON, nil and a reason as an error.
local function result_text(r)
  local v = r[2]
  if v == nil then
    if r.n >= 3 and r[3] ~= nil then return tostring(r[3]), true end
    return "", false
  end
  local t = type(v)
  if t == "string" then return v, false end
  if t == "number" or t == "boolean" then return tostring(v), false end
  if t == "table" then
    local ok, s = pcall(json.encode, v, { invalid_utf8 = "replace" })
    if ok then return s, false end
    return "the tool's result cannot be sent as JSON: " .. tostring(s), true
  end
  return "the tool returned a " .. t .. ", which is not a result (return a string or a table)", true
end

-- A result within max bytes, cut on a character boundary with a note the
-- model reads, so it knows it did not see everything.
local function cap(s, max)
  if #s <= max then return s, false end
  local head = text.head(s, max)
  return head .. string.format("\n[owl: this tool result was cut to its first %d of %d bytes (max_tool_result_bytes)]",
    #head, #s), true
end

-- The names of the tools, for the error an unknown name gets.
local function names_of(tools)
  local names = {}
  for i, t in ipairs(tools) do names[i] = t.name end
  return #names > 0 and table.concat(names, ", ") or "(none)"
end

-- Why a call cannot run (as the model will read it), or nil and the tool.
local function check_call(tc, by_name, tools)
  local t = by_name[tc.name]
  if t == nil then
    return "unknown tool " .. string.format("%q", tostring(tc.name)) .. "; the tools are: " .. names_of(tools)
  end
  if tc.arguments_error ~= nil or type(tc.arguments) ~= "table" then
    return "invalid arguments for tool '" .. t.name .. "': " .. tostring(tc.arguments_error or "not a JSON object")
  end
  local ok, why = t:check(tc.arguments)
  if not ok then return "invalid arguments for tool '" .. t.name .. "': " .. why end
  return nil, t
end

-- Runs the calls of one turn, each in its own task, and returns their
-- results in call order: { id, name, content, is_error, truncated, seconds }.
local function run_calls(client, calls, step, by_name, tools, max_bytes, emit)
  local results, tasks = {}, {}
  for i, tc in ipairs(calls) do
    local why, t = check_call(tc, by_name, tools)
    local rec = { id = tc.id, name = tc.name }
    results[i] = rec
    emit("tool_start", { step = step, id = tc.id, name = tc.name, arguments = tc.arguments })
    if why then
      rec.content, rec.is_error, rec.truncated, rec.seconds = cap(why, max_bytes), true, false, 0
      emit("tool_done", { step = step, id = tc.id, name = tc.name, ok = false, error = rec.content, seconds = 0 })
    else
      tasks[i] = task.spawn(function()
        local started = core.now()
        local ctx = { client = client, id = tc.id, name = tc.name, step = step }
        local r = pack(task.pcall(t.handler, tc.arguments, ctx))
        local content, is_error
        if r[1] then
          content, is_error = result_text(r)
        else
          content, is_error = "the tool raised an error: " .. tostring(r[2]), true
        end
        rec.content, rec.truncated = cap(json.fix_utf8(content), max_bytes)
        rec.is_error, rec.seconds = is_error, core.now() - started
        emit("tool_done", { step = step, id = tc.id, name = tc.name, ok = not is_error,
                            error = is_error and rec.content or nil, bytes = #content,
                            truncated = rec.truncated, seconds = rec.seconds })
      end)
    end
  end
  for i = 1, #calls do
    if tasks[i] then
      local _, err = tasks[i]:wait()
      if err ~= nil then
        -- cancelled: the call has no result, and says so; anything else
        -- was raised by on_event, a caller's bug, never swallowed
        if not (errors.is(err) and err.kind == "cancelled") then error(err, 0) end
        local rec = results[i]
        if rec.content == nil then
          rec.content, rec.is_error, rec.truncated, rec.seconds = "the tool call was cancelled", true, false, 0
        end
      end
    end
  end
  return results
end

-- owl.agent(client, request, opts) -> the final normalized response with
-- steps, usage (summed), messages, and max_steps_reached when the steps
-- ran out; or nil and the error of a model call, whose err.partial holds
-- { steps, usage, messages } so far.
function M.run(client, request, opts)
  if not client_mod.is_client(client) then error("owl.agent: the first argument must be an owl client", 2) end
  if type(request) ~= "table" then error("owl.agent: request must be a table, got " .. type(request), 2) end
  if type(request.messages) ~= "table" then error("owl.agent: request has no messages", 2) end
  if request.tools ~= nil then
    error("owl.agent: give the tools as owl.agent's option (owl.agent(client, request, { tools = ... })), "
      .. "not in the request", 2)
  end
  opts = check_options(opts)
  local tools = opts.tools or {}
  local by_name = tool_mod.list(tools, "owl.agent", 2)
  local max_steps = opts.max_steps or M.DEFAULT_MAX_STEPS
  local max_bytes = opts.max_tool_result_bytes or M.DEFAULT_MAX_TOOL_RESULT_BYTES
  local on_event = opts.on_event
  local function emit(name, data)
    if on_event then on_event(name, data) end
  end
  local call = opts.call or function(req) return client:chat(req) end

  local messages = {}
  for i, m in ipairs(request.messages) do messages[i] = m end
  local steps, usage = {}, new_usage()
  for step = 1, max_steps + 1 do
    local last = step > max_steps
    local req = {}
    for k, v in pairs(request) do req[k] = v end
    req.messages = messages
    if #tools > 0 then
      req.tools = tools
      -- "none", not leaving the tools out: Anthropic refuses a history of
      -- tool calls without the tools' definitions
      if last then req.tool_choice = "none" end
    end
    emit("step_start", { step = step, last = last })
    local res, err = call(req)
    if not res then
      if errors.is(err) then err.partial = { steps = steps, usage = usage, messages = messages } end
      return nil, err
    end
    add_usage(usage, res.usage)
    local calls = res.tool_calls or {}
    local rec = { step = step, text = res.text, tool_calls = calls, finish_reason = res.finish_reason,
                  usage = res.usage, results = {} }
    steps[step] = rec
    if last or #calls == 0 then
      if type(res.text) == "string" then messages[#messages + 1] = { role = "assistant", content = res.text } end
      emit("step_done", { step = step, usage = res.usage, tool_calls = 0 })
      res.steps, res.usage, res.messages = steps, usage, messages
      if last then res.max_steps_reached = true end
      return res
    end
    for i, tc in ipairs(calls) do
      -- a call the server sent without an id still needs one to be answered
      if type(tc.id) ~= "string" then tc.id = "owl_call_" .. step .. "_" .. i end
    end
    -- raw: the provider's own answer, for what only it can write back
    -- (Anthropic's signed thinking blocks)
    messages[#messages + 1] = { role = "assistant", content = res.text, tool_calls = calls, raw = res.raw }
    rec.results = run_calls(client, calls, step, by_name, tools, max_bytes, emit)
    for _, r in ipairs(rec.results) do
      messages[#messages + 1] = { role = "tool", tool_call_id = r.id, name = r.name, content = r.content,
                                  is_error = r.is_error }
    end
    emit("step_done", { step = step, usage = res.usage, tool_calls = #calls })
  end
end

return M
