-- owl.errors: the one shape every owl runtime failure takes. An error is a
-- plain table (kind, message and the fields below) sharing one metatable, so
-- callers can read fields, `tostring` it into one line, and tell it apart
-- from any other value with errors.is.
local textlib = require("owl.text")

local errors = {}

-- Text in an error can come from a server or a model and be megabytes: it
-- is cut when the error is built, so printing or logging one stays cheap.
errors.MAX_MESSAGE = 4096
errors.MAX_FIELD = 1024

-- The kinds are closed: code that branches on err.kind must be able to list
-- them all, so a new kind is a change to this table and to docs/api.md.
local KINDS = {
  connect = true, timeout = true, tls = true, http = true, protocol = true,
  cancelled = true, refusal = true, length = true, invalid = true, worker = true,
  callback = true, -- a caller's function (on_delta) raised
  budget = true,   -- a run's max_total_tokens was passed
}

-- The kinds of a transport failure, as t:failure() names them.
local FAILURE_KINDS = { connect = true, timeout = true, tls = true, protocol = true, cancelled = true }

local mt = { __name = "owl.error" }

-- One line: a server message may hold newlines, and a log line or a CLI
-- report must stay one line. Each maximal run of whitespace is matched once
-- and gsub moves past it, so this is linear however long the run ("%s*\n"
-- unanchored would retry from every space of a run: quadratic).
local function fold(ws)
  if ws:find("[\r\n]") then return " " end
  return nil -- keep the run as it is
end

local function one_line(s)
  return (tostring(s):gsub("%s+", fold))
end

