-- owl.providers.http: what every provider shares, so that a provider holds
-- only its wire format. On the way out: the neutral request's checks, the
-- header list (owl's headers, then the client's, which replace owl's of the
-- same name) and the core's spec. On the way back: a finished transfer read
-- up to its decoded JSON body, with every error (no response, an error
-- status, a body that is not JSON, a 200 that carries an error object)
-- turned into an owl error, its server text redacted and capped.
--
-- `who` is the provider's module name, which starts every misuse message;
-- `level` is where a misuse error points, as error() counts from the
-- function that takes it.
local json = require("owl.json")
local errors = require("owl.errors")
local retry = require("owl.retry")

local http = {}

-- How much of a body an error message quotes: enough to recognise an HTML
-- error page or a gateway's text, not enough to flood a log.
http.QUOTE_BYTES = 200
-- Error objects are small; a body larger than this is not decoded to look
-- for one (it is quoted instead).
http.MAX_ERROR_JSON = 1024 * 1024

-- A decoded JSON value, with null read as absent.
function http.present(v)
  if v == nil or v == json.null then return nil end
  return v
end
local present = http.present

-- http.tool_arguments(raw) -> a tool call's arguments string decoded into
-- a table, or nil and why not: what every reader of a tool call says.
function http.tool_arguments(raw)
  local value, msg = json.decode(raw)
  if value == nil then return nil, "arguments are not valid JSON: " .. tostring(msg) end
  if type(value) ~= "table" or json.is_array(value) then return nil, "arguments are not a JSON object" end
  return value
end

function http.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- ------------------------------------------------------------------ requests

-- http.model(client, request, who, level) -> the model the request names,
-- else the client's. Raises on a request that is not a table, has no
-- messages, or names no model anywhere.
function http.model(client, request, who, level)
  if type(request) ~= "table" then
    error(who .. ": request must be a table, got " .. type(request), level + 1)
  end
  if type(request.messages) ~= "table" then
    error(who .. ": request has no messages", level + 1)
  end
  local model = request.model or client.model
  if model == nil then
    error(who .. ": no model: set the client's model or the request's", level + 1)
  end
  if type(model) ~= "string" then
    error(who .. ": model must be a string, got " .. type(model), level + 1)
  end
  return model
end

-- http.structured(structured, who, level) -> name, schema of the neutral
-- request's structured = { name, schema }. The name rule is the one both
-- OpenAI (schema names) and Anthropic (tool names) enforce: checking it here
-- turns a 400 from the server into an error at the line that made the request.
function http.structured(structured, who, level)
  if type(structured) ~= "table" then
    error(who .. ": request.structured must be a table { name, schema }, got " .. type(structured), level + 1)
  end
  local name, schema = structured.name, structured.schema
  if type(name) ~= "string" or not name:find("^[%w_%-]+$") or #name > 64 then
    error(who .. ": schema name must be 1 to 64 letters, digits, '_' or '-', got "
      .. string.format("%q", tostring(name)), level + 1)
  end
  if type(schema) ~= "table" then
    error(who .. ": request.structured.schema must be a table, got " .. type(schema), level + 1)
  end
  return name, schema
end

local function check_header_part(who, what, s, level)
  if type(s) ~= "string" then
    error(who .. ": header " .. what .. " must be a string, got " .. type(s), level + 1)
  end
  -- a CR or LF would let one header smuggle in another
  if s:find("[\r\n]") then
    error(who .. ": header " .. what .. " holds a line break: " .. string.format("%q", s), level + 1)
  end
end

