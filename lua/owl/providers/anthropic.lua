-- owl.providers.anthropic: the Anthropic Messages shape (POST /v1/messages).
-- It writes owl's neutral request in Anthropic's terms (system messages as
-- the top-level `system`, a `max_tokens` the API requires, structured output
-- through output_config or a forced tool) and reads a message into owl's
-- normalized response. It never does I/O; what it shares with the OpenAI
-- provider (headers, the spec, error bodies) is owl.providers.http.
--
-- Reading is split for streaming: read turns a finished transfer into a
-- Messages API message object and hands it to anthropic.normalize. A stream
-- reader (owl.providers.anthropic_stream) assembles the same message object
-- from its events (message_start, the content blocks, message_delta's
-- stop_reason and usage) and hands it to normalize too, so both paths
-- answer alike.
local json = require("owl.json")
local http = require("owl.providers.http")
local anthropic_stream = require("owl.providers.anthropic_stream")
local anthropic_tools = require("owl.providers.anthropic_tools")

local anthropic = {}

local WHO = "owl.providers.anthropic"
local present = http.present

-- The API version every request names (anthropic-version header).
anthropic.VERSION = "2023-06-01"

-- max_tokens when a request sets none (the API requires one). Large enough
-- for an aggregated answer of code; under the ~21333 past which Anthropic's
-- SDKs refuse a call that does not stream (they count an hour per 128k
-- tokens and want a stream past 10 minutes). Older models with a smaller
-- output cap (Claude 3 Haiku: 4096) need a request's own max_tokens, or
-- this changed: it is read at each call.
anthropic.DEFAULT_MAX_TOKENS = 16384

-- The ways structured = { name, schema } can be written, the first the
-- default: the client option `structured` picks one (owl.client checks it).
--   output_config: output_config.format = { type = "json_schema", schema }
--   tool:          a forced tool whose input is the answer (for models or
--                  gateways without output_config); read returns that input
--                  as the text, JSON-encoded
anthropic.structured_modes = { "output_config", "tool" }

-- What the forced tool tells the model it is for.
local ANSWER_TOOL_DESCRIPTION = "Give your answer: call this tool once, with the whole answer as its input."

local ROPE_MT = getmetatable(json.rope({}))

-- The client's structured mode. level (here and in split_system): where a
-- misuse error points, counted from the caller.
local function structured_mode(client, level)
  local mode = client.structured
  if mode == nil then return anthropic.structured_modes[1] end
  for _, m in ipairs(anthropic.structured_modes) do
    if mode == m then return mode end
  end
  error(WHO .. ": client.structured must be 'output_config' or 'tool', got " .. string.format("%q", tostring(mode)),
    level + 1)
end

