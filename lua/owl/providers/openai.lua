-- owl.providers.openai: the OpenAI Chat Completions shape (and every gateway
-- that copies it). It builds the core's request spec from a client and a
-- request, and reads a finished transfer into owl's normalized response.
-- It never does I/O: the client hands the spec to the core and the finished
-- transfer back here.
local json = require("owl.json")
local errors = require("owl.errors")
local openai_stream = require("owl.providers.openai_stream")

local openai = {}

-- How much of a body an error message quotes: enough to recognise an HTML
-- error page or a gateway's text, not enough to flood a log.
local QUOTE_BYTES = 200

local function present(v)
  if v == nil or v == json.null then return nil end
  return v
end

local function shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function check_header_part(what, s)
  if type(s) ~= "string" then
    error("owl.providers.openai: header " .. what .. " must be a string, got " .. type(s), 3)
  end
  -- a CR or LF would let one header smuggle in another
  if s:find("[\r\n]") then
    error("owl.providers.openai: header " .. what .. " holds a line break: " .. string.format("%q", s), 3)
  end
end

-- structured = { name, schema } as OpenAI's strict structured output. The
-- name rule is OpenAI's; checking it here turns a 400 from the server into
-- an error at the line that made the request.
local function response_format(structured, level)
  if type(structured) ~= "table" then
    error("owl.providers.openai: request.structured must be a table { name, schema }, got " .. type(structured), level)
  end
  local name, json_schema = structured.name, structured.schema
  if type(name) ~= "string" or not name:find("^[%w_%-]+$") or #name > 64 then
    error("owl.providers.openai: schema name must be 1 to 64 letters, digits, '_' or '-', got "
      .. string.format("%q", tostring(name)), level)
  end
  if type(json_schema) ~= "table" then
    error("owl.providers.openai: request.structured.schema must be a table, got " .. type(json_schema), level)
  end
  return { type = "json_schema", json_schema = { name = name, strict = true, schema = json_schema } }
end

-- The request body: a shallow copy of the request with the model filled in.
-- level: where a misuse error points (the public caller).
local function make_body(client, request, level)
  if type(request) ~= "table" then
    error("owl.providers.openai: request must be a table, got " .. type(request), level)
  end
  if type(request.messages) ~= "table" then
    error("owl.providers.openai: request has no messages", level)
  end
  local model = request.model or client.model
  if model == nil then
    error("owl.providers.openai: no model: set the client's model or the request's", level)
  end
  if type(model) ~= "string" then
    error("owl.providers.openai: model must be a string, got " .. type(model), level)
  end
  local body = shallow_copy(request)
  body.model = model
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
    error("owl.providers.openai: body needs a client table, got " .. type(client), 2)
  end
  return make_body(client, request, 3)
end