-- http.headers(client, own, who, level) -> { "Name: value", ... }: owl's
-- headers in their order (own = { { name, value }, ... }; a nil value is not
-- sent), then the client's headers sorted by name. A client header replaces
-- owl's of the same name in any case, so a gateway that wants its own
-- Authorization (or x-api-key, or none) can have it.
function http.headers(client, own, who, level)
  local user, names = {}, {}
  if client.headers ~= nil then
    if type(client.headers) ~= "table" then
      error(who .. ": client.headers must be a table of name -> value", level + 1)
    end
    for k, v in pairs(client.headers) do
      check_header_part(who, "name", k, level + 1)
      if type(v) == "number" then v = tostring(v) end
      check_header_part(who, "value", v, level + 1)
      names[#names + 1] = k
      user[k:lower()] = true
    end
    table.sort(names)
  end
  local headers = {}
  for _, h in ipairs(own) do
    local name, value = h[1], h[2]
    if value ~= nil and not user[name:lower()] then headers[#headers + 1] = name .. ": " .. value end
  end
  for _, k in ipairs(names) do
    headers[#headers + 1] = k .. ": " .. tostring(client.headers[k])
  end
  return headers
end

-- http.spec(client, path, headers, body, who, level) -> the core's spec: the
-- client's base_url (trailing slashes dropped) joined to path, and the
-- client's timeouts, response cap and CA file.
function http.spec(client, path, headers, body, who, level)
  local base_url = client.base_url
  if type(base_url) ~= "string" or base_url == "" then
    error(who .. ": client has no base_url", level + 1)
  end
  return {
    url = base_url:gsub("/+$", "") .. path,
    headers = headers,
    body = body,
    timeout = client.timeout,
    connect_timeout = client.connect_timeout,
    stall_timeout = client.stall_timeout,
    max_response_bytes = client.max_response_bytes,
    ca_file = client.ca_file,
  }
end

-- http.stream_spec(spec, client): makes spec a streamed call's. The core
-- frames its server-sent events (sse), and since a model may stream for
-- many minutes, the client's timeout bounds the silence between two bytes,
-- counted from the start, not the whole answer.
function http.stream_spec(spec, client)
  spec.sse = true
  spec.timeout = 0
  spec.stall_timeout = client.timeout
  return spec
end

-- ------------------------------------------------------------------ responses

-- What error text is redacted of: the client's secrets (its key and
-- credential headers), or its bare key for a client table made by hand.
function http.secrets_of(client)
  if type(client) ~= "table" then return nil end
  return client.secrets or client.api_key
end

function http.body_size(res)
  if res.size then return res:size() end
  return #(res:body() or "")
end

-- The start of a body for an error message, redacted. Only a prefix is
-- read and redacted: a 200 MB error page costs what 200 bytes cost.
function http.quote(res, secrets)
  -- the margin lets a key that straddles the cut be seen whole
  local body = res:body(http.QUOTE_BYTES + 4096) or ""
  return errors.redact_prefix(body, secrets, http.QUOTE_BYTES, math.max(#body, http.body_size(res)))
end

-- One field of a server's error object, redacted and capped like any text
-- a server sends: a hostile or echoing server may put a key in any of them.
local function field(v, secrets)
  v = present(v)
  if type(v) == "string" then return errors.redact_prefix(v, secrets, errors.MAX_FIELD) end
  if type(v) == "number" or type(v) == "boolean" then return v end
  return nil
end

-- What any error from this response carries: its status, and the request
-- id (from the header named request_id_header, else from a decoded body's
-- own "request_id", as Anthropic's error bodies have it) and retry-after
-- the server sent.
local function response_fields(res, status, secrets, request_id_header, decoded)
  local fields = { status = status }
  local request_id = res:header(request_id_header)
  if request_id == nil and type(decoded) == "table" and type(present(decoded.request_id)) == "string" then
    request_id = decoded.request_id
  end
  if request_id then fields.request_id = errors.redact_prefix(request_id, secrets, errors.MAX_FIELD) end
  -- the wait the server asks for, in seconds (retry-after-ms, retry-after
  -- in seconds or as a date), kept as the redacted text when unreadable
  local header = function(name) return res:header(name) end
  local wait = retry.retry_after(header)
  if wait then
    fields.retry_after = wait
  else
    local raw = res:header("retry-after")
    if raw then fields.retry_after = errors.redact_prefix(raw, secrets, errors.MAX_FIELD) end
  end
  fields.should_retry = retry.should_retry(header)
  return fields
end

-- The error object both APIs send, {"error": {message, type, code, param}}
-- (Anthropic wraps it in {"type": "error", ...} and has no code or param),
-- as provider_type, provider_code and param.
local function error_fields(e, fields, secrets)
  fields.provider_type = field(e.type, secrets)
  fields.provider_code = field(e.code, secrets)
  fields.param = field(e.param, secrets)
  return fields
end

local function error_object(decoded)
  local e = type(decoded) == "table" and present(decoded.error) or nil
  if type(e) == "table" and type(present(e.message)) == "string" then return e end
  return nil
end

-- A non-2xx answer: the provider's error object when the body has one,
-- else the status and the start of the body.
local function status_error(res, status, secrets, request_id_header)
  local decoded = http.body_size(res) <= http.MAX_ERROR_JSON and res:json() or nil
  local fields = response_fields(res, status, secrets, request_id_header, decoded)
  local e = error_object(decoded)
  if e then
    return errors.new("http", errors.redact_prefix(e.message, secrets, errors.MAX_MESSAGE),
      error_fields(e, fields, secrets))
  end
  local text = type(decoded) == "table" and present(decoded.error) or nil
  if type(text) == "string" then
    -- some gateways send {"error": "text"}
    return errors.new("http", errors.redact_prefix(text, secrets, errors.MAX_MESSAGE), fields)
  end
  local message
  if http.body_size(res) == 0 then
    message = "HTTP " .. status .. " with an empty body"
  else
    message = "HTTP " .. status .. ": " .. http.quote(res, secrets)
  end
  return errors.new("http", message, fields)
end

-- http.decode(res, client, request_id_header) -> decoded, status, secrets;
-- or nil, err. res has status(), header(name), body([max]), json() and, if
-- it can, size(), as a finished core transfer does. The status is checked
-- before the body is parsed: an error page is not a protocol error.
function http.decode(res, client, request_id_header)
  local secrets = http.secrets_of(client)
  local status = res:status()
  if type(status) ~= "number" or status == 0 then
    return nil, errors.new("protocol", "no HTTP response")
  end
  if status < 200 or status > 299 then
    return nil, status_error(res, status, secrets, request_id_header)
  end
  local decoded, msg = res:json()
  if decoded == nil then
    if http.body_size(res) == 0 then
      return nil, errors.new("protocol", "the response body is empty (HTTP " .. status .. ")", { status = status })
    end
    return nil, errors.new("protocol", "the response body is not JSON ("
      .. errors.redact_prefix(tostring(msg), secrets, http.QUOTE_BYTES) .. "): " .. http.quote(res, secrets),
      { status = status })
  end
  return decoded, status, secrets
end

-- http.no_answer(res, status, decoded, secrets, request_id_header, what) ->
-- the protocol error for a 2xx body without the answer ("the response has
-- no <what>"), quoting the error object some gateways send instead.
function http.no_answer(res, status, decoded, secrets, request_id_header, what)
  local message = "the response has no " .. what
  local e = error_object(decoded)
  if e then
    return errors.new("protocol", message .. ": " .. errors.redact_prefix(e.message, secrets, errors.MAX_MESSAGE),
      error_fields(e, response_fields(res, status, secrets, request_id_header, decoded), secrets))
  end
  return errors.new("protocol", message, { status = status })
end

return http
