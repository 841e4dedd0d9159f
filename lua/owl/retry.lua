-- owl.retry: whether a failed call is made again, and after how long. The
-- policy is the official SDKs' (openai-python, anthropic-sdk-python): a
-- few retries with a capped, jittered exponential backoff, for failures a
-- second try can cure (the connection, a timeout, a rate limit, an
-- overloaded or failing server), honouring the wait a server asks for.
local M = {}

M.DEFAULT_MAX_RETRIES = 2
-- A server asking for a longer wait than this is not waited for: the error
-- goes back, carrying retry_after, and the caller decides.
M.DEFAULT_MAX_RETRY_AFTER = 60

-- The statuses a retry can cure: a request timeout, a conflict (a lock the
-- server held), a rate limit, and every server error (529 overloaded too).
local function retryable_status(status)
  return status == 408 or status == 409 or status == 429 or (status >= 500 and status <= 599)
end

-- The seconds a backoff waits before retry number n + 1 (n = 0 for the
-- first): 0.5, 1, 2, 4, 8, 8... less up to a quarter at random, so a
-- thousand workers refused at once do not come back at once.
function M.backoff(n)
  return math.min(0.5 * 2 ^ n, 8) * (1 - 0.25 * math.random())
end

-- Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
-- days_from_civil): pure arithmetic, so no time zone and no os.time table
-- conversion (which reads local time) is involved.
function M.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- An HTTP date (RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT")
-- as seconds since the epoch, or nil.
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = s:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = MONTHS[mon or ""]
  if not m then return nil end
  d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
  if d < 1 or d > 31 or hh > 23 or mm > 59 or ss > 60 then return nil end
  return M.days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
end

-- A plain decimal number of the header's unit: digits with an optional
-- fraction. tonumber would take "inf", "nan" (LuaJIT), hex and exponents.
local function decimal(s)
  s = s:match("^%s*(.-)%s*$")
  if not (s:find("^%d+$") or s:find("^%d+%.%d+$") or s:find("^%d*%.%d+$")) then return nil end
  return tonumber(s)
end

-- M.retry_after(header, now) -> the seconds a response asks a client to
-- wait, or nil when it asks nothing readable. header(name) reads one
-- response header. retry-after-ms (milliseconds, OpenAI's) wins over
-- retry-after (seconds, or an HTTP date); now is the epoch time in
-- seconds, for a date.
function M.retry_after(header, now)
  local ms = header("retry-after-ms")
  if ms then
    local v = decimal(ms)
    if v then return v / 1000 end
  end
  local ra = header("retry-after")
  if not ra then return nil end
  local v = decimal(ra)
  if v then return v end
  local at = M.parse_http_date(ra:match("^%s*(.-)%s*$"))
  if at then return at - (now or os.time()) end
  return nil
end

-- M.should_retry(header) -> true, false or nil: the server's own word
-- (x-should-retry), which overrides the status rule.
function M.should_retry(header)
  local v = header("x-should-retry")
  if v == "true" then return true end
  if v == "false" then return false end
  return nil
end

-- M.decide(err, max_retry_after) -> the seconds to wait before trying
-- again, or nil when err is not worth another try. err is an owl error
-- from one attempt; err.retry_after (a number) and err.should_retry are
-- what the response said.
function M.decide(err, n, max_retry_after)
  local kind = err.kind
  local again
  if err.should_retry ~= nil then
    again = err.should_retry
  elseif kind == "connect" or kind == "timeout" then
    again = true
  elseif kind == "protocol" then
    -- a reset or truncated answer, but not one of owl's own limits (the
    -- same request would pass it again) nor a whole answer that could not
    -- be read (a server that sent it once sends it again)
    again = err.transport == true and not err.limit
  elseif kind == "http" and type(err.status) == "number" then
    again = retryable_status(err.status)
  else
    again = false -- cancelled, callback, tls, refusal, length, invalid...
  end
  if not again or kind == "cancelled" or kind == "callback" then return nil end
  local ra = err.retry_after
  if type(ra) == "number" and ra >= 0 and ra == ra then
    if ra > max_retry_after then return nil end -- the caller decides
    return ra
  end
  return M.backoff(n)
end

return M
