-- owl.providers.openai: the OpenAI Chat Completions shape (and every gateway
-- that copies it). It builds the core's request spec from a client and a
-- request, and reads a finished transfer into owl's normalized response.
-- It never does I/O: the client hands the spec to the core and the finished
-- transfer back here.
local json = require("owl.json")
local http = require("owl.providers.http")
local openai_stream = require("owl.providers.openai_stream")
local openai_tools = require("owl.providers.openai_tools")

local openai = {}

local WHO = "owl.providers.openai"
local present = http.present

-- structured = { name, schema } as OpenAI's strict structured output.
local function response_format(structured, level)
  local name, json_schema = http.structured(structured, WHO, level)
  return { type = "json_schema", json_schema = { name = name, strict = true, schema = json_schema } }
end

-- The request body: a shallow copy of the request with the model filled in.
-- level: where a misuse error points (the public caller).
local function make_body(client, request, level)
  local model = http.model(client, request, WHO, level)
  local body = http.shallow_copy(request)
  body.model = model
  -- owl's neutral tool transcript and owl.tool values in OpenAI's shape
  body.messages = openai_tools.messages(request.messages)
  if body.tools ~= nil then body.tools = openai_tools.tools(body.tools) end
  -- a stream's usage comes in a last chunk only when asked for; a request
  -- that sets stream_options keeps its own
  if body.stream and body.stream_options == nil then body.stream_options = { include_usage = true } end
  if request.structured ~= nil then
    -- the neutral request's structured = { name, schema } is OpenAI's strict
    -- response_format; a request that sets response_format keeps its own
    body.structured = nil
    if body.response_format == nil then body.response_format = response_format(request.structured, level + 1) end
  end
  return body
end

-- body(client, request) -> the JSON body alone. A fan-out builds one spec
-- with build and one body per member with this, not a spec per member.
function openai.body(client, request)
  if type(client) ~= "table" then
    error(WHO .. ": body needs a client table, got " .. type(client), 2)
  end
  local body = make_body(client, request, 3)
  return body -- not a tail call: the misuse level counts this frame
end

-- build(client, request) -> spec for owl.core. Raises on misuse: a request
-- that is not a table, has no messages, or names no model anywhere.
function openai.build(client, request)
  if type(client) ~= "table" then
    error(WHO .. ": build needs a client table, got " .. type(client), 2)
  end
  local body = make_body(client, request, 3)
  local key = client.api_key
  local headers = http.headers(client, {
    { "Content-Type", "application/json" },
    { "Authorization", type(key) == "string" and key ~= "" and "Bearer " .. key or nil },
  }, WHO, 2)
  local spec = http.spec(client, "/chat/completions", headers, body, WHO, 2)
  if body.stream then http.stream_spec(spec, client) end
  return spec
end

-- A field the normalized response holds as a string: anything else a
-- server sends there (a number, an object) reads as absent.
local function string_or_nil(v)
  return type(v) == "string" and v or nil
end

local function read_tool_calls(list)
  local calls = json.array({})
  if type(list) ~= "table" then return calls end
  for _, tc in ipairs(list) do
    local fn = type(tc) == "table" and present(tc["function"]) or nil
    fn = type(fn) == "table" and fn or {}
    local raw = string_or_nil(fn.arguments)
    local call = {
      id = type(tc) == "table" and string_or_nil(tc.id) or nil,
      name = string_or_nil(fn.name),
      arguments_json = raw,
    }
    if raw then
      call.arguments, call.arguments_error = http.tool_arguments(raw)
    else
      call.arguments_error = "the tool call has no arguments string"
    end
    calls[#calls + 1] = call
  end
  return calls
end

-- The header OpenAI names the request by.
local REQUEST_ID = "x-request-id"

-- read(res, client) -> normalized response, or nil, err. res has status(),
-- header(name), body() and json(), as a core transfer does (see
-- owl.providers.http.decode: the status is checked before the body).
function openai.read(res, client)
  local decoded, status, secrets = http.decode(res, client, REQUEST_ID)
  if decoded == nil then return nil, status end -- status is the error then
  local choices = type(decoded) == "table" and present(decoded.choices) or nil
  local choice = type(choices) == "table" and present(choices[1]) or nil
  local message = type(choice) == "table" and present(choice.message) or nil
  if type(message) ~= "table" then
    -- some gateways answer 200 with an error object instead of choices
    return nil, http.no_answer(res, status, decoded, secrets, REQUEST_ID, "choices[1].message")
  end

  local text = present(message.content)
  local refusal = present(message.refusal)
  local usage = type(decoded.usage) == "table" and decoded.usage or {}
  local input_tokens = present(usage.prompt_tokens)
  local output_tokens = present(usage.completion_tokens)
  local details = present(usage.prompt_tokens_details)
  local cached = type(details) == "table" and present(details.cached_tokens) or nil
  return {
    text = type(text) == "string" and text or nil,
    refusal = type(refusal) == "string" and refusal or nil,
    tool_calls = read_tool_calls(present(message.tool_calls)),
    finish_reason = string_or_nil(choice.finish_reason),
    usage = {
      input_tokens = type(input_tokens) == "number" and input_tokens or 0,
      output_tokens = type(output_tokens) == "number" and output_tokens or 0,
      cached_input_tokens = type(cached) == "number" and cached or 0,
    },
    raw = decoded,
  }
end

-- stream_reader(client) -> the reader a streamed answer's events go through
-- (owl.providers.openai_stream).
function openai.stream_reader(client)
  return openai_stream.reader(http.secrets_of(client))
end

return openai
