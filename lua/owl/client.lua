-- owl.client: a configured connection to one LLM API. It checks its options
-- once, picks the provider (request builders and response readers) and the
-- loop its transfers run on, and turns one request into one normalized
-- response: client:chat blocks in a script and yields in an owl task.
local core = require("owl.core")
local errors = require("owl.errors")
local task = require("owl.task")
local stream_mod = require("owl.stream")
local retry = require("owl.retry")
local ratelimit = require("owl.ratelimit")

local M = {}

local Client = {}
Client.__index = Client
Client.__name = "owl.client"

-- The defaults of the official SDKs: a slow model may take minutes to
-- answer, but a server that does not accept a connection in 5 s is down.
local DEFAULT_TIMEOUT = 600
local DEFAULT_CONNECT_TIMEOUT = 5
-- Once an answer has begun, a server silent this long has stalled: fail in
-- seconds rather than wait out the whole timeout. (Before the first byte
-- only `timeout` applies: a model that is not streaming sends nothing until
-- it is done.)
local DEFAULT_STALL_TIMEOUT = 30
-- One answer larger than this is not a chat completion: fail it rather than
-- hold it in memory (a 128k-token answer is well under 1 MiB of JSON).
local DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
-- The largest timeout the core accepts, in seconds.
local MAX_SECONDS = 1e9

-- Where each provider's key and base URL come from by default. Anthropic's
-- base URL has no /v1 (its SDKs take it so; the provider adds /v1/messages).
local PROVIDERS = {
  openai = { module = "owl.providers.openai", key_env = "OPENAI_API_KEY", url_env = "OPENAI_BASE_URL",
             url = "https://api.openai.com/v1" },
  anthropic = { module = "owl.providers.anthropic", key_env = "ANTHROPIC_API_KEY", url_env = "ANTHROPIC_BASE_URL",
                url = "https://api.anthropic.com" },
}

local OPTIONS = {
  provider = "string", base_url = "string", api_key = "string", model = "string",
  headers = "table", timeout = "number", connect_timeout = "number", stall_timeout = "number",
  max_connections = "number", max_response_bytes = "number", ca_file = "string", loop = "userdata",
  structured = "string", max_retries = "number", max_retry_after = "number", rate_limit = "table",
}

local default_loop

-- The loop shared by every client that does not ask for its own: one
-- connection cache, one place for a host to drive. A closed default loop is
-- forgotten: the next call gets a new one.
function M.default_loop()
  if default_loop == nil or default_loop:is_closed() then default_loop = core.loop() end
  return default_loop