mt.__tostring = function(e)
  local head = "owl: " .. tostring(e.kind) .. " error"
  if e.status ~= nil then head = head .. " " .. tostring(e.status) end
  if e.subtask ~= nil then head = head .. " in subtask '" .. one_line(e.subtask) .. "'" end
  local line = head .. ": " .. one_line(e.message)
  local details = {}
  if e.provider_type ~= nil then details[#details + 1] = one_line(e.provider_type) end
  if e.provider_code ~= nil then details[#details + 1] = one_line(e.provider_code) end
  if e.param ~= nil then details[#details + 1] = "param " .. one_line(e.param) end
  if #details > 0 then line = line .. " (" .. table.concat(details, ", ") .. ")" end
  return line
end

-- errors.new(kind, message [, fields]): fields are copied in (status,
-- provider_type, provider_code, param, subtask, cause, errors, partial or
-- anything else); kind and message always come from the arguments.
function errors.new(kind, message, fields)
  if type(kind) ~= "string" or not KINDS[kind] then
    error("owl.errors: unknown error kind " .. tostring(kind), 2)
  end
  if type(message) ~= "string" then
    error("owl.errors: message must be a string, got " .. type(message), 2)
  end
  if fields ~= nil and type(fields) ~= "table" then
    error("owl.errors: fields must be a table, got " .. type(fields), 2)
  end
  local e = {}
  if fields then
    for k, v in pairs(fields) do
      if type(v) == "string" then v = textlib.cap(v, errors.MAX_FIELD) end
      e[k] = v
    end
  end
  e.kind = kind
  e.message = textlib.cap(message, errors.MAX_MESSAGE)
  return setmetatable(e, mt)
end

function errors.is(v)
  return type(v) == "table" and getmetatable(v) == mt
end

-- Plain (not pattern) replacement of every occurrence of needle.
local function replace_plain(text, needle, with)
  local out, init = {}, 1
  while true do
    local s, e = string.find(text, needle, init, true)
    if not s then break end
    out[#out + 1] = string.sub(text, init, s - 1)
    out[#out + 1] = with
    init = e + 1
  end
  if init == 1 then return text end
  out[#out + 1] = string.sub(text, init)
  return table.concat(out)
end

-- errors.redact(text, secrets): secrets is a string, an array of strings or
-- nil. Each secret is removed as plain text, then anything shaped like an
-- Authorization value ("Bearer <token>"), which catches keys owl was never
-- told about (a proxy's, a header echoed back by a gateway).
function errors.redact(text, secrets)
  if text == nil then return nil end
  if type(text) ~= "string" then
    error("owl.errors: redact needs a string, got " .. type(text), 2)
  end
  if type(secrets) == "string" then secrets = { secrets } end
  if secrets ~= nil and type(secrets) ~= "table" then
    error("owl.errors: secrets must be a string or an array of strings", 2)
  end
  if secrets then
    for _, secret in ipairs(secrets) do
      -- an empty secret would match between every two characters
      if type(secret) == "string" and secret ~= "" then
        text = replace_plain(text, secret, "[redacted]")
      end
    end
  end
  text = text:gsub("([Bb][Ee][Aa][Rr][Ee][Rr])(%s+)[%w%-%._~%+/=]+", "%1%2[redacted]")
  return text
end

-- A header whose name says it carries a credential: its value is a secret
-- wherever it shows up again (an echoed header, a gateway's error text).
local CREDENTIAL_WORDS = { "auth", "key", "token", "secret", "password", "cookie", "credential" }

function errors.is_credential_header(name)
  name = name:lower()
  for _, w in ipairs(CREDENTIAL_WORDS) do
    if name:find(w, 1, true) then return true end
  end
  return false
end

-- errors.credentials(api_key, headers) -> the secrets of a client, longest
-- first (so a secret that contains another is removed whole): the key, and
-- the value of every credential header, with the token after a scheme
-- ("Bearer abc" gives "abc" too).
function errors.credentials(api_key, headers)
  local set, list = {}, {}
  local function add(v)
    if type(v) == "string" and v ~= "" and not set[v] then
      set[v] = true
      list[#list + 1] = v
    end
  end
  add(api_key)
  for name, value in pairs(headers or {}) do
    if type(name) == "string" and errors.is_credential_header(name) then
      value = tostring(value)
      add(value)
      add(value:match("^%S+%s+(%S+)%s*$"))
    end
  end
  table.sort(list, function(a, b) return #a > #b end)
  return list
end

-- errors.redact_prefix(s, secrets, max [, total]): the redacted start of s,
-- at most about max bytes (total: the size of the text s starts, when s is
-- already a prefix of it), without ever redacting (or copying) the rest of it. The
-- window is widened by the longest secret first, so a key that straddles
-- the cut is still removed whole rather than leaving its head.
function errors.redact_prefix(s, secrets, max, total)
  if s == nil then return nil end
  total = total or #s
  local longest = 0
  for _, secret in ipairs(type(secrets) == "table" and secrets or { secrets }) do
    if type(secret) == "string" and #secret > longest then longest = #secret end
  end
  local window = max + longest + 64
  local redacted = errors.redact(#s > window and s:sub(1, window) or s, secrets)
  if total == #s and #s <= window and #redacted <= max then return redacted end
  return textlib.head(redacted, max) .. string.format("... (%d bytes in all)", total)
end

-- errors.scrub(err, secrets) -> err, with every string it carries (message,
-- provider_type, provider_code, param, request_id, retry_after, anything)
-- redacted, and its causes too. The one pass every error from a server or
-- from libcurl goes through before a caller, an event or a terminal sees it.
function errors.scrub(err, secrets, seen)
  seen = seen or {}
  if type(err) ~= "table" or seen[err] then return err end
  seen[err] = true
  for k, v in pairs(err) do
    if type(v) == "string" and k ~= "kind" then -- kind is owl's own word
      err[k] = errors.redact(v, secrets)
    elseif (k == "cause" or k == "errors") and type(v) == "table" then
      if errors.is(v) then errors.scrub(v, secrets, seen) else
        for _, c in ipairs(v) do errors.scrub(c, secrets, seen) end
      end
    end
  end
  return err
end

-- errors.from_failure(kind, message, secrets): a transfer failure as the core
-- reports it (t:failure(), which always has words: its own, libcurl's, or
-- curl_easy_strerror's). libcurl text can quote a URL or a header, so the
-- message is redacted like server text.
function errors.from_failure(kind, message, secrets)
  if type(kind) ~= "string" or not FAILURE_KINDS[kind] then
    error("owl.errors: not a transfer failure kind: " .. tostring(kind), 2)
  end
  if type(message) ~= "string" or message == "" then
    error("owl.errors: a failure message must be a non-empty string, got " .. (message == "" and "\"\"" or type(message)), 2)
  end
  return errors.new(kind, errors.redact(message, secrets))
end

return errors
