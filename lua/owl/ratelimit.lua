-- owl.ratelimit: pacing one client's calls under its rate limits. Every
-- call of the client passes here before it is made, so a fan-out of a
-- thousand workers is paced as one stream of requests.
--
-- Providers state limits per minute but enforce them at a finer grain (600
-- RPM is 10 requests in any second), so sending a minute's worth at once
-- is refused even under the minute's limit. The limiter paces evenly
-- instead (a generic cell rate algorithm): request n may start 60 / rpm
-- seconds after request n - 1, and a request of c estimated tokens moves
-- the token schedule on by c * 60 / tpm seconds, with at most one second's
-- worth of tokens ahead of it. The estimate is corrected from the usage
-- the answer reports. The provider's own headers pause the client until
-- their reset when a window runs out (x-ratelimit-*, anthropic-ratelimit-*).
local core = require("owl.core")
local retry = require("owl.retry")
local checkpoint = require("owl.task").checkpoint

local M = {}

local Limiter = {}
Limiter.__index = Limiter

-- How far ahead of the token schedule a call may start: a second's worth,
-- the grain providers enforce at.
local TOKEN_TOLERANCE = 1
-- Characters per token, for an estimate made before the tokenizer's count
-- is known (the usual rule for English text and code).
local CHARS_PER_TOKEN = 4
-- A reset further off than this is not a window running out but a header
-- misread (or a clock far off): never pause a client for a day.
local MAX_PAUSE = 600

local function rate(who, name, v)
  if v ~= nil and not (type(v) == "number" and v > 0 and v <= 1e12) then
    error(who .. ": rate_limit." .. name .. " must be a number above 0, got " .. tostring(v), 4)
  end
  return v
end

-- M.new(opts) -> a limiter. opts: nil, or { requests_per_minute,
-- tokens_per_minute } (each optional).
function M.new(opts, who)
  who = who or "owl.client"
  local rpm, tpm
  if opts ~= nil then
    if type(opts) ~= "table" then error(who .. ": rate_limit must be a table, got " .. type(opts), 3) end
    for k in pairs(opts) do
      if k ~= "requests_per_minute" and k ~= "tokens_per_minute" then
        error(who .. ": rate_limit has an unknown field '" .. tostring(k) .. "'", 3)
      end
    end
    rpm = rate(who, "requests_per_minute", opts.requests_per_minute)
    tpm = rate(who, "tokens_per_minute", opts.tokens_per_minute)
  end
  return setmetatable({
    request_interval = rpm and 60 / rpm or nil, -- seconds between two starts
    token_interval = tpm and 60 / tpm or nil,   -- seconds one token moves the schedule
    next_request = 0,   -- monotonic time the next request may start
    token_clock = 0,    -- the token schedule (GCRA's theoretical arrival time)
    paused_until = 0,   -- a provider's reset, when a window ran out
  }, Limiter)
end

-- The length of a message content: a string, a json.rope's pieces, or an
-- array of parts with text.
local function content_length(c)
  if type(c) == "string" then return #c end
  if type(c) ~= "table" then return 0 end
  local n = 0
  for i, part in ipairs(c) do
    if i % 256 == 0 then checkpoint() end -- an aggregator's thousand outputs
    if type(part) == "string" then
      n = n + #part
    elseif type(part) == "table" then
      n = n + content_length(part.text or part.content)
    end
  end
  return n
end

-- M.estimate(request) -> the tokens a request is likely to use: its
-- messages' text over CHARS_PER_TOKEN, plus the output it allows
-- (max_tokens), which providers count against the limit up front.
function M.estimate(request)
  if type(request) ~= "table" then return 1 end
  local chars = 0
  for _, m in ipairs(type(request.messages) == "table" and request.messages or {}) do
    if type(m) == "table" then chars = chars + content_length(m.content) end
  end
  local out = type(request.max_tokens) == "number" and request.max_tokens or 0
  return math.ceil(chars / CHARS_PER_TOKEN) + out + 1
end

-- limiter:reserve(tokens) -> the monotonic time this call may start. The
-- slot is taken now, so calls start in the order they asked.
function Limiter:reserve(tokens)
  local now = core.now()
  local at = math.max(now, self.paused_until)
  if self.request_interval then at = math.max(at, self.next_request) end
  if self.token_interval then at = math.max(at, self.token_clock - TOKEN_TOLERANCE) end
  if self.request_interval then self.next_request = at + self.request_interval end
  if self.token_interval then
    self.token_clock = math.max(self.token_clock, at) + tokens * self.token_interval
  end
  return at
end

-- limiter:settle(estimated, usage): the answer's usage replaces the
-- estimate on the token schedule (either way).
function Limiter:settle(estimated, usage)
  if not self.token_interval or type(usage) ~= "table" then return end
  local used = (tonumber(usage.input_tokens) or 0) + (tonumber(usage.output_tokens) or 0)
  if used <= 0 then return end
  self.token_clock = self.token_clock + (used - estimated) * self.token_interval
end

-- "1s", "6m0s", "20ms", "1h2m3.5s" (OpenAI's x-ratelimit-reset-*) as
-- seconds, or nil.
function M.parse_duration(s)
  if type(s) ~= "string" or s == "" then return nil end
  local total, rest = 0, s
  local units = { h = 3600, m = 60, s = 1, ms = 0.001 }
  while rest ~= "" do
    local num, unit, after = rest:match("^(%d+%.?%d*)(ms)(.*)$")
    if not num then num, unit, after = rest:match("^(%d+%.?%d*)([hms])(.*)$") end
    if not num then return nil end
    total = total + tonumber(num) * units[unit]
    rest = after
  end
  return total
end

-- "2026-04-05T10:23:55Z" (Anthropic's anthropic-ratelimit-*-reset, RFC
-- 3339 in UTC, an optional fraction and offset) as epoch seconds, or nil.
function M.parse_rfc3339(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac, zone = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  local offset
  if zone == "Z" or zone == "z" then
    offset = 0
  else
    local sign, oh, om = zone:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  local t = retry.days_from_civil(tonumber(y), mo, d) * 86400 + h * 3600 + mi * 60 + sec
  local fraction = (frac ~= "" and frac ~= ".") and tonumber("0" .. frac) or 0
  return t + fraction - offset
end

-- The windows each provider reports: the header that says what is left,
-- and the one that says when it is whole again (reset: "duration" or
-- "date").
local WINDOWS = {
  { "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "duration" },
  { "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "duration" },
  { "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", "date" },
  { "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", "date" },
  { "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset", "date" },
  { "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset", "date" },
}

-- limiter:observe(header [, now_epoch]): reads a finished response's rate
-- limit headers (header(name) -> value or nil); a window with nothing left
-- pauses every later call of the client until its reset.
function Limiter:observe(header, now_epoch)
  for _, w in ipairs(WINDOWS) do
    local left = header(w[1])
    if left ~= nil and tonumber(left) == 0 then
      local reset = header(w[2])
      local wait
      if w[3] == "duration" then
        wait = M.parse_duration(reset)
      else
        local at = M.parse_rfc3339(reset)
        wait = at and at - (now_epoch or os.time())
      end
      if wait and wait > 0 and wait <= MAX_PAUSE then
        self.paused_until = math.max(self.paused_until, core.now() + wait)
      end
    end
  end
end

return M
