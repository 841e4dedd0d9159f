-- spec/ratelimit_spec.lua: owl.client{ rate_limit = ... } paces a client's
-- calls evenly, and a provider's rate-limit headers pause it (issue "owl 5
-- of 6", 2. Rate limits). OWL_LONG=1 (make test-long) runs the issue's
-- full fan-out: 1000 workers against a 600 RPM limit.
local owl = require("owl")
local core = require("owl.core")
local ratelimit = require("owl.ratelimit")
local retry = require("owl.retry")
local mock = require("support.mock")

local MSG = { { role = "user", content = "hi" } }
local LONG = os.getenv("OWL_LONG") == "1"

describe("owl.ratelimit", function()
  it("reads OpenAI's reset durations and Anthropic's reset dates", function()
    assert.equal(1, ratelimit.parse_duration("1s"))
    assert.equal(360, ratelimit.parse_duration("6m0s"))
    assert.equal(0.02, ratelimit.parse_duration("20ms"))
    assert.equal(0.002, ratelimit.parse_duration("2ms"))
    assert.equal(3723.5, ratelimit.parse_duration("1h2m3.5s"))
    for _, bad in ipairs({ "", "1", "s", "1d", "-1s", "1s2", "inf" }) do
      assert.is_nil(ratelimit.parse_duration(bad), bad)
    end
    local want = retry.parse_http_date("Sun, 05 Apr 2026 10:23:55 GMT")
    assert.equal(want, ratelimit.parse_rfc3339("2026-04-05T10:23:55Z"))
    assert.equal(want + 0.5, ratelimit.parse_rfc3339("2026-04-05T10:23:55.5Z"))
    assert.equal(want - 3600, ratelimit.parse_rfc3339("2026-04-05T10:23:55+01:00"))
    for _, bad in ipairs({ "2026-04-05", "2026-13-05T10:23:55Z", "2026-04-05T10:23:55", "soon" }) do
      assert.is_nil(ratelimit.parse_rfc3339(bad), bad)
    end
  end)

  it("estimates a request's tokens from its text and the output it allows", function()
    local json = require("owl.json")
    assert.equal(26, ratelimit.estimate{ messages = { { role = "user", content = string.rep("x", 100) } } })
    assert.equal(126, ratelimit.estimate{ max_tokens = 100,
      messages = { { role = "user", content = json.rope{ string.rep("x", 60), string.rep("y", 40) } } } })
    assert.equal(1, ratelimit.estimate{})
  end)

  it("spaces requests 60 / rpm seconds apart, in the order they asked", function()
    local l = ratelimit.new{ requests_per_minute = 600 }
    local t0 = core.now()
    local a, b, c = l:reserve(1), l:reserve(1), l:reserve(1)
    assert.is_true(a - t0 < 0.05)
    assert.is_true(math.abs(b - a - 0.1) < 1e-9)
    assert.is_true(math.abs(c - b - 0.1) < 1e-9)
  end)

  it("lets at most a second's worth of tokens ahead, and corrects the schedule from usage", function()
    local l = ratelimit.new{ tokens_per_minute = 6000 } -- 100 a second
    local t0 = core.now()
    assert.is_true(l:reserve(100) - t0 < 0.05) -- a second's worth at once
    assert.is_true(l:reserve(100) - t0 < 0.05) -- within the tolerance
    local third = l:reserve(100)
    assert.is_true(third - t0 > 0.9 and third - t0 < 1.1, "third at " .. (third - t0))
    -- the third used 300 tokens, not 100: the next waits two seconds more
    -- than the one second it would have
    l:settle(100, { input_tokens = 250, output_tokens = 50 })
    local fourth = l:reserve(100)
    assert.is_true(fourth - third > 2.9 and fourth - third < 3.1, "fourth after " .. (fourth - third))
  end)

  it("pauses when a provider's window runs out, until its reset", function()
    local l = ratelimit.new()
    local t0 = core.now()
    assert.is_true(l:reserve(1) - t0 < 0.05)
    local h = { ["x-ratelimit-remaining-requests"] = "0", ["x-ratelimit-reset-requests"] = "1m30s" }
    l:observe(function(n) return h[n] end)
    local at = l:reserve(1) - core.now()
    assert.is_true(at > 89 and at <= 90, "paused " .. at)
    l = ratelimit.new()
    h = { ["anthropic-ratelimit-tokens-remaining"] = "0", ["anthropic-ratelimit-tokens-reset"] = "2026-04-05T10:24:55Z" }
    l:observe(function(n) return h[n] end, ratelimit.parse_rfc3339("2026-04-05T10:23:55Z"))
    at = l:reserve(1) - core.now()
    assert.is_true(at > 59 and at <= 60, "paused " .. at)
    -- something left, an unreadable reset, or one a day off: no pause
    for _, hh in ipairs({
      { ["x-ratelimit-remaining-requests"] = "3", ["x-ratelimit-reset-requests"] = "10s" },
      { ["x-ratelimit-remaining-tokens"] = "0", ["x-ratelimit-reset-tokens"] = "soon" },
      { ["x-ratelimit-remaining-tokens"] = "0", ["x-ratelimit-reset-tokens"] = "24h" },
    }) do
      l = ratelimit.new()
      l:observe(function(n) return hh[n] end)
      assert.is_true(l:reserve(1) - core.now() < 0.05)
    end
  end)

  it("checks rate_limit when the client is made", function()
    assert.has_error(function() owl.client{ rate_limit = { requests_per_minute = 0 } } end,
      "owl.client: rate_limit.requests_per_minute must be a number above 0, got 0")
    assert.has_error(function() owl.client{ rate_limit = { tokens_per_minute = "9" } } end,
      "owl.client: rate_limit.tokens_per_minute must be a number above 0, got 9")
    assert.has_error(function() owl.client{ rate_limit = { rpm = 10 } } end,
      "owl.client: rate_limit has an unknown field 'rpm'")
    assert.has_error(function() owl.client{ rate_limit = 10 } end,
      "owl.client: option 'rate_limit' must be a table, got number")
  end)
end)