-- build(client, request) -> spec for owl.core. Raises on misuse: a request
-- that is not a table, has no messages, or names no model anywhere.
function openai.build(client, request)
  if type(client) ~= "table" then
    error("owl.providers.openai: build needs a client table, got " .. type(client), 2)
  end
  local body = make_body(client, request, 3)
  local base_url = client.base_url
  if type(base_url) ~= "string" or base_url == "" then
    error("owl.providers.openai: client has no base_url", 2)
  end

  -- The user's headers come last and replace owl's of the same name, so a
  -- gateway that wants its own Authorization (or none) can have it.
  local user = {}
  local names = {}
  if client.headers ~= nil then
    if type(client.headers) ~= "table" then
      error("owl.providers.openai: client.headers must be a table of name -> value", 2)
    end
    for k, v in pairs(client.headers) do
      check_header_part("name", k)
      if type(v) == "number" then v = tostring(v) end
      check_header_part("value", v)
      names[#names + 1] = k
      user[k:lower()] = true
    end
    table.sort(names)
  end
  local headers = {}
  if not user["content-type"] then headers[#headers + 1] = "Content-Type: application/json" end
  local key = client.api_key
  if type(key) == "string" and key ~= "" and not user["authorization"] then
    headers[#headers + 1] = "Authorization: Bearer " .. key
  end
  for _, k in ipairs(names) do
    headers[#headers + 1] = k .. ": " .. tostring(client.headers[k])
  end

  local spec = {
    url = base_url:gsub("/+$", "") .. "/chat/completions",
    headers = headers,
    body = body,
    timeout = client.timeout,
    connect_timeout = client.connect_timeout,
    stall_timeout = client.stall_timeout,
    max_response_bytes = client.max_response_bytes,
    ca_file = client.ca_file,
  }
  if body.stream then
    -- a model may stream for many minutes: the client's timeout bounds the
    -- silence between two bytes, counted from the start, not the answer
    spec.sse = true
    spec.timeout = 0
    spec.stall_timeout = client.timeout
  end
  return spec
end

-- Error objects are small; a body larger than this is not decoded to look
-- for one (it is quoted instead).
local MAX_ERROR_JSON = 1024 * 1024

local function body_size(res)
  if res.size then return res:size() end
  return #(res:body() or "")
end

-- The start of a body for an error message, redacted. Only a prefix is
-- read and redacted: a 200 MB error page costs what 200 bytes cost.
local function quote(res, secrets)
  -- the margin lets a key that straddles the cut be seen whole
  local body = res:body(QUOTE_BYTES + 4096) or ""
  return errors.redact_prefix(body, secrets, QUOTE_BYTES, math.max(#body, body_size(res)))
end

local function secrets_of(client)
  if type(client) ~= "table" then return nil end
  return client.secrets or client.api_key
end

-- The fields of OpenAI's error object, redacted and capped like any text a
-- server sends: a hostile or echoing server may put a key in any of them.
local function error_fields(e, fields, secrets)
  local function field(v)
    v = present(v)
    if type(v) == "string" then return errors.redact_prefix(v, secrets, errors.MAX_FIELD) end
    if type(v) == "number" or type(v) == "boolean" then return v end
    return nil
  end
  fields.provider_type = field(e.type)
  fields.provider_code = field(e.code)
  fields.param = field(e.param)
  return fields
end

-- What any error from this response carries: its status, and the request
-- id and retry-after the server sent (redacted: a server may echo anything).
local function response_fields(res, status, secrets)
  local fields = { status = status }
  local request_id = res:header("x-request-id")
  if request_id then fields.request_id = errors.redact_prefix(request_id, secrets, errors.MAX_FIELD) end
  local retry_after = res:header("retry-after")
  if retry_after then
    fields.retry_after = tonumber(retry_after) or errors.redact_prefix(retry_after, secrets, errors.MAX_FIELD)
  end
  return fields
end

-- A non-2xx answer: OpenAI's {"error": {message, type, code, param}} when
-- the body has that shape, else the status and the start of the body.
local function http_error(res, status, secrets)
  local fields = response_fields(res, status, secrets)

  local decoded = body_size(res) <= MAX_ERROR_JSON and res:json() or nil
  local e = type(decoded) == "table" and present(decoded.error) or nil
  if type(e) == "table" and type(present(e.message)) == "string" then
    return errors.new("http", errors.redact_prefix(e.message, secrets, errors.MAX_MESSAGE),
      error_fields(e, fields, secrets))
  elseif type(e) == "string" then
    -- some gateways send {"error": "text"}
    return errors.new("http", errors.redact_prefix(e, secrets, errors.MAX_MESSAGE), fields)
  end
  local message
  if body_size(res) == 0 then
    message = "HTTP " .. status .. " with an empty body"
  else
    message = "HTTP " .. status .. ": " .. quote(res, secrets)
  end
  return errors.new("http", message, fields)
end

local function read_tool_calls(list)
  local calls = json.array({})
  if type(list) ~= "table" then return calls end
  for _, tc in ipairs(list) do
    local fn = type(tc) == "table" and present(tc["function"]) or nil
    fn = type(fn) == "table" and fn or {}
    local raw = present(fn.arguments)
    local call = {
      id = type(tc) == "table" and present(tc.id) or nil,
      name = present(fn.name),
      arguments_json = raw,
    }
    if type(raw) == "string" then
      local value, msg = json.decode(raw)
      if value == nil then
        call.arguments_error = "arguments are not valid JSON: " .. tostring(msg)
      elseif type(value) ~= "table" or json.is_array(value) then
        call.arguments_error = "arguments are not a JSON object"
      else
        call.arguments = value
      end
    else
      call.arguments_error = "the tool call has no arguments string"
    end
    calls[#calls + 1] = call
  end
  return calls
end

-- read(res, client) -> normalized response, or nil, err. res has status(),
-- header(name), body() and json(), as a core transfer does. The status is
-- checked before the body is parsed: an error page is not a protocol error.
function openai.read(res, client)
  local secrets = secrets_of(client)
  local status = res:status()
  if type(status) ~= "number" or status == 0 then
    return nil, errors.new("protocol", "no HTTP response")
  end
  if status < 200 or status > 299 then
    return nil, http_error(res, status, secrets)
  end

  local decoded, msg = res:json()
  if decoded == nil then
    if body_size(res) == 0 then
      return nil, errors.new("protocol", "the response body is empty (HTTP " .. status .. ")", { status = status })
    end
    return nil, errors.new("protocol", "the response body is not JSON ("
      .. errors.redact_prefix(tostring(msg), secrets, QUOTE_BYTES) .. "): " .. quote(res, secrets), { status = status })
  end
  local choices = type(decoded) == "table" and present(decoded.choices) or nil
  local choice = type(choices) == "table" and present(choices[1]) or nil
  local message = type(choice) == "table" and present(choice.message) or nil
  if type(message) ~= "table" then
    -- some gateways answer 200 with an error object instead of choices
    local e = type(decoded) == "table" and present(decoded.error) or nil
    if type(e) == "table" and type(present(e.message)) == "string" then
      return nil, errors.new("protocol", "the response has no choices[1].message: "
        .. errors.redact_prefix(e.message, secrets, errors.MAX_MESSAGE),
        error_fields(e, response_fields(res, status, secrets), secrets))
    end
    return nil, errors.new("protocol", "the response has no choices[1].message", { status = status })
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
    finish_reason = present(choice.finish_reason),
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
  return openai_stream.reader(secrets_of(client))
end

return openai