end

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("owl.client: options must be a table, got " .. type(opts), 3) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == nil then error("owl.client: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then
      error("owl.client: option '" .. k .. "' must be a " .. want .. ", got " .. type(v), 3)
    end
  end
  return opts
end

-- Checked here, when the client is made, so a bad value fails before any
-- paid call rather than at the first transfer.
-- max_retries: how many times a failed call is made again (0: never).
function M.check_retries(who, v, level)
  if v ~= nil and not (type(v) == "number" and v >= 0 and v <= 100 and v == math.floor(v)) then
    error(who .. ": option 'max_retries' must be an integer from 0 to 100, got " .. tostring(v), level + 1)
  end
end

local function positive(name, v)
  if v ~= nil and not (v > 0 and v <= MAX_SECONDS) then
    error("owl.client: option '" .. name .. "' must be a number of seconds above 0 and at most "
      .. string.format("%.0f", MAX_SECONDS) .. ", got " .. tostring(v), 3)
  end
end

-- The provider's way of writing structured output the client asked for
-- (its first when none): a provider that has only one takes no option.
local function structured_mode(pname, provider, mode)
  local modes = provider.structured_modes
  if mode == nil then return modes and modes[1] or nil end
  if modes == nil then
    error("owl.client: option 'structured' is not for provider '" .. pname .. "' (it has one way)", 3)
  end
  for _, m in ipairs(modes) do
    if m == mode then return mode end
  end
  error("owl.client: option 'structured' must be '" .. table.concat(modes, "' or '") .. "' for provider '"
    .. pname .. "', got '" .. mode .. "'", 3)
end

-- owl.client{ provider, base_url, api_key, model, headers, timeout,
-- connect_timeout, stall_timeout, max_connections, max_response_bytes,
-- ca_file, loop, structured, max_retries, max_retry_after, rate_limit }
function M.new(opts)
  opts = check_options(opts)
  local pname = opts.provider or "openai"
  local pinfo = PROVIDERS[pname]
  if pinfo == nil then error("owl.client: unknown provider '" .. pname .. "'", 2) end
  positive("timeout", opts.timeout)
  positive("connect_timeout", opts.connect_timeout)
  positive("stall_timeout", opts.stall_timeout)
  local max_bytes = opts.max_response_bytes
  if max_bytes ~= nil and not (max_bytes >= 1 and max_bytes <= 2^53 - 1 and max_bytes == math.floor(max_bytes)) then
    error("owl.client: option 'max_response_bytes' must be a positive integer, got " .. tostring(max_bytes), 2)
  end
  local maxc = opts.max_connections
  if maxc ~= nil and not (maxc >= 1 and maxc <= 1e9 and maxc == math.floor(maxc)) then
    error("owl.client: option 'max_connections' must be an integer from 1 to 1000000000, got " .. tostring(maxc), 2)
  end
  M.check_retries("owl.client", opts.max_retries, 2)
  local mra = opts.max_retry_after
  if mra ~= nil and not (mra >= 0 and mra <= MAX_SECONDS) then
    error("owl.client: option 'max_retry_after' must be a number of seconds from 0 to "
      .. string.format("%.0f", MAX_SECONDS) .. ", got " .. tostring(mra), 2)
  end
  local base_url = opts.base_url or os.getenv(pinfo.url_env)
  if base_url == nil or base_url == "" then base_url = pinfo.url end
  if not base_url:lower():find("^https?://") then
    error("owl.client: base_url must start with http:// or https://, got '" .. base_url .. "'", 2)
  end
  local headers
  if opts.headers then
    headers = {}
    for k, v in pairs(opts.headers) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
        error("owl.client: headers must map names to strings", 2)
      end
      headers[k] = tostring(v)
    end
  end
  local api_key = opts.api_key
  if api_key == nil then api_key = os.getenv(pinfo.key_env) end
  if api_key == "" then api_key = nil end

  local limiter = ratelimit.new(opts.rate_limit)
  local provider = require(pinfo.module)
  local structured = structured_mode(pname, provider, opts.structured)

  local own_loop = opts.loop
  return setmetatable({
    provider_name = pname,
    provider = provider,
    structured = structured, -- how structured output is written (Anthropic: output_config or tool)
    base_url = base_url,
    api_key = api_key,
    model = opts.model,
    headers = headers,
    -- what error text is redacted of: the key and credential headers
    secrets = errors.credentials(api_key, headers),
    timeout = opts.timeout or DEFAULT_TIMEOUT,
    connect_timeout = opts.connect_timeout or DEFAULT_CONNECT_TIMEOUT,
    stall_timeout = opts.stall_timeout or DEFAULT_STALL_TIMEOUT,
    max_response_bytes = max_bytes or DEFAULT_MAX_RESPONSE_BYTES,
    ca_file = opts.ca_file,
    max_retries = opts.max_retries or retry.DEFAULT_MAX_RETRIES,
    max_retry_after = mra or retry.DEFAULT_MAX_RETRY_AFTER,
    own_loop = own_loop, -- nil: the default loop, looked up at each call
    -- max_connections: a cap in Lua over whichever loop the calls run on
    -- (a private capped loop would be one a host's driver never turns)
    slots = maxc and task.semaphore(maxc) or nil,
    -- every call is paced here: rate_limit, and the provider's own
    -- rate-limit headers when a window runs out
    limiter = limiter,
  }, Client)
end

function M.is_client(v)
  return getmetatable(v) == Client
end

-- Never shows the key.
function Client:__tostring()
  return "owl.client (" .. self.provider_name .. ", " .. self.base_url .. ", model " .. tostring(self.model) .. ")"
end

-- The loop this client's transfers run on.
function Client:get_loop()
  return self.own_loop or M.default_loop()
end

-- The outcome of a finished transfer: a transport failure, or what the
-- provider reads from the response (request: the neutral request it
-- answers, which a provider may need to read it). Every error passes
-- errors.scrub here, whatever field a server put a key in.
function Client:read(t, request)
  self:observe(t)
  local kind, message, limit = t:failure()
  if kind then
    local err = errors.from_failure(kind, message, self.secrets)
    -- what the retry policy reads: the exchange failed below HTTP, and
    -- whether at one of owl's own caps (a retry would pass it again)
    err.transport = true
    if limit then err.limit = true end
    -- a failure after the status line (a body over max_response_bytes, a
    -- reset mid-body) keeps the status: a 500 stays a 500
    local status = t:status()
    if type(status) == "number" and status > 0 then err.status = status end
    return nil, err
  end
  local res, err = self.provider.read(t, self, request)
  if res == nil then return nil, errors.scrub(err, self.secrets) end
  return res
end

-- Reads a finished transfer's rate-limit headers: a provider's window that
-- ran out pauses this client's later calls until its reset.
function Client:observe(t)
  local status = t:status()
  if type(status) == "number" and status > 0 then
    self.limiter:observe(function(name) return t:header(name) end)
  end
end

-- Waits for a transfer started on loop and reads it. What the reader took
-- is in Lua now: the transfer's buffers are freed at once (t:release).
function Client:finish(t, loop, request)
  task.await(loop or self:get_loop(), t)
  local res, err = self:read(t, request)
  t:release()
  return res, err
end

-- client:chat(request) -> normalized response, or nil and an owl error.
-- With request.stream, the answer is read as it arrives and
-- request.on_delta(delta) is called with each piece (see owl.stream).
function Client:chat(request)
  if getmetatable(self) ~= Client then error("owl.client: use client:chat(request), not client.chat", 2) end
  if type(request) ~= "table" then error("owl.client: chat needs a request table, got " .. type(request), 2) end
  local on_delta, max_retries = request.on_delta, request.max_retries
  if on_delta ~= nil then
    if type(on_delta) ~= "function" then
      error("owl.client: on_delta must be a function, got " .. type(on_delta), 2)
    end
    if not request.stream then error("owl.client: on_delta needs stream = true", 2) end
  end
  M.check_retries("owl.client: chat", max_retries, 2)
  if on_delta ~= nil or max_retries ~= nil then
    -- owl's own fields are not part of the request the server sees
    local copy = {}
    for k, v in pairs(request) do copy[k] = v end
    copy.on_delta, copy.max_retries = nil, nil
    request = copy
  end
  local spec = self.provider.build(self, request)
  return self:call(function(loop) return loop:request(spec) end, nil, request,
    request.stream and { on_delta = on_delta } or nil, max_retries)
end

local function cancelled()
  return errors.new("cancelled", "the task was cancelled")
end

-- One attempt: start(loop) makes the transfer once the rate limiter lets
-- it start and the client has a free connection slot (max_connections);
-- the slot is held until it is read.
function Client:attempt(start, loop, request, stream, on_delta)
  local tokens = ratelimit.estimate(request)
  local wait = self.limiter:reserve(tokens) - core.now()
  if wait > 0 then
    task.sleep(wait)
    local me = task.current()
    if me and me.cancelled then return nil, cancelled() end
  end
  if self.slots and not self.slots:acquire() then return nil, cancelled() end
  local t = start(loop)
  local res, err
  if stream then
    res, err = stream_mod.read(self, t, loop, on_delta, request)
  else
    res, err = self:finish(t, loop, request)
  end
  if self.slots then self.slots:release() end
  if res then self.limiter:settle(tokens, res.usage) end
  return res, err
end

-- client:call(start [, loop [, request [, stream [, max_retries]]]]) ->
-- response, or nil and an error: start(loop) makes one transfer, and is
-- called again for each retry (owl.retry's policy, at most max_retries
-- times, the client's by default); the wait between is owl.sleep, with no
-- connection slot held, and cancelling the task ends it. request: the
-- neutral request the transfer carries, for the reader. stream = {
-- on_delta = fn or nil }: the transfer was built streaming (spec.sse) and
-- is read as it arrives (owl.stream); once a delta has reached on_delta, or
-- text has arrived, a failure is final (it carries err.partial_text). The
-- response, and the error, record their `attempts`.
function Client:call(start, loop, request, stream, max_retries)
  loop = loop or self:get_loop()
  max_retries = max_retries or self.max_retries
  local delivered = false
  local on_delta = stream and stream.on_delta
  if on_delta then
    local inner = on_delta
    on_delta = function(d)
      delivered = true
      return inner(d)
    end
  end
  local attempts = 0
  while true do
    attempts = attempts + 1
    local res, err = self:attempt(start, loop, request, stream, on_delta)
    if res then
      res.attempts = attempts
      return res
    end
    err.attempts = attempts
    local wait
    -- a reader's own error carries partial_text = "" when no text came:
    -- that is no text, and a retry loses nothing
    if attempts <= max_retries and not delivered and (err.partial_text or "") == "" then
      wait = retry.decide(err, attempts - 1, self.max_retry_after)
    end
    if wait == nil then return nil, err end
    task.sleep(wait)
    local me = task.current()
    if me and me.cancelled then
      return nil, errors.new("cancelled", "the task was cancelled while waiting to retry (" .. tostring(err) .. ")",
        { attempts = attempts, cause = err })
    end
  end
end

return M