describe("a client under a rate limit", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(extra)
    local o = { base_url = server.url, api_key = "k", model = "m", max_retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  -- A fan-out of n workers against a server that enforces rpm at the
  -- second's grain: every one paced, not one 429 (max_retries = 0, so a
  -- 429 would fail the run).
  local function fan_out(n, rpm, limit)
    local c = client{ headers = { ["x-mock-rpm"] = tostring(rpm), ["x-mock-subtasks"] = tostring(n) },
                      rate_limit = limit }
    local started = core.now()
    local result, err = owl.run(c, "p", { max_subtasks = n })
    return result, err, core.now() - started
  end

  local n, rpm = 60, 1800
  if LONG then n, rpm = 1000, 600 end

  it("finishes a fan-out of " .. n .. " workers against " .. rpm .. " RPM without one 429", function()
    local result, err, took = fan_out(n, rpm, { requests_per_minute = rpm })
    assert.is_nil(err, tostring(err))
    assert.equal(n, #result.outputs)
    assert.equal(0, server:stats().rate_limited)
    assert.equal(n + 2, server:stats().total)
    -- paced evenly: n + 2 calls at rpm / 60 a second take about that long
    local least = (n + 1) * 60 / rpm
    assert.is_true(took >= least * 0.95, "took " .. took .. " s, pacing needs " .. least)
  end)

  it("without rate_limit, the same fan-out sends too much at once (what the limit prevents)", function()
    local result, err = fan_out(n, rpm, nil)
    assert.is_nil(result)
    assert.equal("worker", err.kind)
    assert.is_true(server:stats().rate_limited > 0)
  end)

  it("pauses after a response whose window ran out, until the reset it names", function()
    server:script{ { headers = { ["x-ratelimit-remaining-requests"] = "0", ["x-ratelimit-reset-requests"] = "700ms" } } }
    local c = client()
    assert(c:chat{ messages = MSG })
    local started = core.now()
    assert(c:chat{ messages = MSG })
    local took = core.now() - started
    assert.is_true(took >= 0.65, "the second call started after " .. took .. " s")
  end)

  it("pauses on Anthropic's reset date too", function()
    local reset = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 2)
    server:script{ { headers = { ["anthropic-ratelimit-requests-remaining"] = "0",
                                 ["anthropic-ratelimit-requests-reset"] = reset } } }
    local c = client{ provider = "anthropic", base_url = server.base }
    assert(c:chat{ messages = MSG })
    local started = core.now()
    assert(c:chat{ messages = MSG })
    local took = core.now() - started
    -- the reset is 1 to 2 s off, by whole seconds of the wall clock
    assert.is_true(took >= 0.9, "the second call started after " .. took .. " s")
  end)

  it("a paced call waits in owl.sleep: cancelling its task ends the wait", function()
    local c = client{ rate_limit = { requests_per_minute = 6 } } -- one every 10 s
    assert(c:chat{ messages = MSG })
    local waiting = owl.spawn(function() return c:chat{ messages = MSG } end)
    local canceller = owl.spawn(function() owl.sleep(0.1); waiting:cancel() end)
    local started = core.now()
    local res, err = waiting:wait()
    canceller:wait()
    assert.is_nil(res)
    assert.equal("cancelled", err.kind)
    assert.is_true(core.now() - started < 2)
    assert.equal(1, server:stats().total)
  end)
end)