-- The system messages' contents as one `system` value: a single one as it
-- is, several joined by a blank line (a rope when any of them is a rope,
-- so a large prompt is never concatenated in Lua).
local function join_system(parts)
  if #parts == 1 then return parts[1] end
  local any_rope = false
  for _, p in ipairs(parts) do
    if getmetatable(p) == ROPE_MT then any_rope = true end
  end
  if not any_rope then return table.concat(parts, "\n\n") end
  local pieces = {}
  for i, p in ipairs(parts) do
    if i > 1 then pieces[#pieces + 1] = "\n\n" end
    if type(p) == "string" then
      pieces[#pieces + 1] = p
    else
      for _, s in ipairs(p) do pieces[#pieces + 1] = s end
    end
  end
  return json.rope(pieces)
end

-- The request's messages without its system messages, and those messages'
-- contents. The messages table itself is passed on when it holds none.
local function split_system(messages, level)
  local rest, system = json.array({}), {}
  for i, m in ipairs(messages) do
    if type(m) ~= "table" then
      error(WHO .. ": request.messages[" .. i .. "] must be a table, got " .. type(m), level + 1)
    end
    if m.role == "system" then
      local c = m.content
      if type(c) ~= "string" and getmetatable(c) ~= ROPE_MT then
        error(WHO .. ": the content of system message " .. i .. " must be a string or a json.rope, got "
          .. type(c), level + 1)
      end
      system[#system + 1] = c
    else
      rest[#rest + 1] = m
    end
  end
  if #system == 0 then return messages, nil end
  return rest, join_system(system)
end

-- structured = { name, schema } written into body in the client's mode.
-- A request's own output_config.format, or its own tool_choice, wins.
-- level: where a misuse error points, counted from here.
local function write_structured(body, client, structured, level)
  local name, schema = http.structured(structured, WHO, level)
  local mode = structured_mode(client, level)
  if mode == "output_config" then
    local oc = {}
    if body.output_config ~= nil then
      if type(body.output_config) ~= "table" then
        error(WHO .. ": request.output_config must be a table, got " .. type(body.output_config), level)
      end
      oc = http.shallow_copy(body.output_config) -- other settings (effort) stay
    end
    if oc.format == nil then oc.format = { type = "json_schema", schema = schema } end
    body.output_config = oc
    return
  end
  local tools = json.array({})
  if body.tools ~= nil then
    if type(body.tools) ~= "table" then
      error(WHO .. ": request.tools must be an array, got " .. type(body.tools), level)
    end
    for i, t in ipairs(body.tools) do
      if type(t) == "table" and t.name == name then
        error(WHO .. ": request.tools[" .. i .. "] is named '" .. name .. "', the name of the structured answer's tool",
          level)
      end
      tools[i] = t
    end
  end
  tools[#tools + 1] = { name = name, description = ANSWER_TOOL_DESCRIPTION, input_schema = schema }
  body.tools = tools
  if body.tool_choice == nil then body.tool_choice = { type = "tool", name = name } end
end

-- The request body: a shallow copy of the request in Anthropic's terms.
-- level: where a misuse error points, counted from here.
local function make_body(client, request, level)
  local model = http.model(client, request, WHO, level)
  local messages, system = split_system(request.messages, level)
  if system ~= nil and request.system ~= nil then
    error(WHO .. ": the request has both a system field and system messages", level)
  end
  local body = http.shallow_copy(request)
  body.model = model
  -- owl's neutral tool transcript, owl.tool values and tool_choice words
  -- in Anthropic's shape
  body.messages = anthropic_tools.messages(messages)
  if body.tools ~= nil then body.tools = anthropic_tools.tools(body.tools) end
  if body.tool_choice ~= nil then body.tool_choice = anthropic_tools.tool_choice(body.tool_choice) end
  if system ~= nil then body.system = system end
  if body.max_tokens == nil then body.max_tokens = anthropic.DEFAULT_MAX_TOKENS end
  if request.structured ~= nil then
    body.structured = nil -- not a field Anthropic knows
    write_structured(body, client, request.structured, level + 1)
  end
  return body
end

-- body(client, request) -> the JSON body alone (a fan-out builds one spec
-- and one body per member).
function anthropic.body(client, request)
  if type(client) ~= "table" then
    error(WHO .. ": body needs a client table, got " .. type(client), 2)
  end
  local body = make_body(client, request, 3)
  return body -- not a tail call: the misuse level counts this frame
end

-- build(client, request) -> spec for owl.core. Raises on misuse: a request
-- that is not a table, has no messages, names no model anywhere, or holds
-- a system message that is not text. A request with stream = true (which
-- the body carries as it is) makes a streamed call's spec.
function anthropic.build(client, request)
  if type(client) ~= "table" then
    error(WHO .. ": build needs a client table, got " .. type(client), 2)
  end
  local body = make_body(client, request, 3)
  local key = client.api_key
  local headers = http.headers(client, {
    { "Content-Type", "application/json" },
    { "x-api-key", type(key) == "string" and key ~= "" and key or nil },
    { "anthropic-version", anthropic.VERSION },
  }, WHO, 2)
  local spec = http.spec(client, "/v1/messages", headers, body, WHO, 2)
  if body.stream then http.stream_spec(spec, client) end
  return spec
end

-- ------------------------------------------------------------------ reading

-- The header Anthropic names the request by (error bodies carry it too).
local REQUEST_ID = "request-id"

-- stop_reason in owl's words (OpenAI's finish_reason); others as they are.
-- model_context_window_exceeded is a cut-off answer, as max_tokens is.
local FINISH = {
  end_turn = "stop", stop_sequence = "stop", max_tokens = "length",
  model_context_window_exceeded = "length", tool_use = "tool_calls", refusal = "refusal",
}

local function count(v)
  v = present(v)
  return type(v) == "number" and v or 0
end

-- A field the normalized response holds as a string: anything else a
-- server sends there (a number, an object) reads as absent.
local function string_or_nil(v)
  return type(v) == "string" and v or nil
end

-- The JSON text of a decoded value, or nil: a number past double range
-- decodes as inf, which JSON cannot hold, so encode refuses it.
local function encode_or_nil(v)
  local ok, text = pcall(json.encode, v)
  return ok and text or nil
end

local function tool_call(block)
  local input = present(block.input)
  local call = { id = string_or_nil(block.id), name = string_or_nil(block.name) }
  if input ~= nil then call.arguments_json = encode_or_nil(input) end
  if type(input) == "table" and not json.is_array(input) then
    call.arguments = input
  else
    call.arguments_error = "the tool call's input is not a JSON object"
  end
  return call
end

-- The name of the tool whose input is the answer: the request's structured
-- name, when the client writes structured output as a forced tool.
local function answer_tool(client, request)
  if type(client) ~= "table" or client.structured ~= "tool" then return nil end
  local structured = type(request) == "table" and request.structured or nil
  return type(structured) == "table" and structured.name or nil
end

-- normalize(message, client [, request]) -> owl's normalized response from
-- a Messages API message object (decoded JSON):
--   text          the text blocks joined as they are (citations split one text into blocks)
--   thinking      the thinking blocks joined by a blank line, or nil
--   tool_calls    the tool_use blocks: { id, name, arguments, arguments_json } (arguments_error
--                 instead when the input is not an object)
--   refusal       with stop_reason "refusal": the text, else stop_details.explanation, else a
--                 sentence saying so (text is then nil)
--   finish_reason stop_reason in owl's words (FINISH)
--   usage         input_tokens counts every input token, cached or not (Anthropic's
--                 input_tokens + cache_creation_input_tokens + cache_read_input_tokens, as
--                 OpenAI's prompt_tokens does), cached_input_tokens those read from the cache
--   raw           the message
-- With the client's structured = "tool" and the request's structured name,
-- the forced tool's call is the answer: its input, JSON-encoded, is the
-- text, it is not in tool_calls, and stop_reason tool_use reads as "stop".
function anthropic.normalize(message, client, request)
  local texts, thoughts, calls = {}, {}, json.array({})
  local answer_name, answer = answer_tool(client, request), nil
  local content = present(message.content)
  for _, block in ipairs(type(content) == "table" and content or {}) do
    local kind = type(block) == "table" and block.type or nil
    if kind == "text" and type(block.text) == "string" then
      texts[#texts + 1] = block.text
    elseif kind == "thinking" and type(block.thinking) == "string" then
      thoughts[#thoughts + 1] = block.thinking
    elseif kind == "tool_use" then
      if answer_name and answer == nil and block.name == answer_name then
        answer = block
      else
        calls[#calls + 1] = tool_call(block)
      end
    end
    -- other blocks (redacted_thinking, server tools' blocks) stay in raw
  end

  local stop_reason = string_or_nil(message.stop_reason)
  local finish_reason = FINISH[stop_reason] or stop_reason
  local text = #texts > 0 and table.concat(texts) or nil
  if answer then
    local input = present(answer.input)
    text = type(input) == "table" and encode_or_nil(input) or nil
    if stop_reason == "tool_use" then finish_reason = "stop" end
  end
  local refusal
  if stop_reason == "refusal" then
    local details = present(message.stop_details)
    local explanation = type(details) == "table" and present(details.explanation) or nil
    if text ~= nil and text ~= "" then
      refusal = text
    elseif type(explanation) == "string" then
      refusal = explanation
    else
      refusal = "the model refused (stop_reason refusal) without saying why"
    end
    text = nil
  end

  local usage = present(message.usage)
  usage = type(usage) == "table" and usage or {}
  local cached = count(usage.cache_read_input_tokens)
  return {
    text = text,
    thinking = #thoughts > 0 and table.concat(thoughts, "\n\n") or nil,
    refusal = refusal,
    tool_calls = calls,
    finish_reason = finish_reason,
    usage = {
      input_tokens = count(usage.input_tokens) + count(usage.cache_creation_input_tokens) + cached,
      output_tokens = count(usage.output_tokens),
      cached_input_tokens = cached,
    },
    raw = message,
  }
end

-- read(res, client [, request]) -> normalized response, or nil, err. res
-- is a finished transfer (status(), header(name), body([max]), json(),
-- size()); request, the neutral request it answers, lets a forced tool's
-- input be read as the answer. An error body {"type": "error", "error":
-- {type, message}} is an http error with provider_type and the message
-- (529, overloaded_error, too), request_id from the request-id header.
function anthropic.read(res, client, request)
  local message, status, secrets = http.decode(res, client, REQUEST_ID)
  if message == nil then return nil, status end -- status is the error then
  if type(message) ~= "table" or type(present(message.content)) ~= "table" then
    -- a 200 with an error object (a gateway's) or no message at all
    return nil, http.no_answer(res, status, message, secrets, REQUEST_ID, "content array")
  end
  return anthropic.normalize(message, client, request)
end

-- stream_reader(client [, request]) -> the reader a streamed answer's
-- events go through (owl.providers.anthropic_stream), which ends in
-- normalize as read does. request tells it the forced tool whose input is
-- the answer, whose pieces it gives as text.
function anthropic.stream_reader(client, request)
  return anthropic_stream.reader(client, request, anthropic.normalize, answer_tool(client, request))
end

return anthropic
