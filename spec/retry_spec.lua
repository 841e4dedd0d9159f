-- spec/retry_spec.lua: owl.retry's policy, and client calls that fail and
-- are made again against the mock (issue "owl 5 of 6", 1. Retries).
local owl = require("owl")
local core = require("owl.core")
local retry = require("owl.retry")
local errors = require("owl.errors")
local mock = require("support.mock")

local MSG = { { role = "user", content = "hi" } }
local KEY = "sk-retry-secret-0123456789"

describe("owl.retry", function()
  it("backs off 0.5, 1, 2, 4, 8, 8 s, less up to a quarter at random", function()
    for n, full in ipairs({ 0.5, 1, 2, 4, 8, 8, 8 }) do
      for _ = 1, 50 do
        local w = retry.backoff(n - 1)
        assert.is_true(w <= full and w >= 0.75 * full, "retry " .. n .. " waits " .. w)
      end
    end
  end)

  it("reads retry-after-ms first, then retry-after in seconds or as an HTTP date", function()
    local function from(h) return function(name) return h[name] end end
    assert.equal(0.25, retry.retry_after(from{ ["retry-after-ms"] = "250", ["retry-after"] = "9" }))
    assert.equal(9, retry.retry_after(from{ ["retry-after"] = "9" }))
    assert.equal(1.5, retry.retry_after(from{ ["retry-after"] = " 1.5 " }))
    assert.equal(9, retry.retry_after(from{ ["retry-after-ms"] = "soon", ["retry-after"] = "9" }))
    for _, bad in ipairs({ "inf", "NaN", "nan", "-1", "0x10", "1e3", "", "Tue, 99 Foo 2026 00:00:00 GMT",
                           "Wed, 21 Oct 2015 07:28:00 PST" }) do
      assert.is_nil(retry.retry_after(from{ ["retry-after"] = bad }), bad)
    end
    assert.is_nil(retry.retry_after(from{}))
    -- a date: seconds from now, by the epoch given (no time zone involved)
    assert.equal(784111777, retry.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equal(951782400, retry.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
    assert.equal(30, retry.retry_after(from{ ["retry-after"] = "Sun, 06 Nov 1994 08:50:07 GMT" }, 784111777))
    assert.equal(-10, retry.retry_after(from{ ["retry-after"] = "Sun, 06 Nov 1994 08:49:27 GMT" }, 784111777))
  end)

  it("retries connection errors, timeouts, resets, 408, 409, 429 and 5xx; nothing else", function()
    local function e(kind, fields) return errors.new(kind, "x", fields) end
    local yes = { e("connect"), e("timeout"), e("protocol", { transport = true }),
                  e("http", { status = 408 }), e("http", { status = 409 }), e("http", { status = 429 }),
                  e("http", { status = 500 }), e("http", { status = 529 }), e("http", { status = 400, should_retry = true }) }
    for _, err in ipairs(yes) do
      assert.is_number(retry.decide(err, 0, 60), tostring(err))
    end
    local no = { e("http", { status = 400 }), e("http", { status = 401 }), e("http", { status = 404 }),
                 e("protocol"), e("protocol", { transport = true, limit = true }), e("tls"), e("cancelled"),
                 e("callback"), e("refusal"), e("http", { status = 503, should_retry = false }),
                 e("cancelled", { should_retry = true }), e("http", { status = 429, retry_after = 61 }) }
    for _, err in ipairs(no) do
      assert.is_nil(retry.decide(err, 0, 60), tostring(err))
    end
    assert.equal(3, retry.decide(e("http", { status = 429, retry_after = 3 }), 0, 60))
    assert.equal(0, retry.decide(e("http", { status = 429, retry_after = 0 }), 0, 60))
    -- a wait in the past, or unreadable, is the backoff's
    local w = retry.decide(e("http", { status = 429, retry_after = -5 }), 0, 60)
    assert.is_true(w > 0 and w <= 0.5)
    w = retry.decide(e("http", { status = 429, retry_after = "soon" }), 0, 60)
    assert.is_true(w > 0 and w <= 0.5)
  end)
end)

describe("client calls that are retried", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(extra)
    local o = { base_url = server.url, api_key = KEY, model = "m" }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  local function err_reply(status, headers)
    return { status = status, headers = headers, body = { error = { message = "status " .. status, type = "t" } } }
  end

  it("checks max_retries and max_retry_after", function()
    assert.equal(2, client().max_retries)
    assert.equal(60, client().max_retry_after)
    for _, bad in ipairs({ -1, 1.5, 101, 0 / 0 }) do
      assert.has_error(function() client{ max_retries = bad } end,
        "owl.client: option 'max_retries' must be an integer from 0 to 100, got " .. tostring(bad))
      assert.has_error(function() client():chat{ messages = MSG, max_retries = bad } end,
        "owl.client: chat: option 'max_retries' must be an integer from 0 to 100, got " .. tostring(bad))
    end
    assert.has_error(function() client{ max_retries = "2" } end,
      "owl.client: option 'max_retries' must be a number, got string")
    assert.has_error(function() client{ max_retry_after = -1 } end,
      "owl.client: option 'max_retry_after' must be a number of seconds from 0 to 1000000000, got -1")
    assert.has_error(function() owl.run(client(), "p", { max_retries = -1 }) end,
      "owl.run: option 'max_retries' must be an integer from 0 to 100, got -1")
  end)

  it("waits retry-after-ms: 250 after a 429, then succeeds on the second attempt", function()
    server:script{ err_reply(429, { ["retry-after-ms"] = "250", ["retry-after"] = "30" }) }
    local started = core.now()
    local res = assert(client():chat{ messages = MSG })
    local took = core.now() - started
    assert.equal(2, res.attempts)
    assert.equal(2, server:stats().total)
    assert.is_true(took >= 0.25, "waited only " .. took .. " s")
    assert.is_true(took < 5, "waited " .. took .. " s: retry-after-ms wins over retry-after")
  end)

  it("makes exactly 3 attempts for three 503s with max_retries = 2, and returns the last error", function()
    server:script{ err_reply(503), err_reply(503), err_reply(503), {} }
    local res, err = client():chat{ messages = MSG }
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.equal(3, server:stats().total)
  end)

  it("takes max_retries per call over the client's", function()
    server:script{ err_reply(500), err_reply(500), {} }
    local _, err = client{ max_retries = 5 }:chat{ messages = MSG, max_retries = 1 }
    assert.equal(2, err.attempts)
    assert.equal(2, server:stats().total)
    -- owl's own field never reaches the server
    assert.is_nil(mock.json_decode(server:requests()[1].body).max_retries)
    server:reset()
    server:script{ err_reply(500) }
    local res = assert(client{ max_retries = 0 }:chat{ messages = MSG, max_retries = 1 })
    assert.equal(2, res.attempts)
  end)

  for _, status in ipairs({ 408, 409, 500, 502, 503, 529 }) do
    it("retries a " .. status, function()
      server:script{ err_reply(status) }
      local res = assert(client():chat{ messages = MSG })
      assert.equal(2, res.attempts)
    end)
  end

  it("does not retry a 401, and keeps the key out of its error", function()
    server:script{ err_reply(401), {} }
    local _, err = client():chat{ messages = MSG }
    assert.equal(401, err.status)
    assert.equal(1, err.attempts)
    assert.equal(1, server:stats().total)
    assert.is_nil(tostring(err):find(KEY, 1, true))
  end)

  it("does not wait a retry-after of 121 s (over max_retry_after): the error carries it", function()
    server:script{ err_reply(429, { ["retry-after"] = "121" }), {} }
    local started = core.now()
    local _, err = client():chat{ messages = MSG }
    assert.equal(429, err.status)
    assert.equal(121, err.retry_after)
    assert.equal(1, err.attempts)
    assert.is_true(core.now() - started < 2)
  end)

  for _, bad in ipairs({ "inf", "NaN", "Someday, 99 Foo 2026 GMT" }) do
    it("falls back to the backoff on a retry-after of '" .. bad .. "'", function()
      server:script{ err_reply(429, { ["retry-after"] = bad }) }
      local started = core.now()
      local res = assert(client():chat{ messages = MSG })
      assert.equal(2, res.attempts)
      local took = core.now() - started
      assert.is_true(took >= 0.35 and took < 3, "waited " .. took .. " s")
    end)
  end

  it("lets x-should-retry override the status, both ways", function()
    server:script{ err_reply(503, { ["x-should-retry"] = "false" }), {} }
    local _, err = client():chat{ messages = MSG }
    assert.equal(1, err.attempts)
    assert.is_false(err.should_retry)
    server:reset()
    server:script{ err_reply(400, { ["x-should-retry"] = "true" }) }
    local res = assert(client():chat{ messages = MSG })
    assert.equal(2, res.attempts)
  end)

  it("retries a connection refused, three attempts in all", function()
    local c = owl.client{ base_url = "http://127.0.0.1:1/v1", api_key = KEY, model = "m", max_retries = 2 }
    local _, err = c:chat{ messages = MSG }
    assert.equal("connect", err.kind)
    assert.equal(3, err.attempts)
  end)

  it("retries a reset before the response headers", function()
    server:script{ { fault = "reset_early" } }
    -- a loop of its own: on a kept-alive connection libcurl itself makes
    -- the request again once, unseen, when the reset comes before any byte
    local loop = core.loop()
    local res = assert(client{ loop = loop }:chat{ messages = MSG })
    loop:close()
    assert.equal(2, res.attempts)
    assert.equal(2, server:stats().total)
  end)

  it("retries a body truncated short of its content-length, not a whole one that is not JSON", function()
    server:script{ { fault = "truncate" } }
    assert.equal(2, assert(client():chat{ messages = MSG }).attempts)
    server:reset()
    server:script{ { fault = "malformed" }, {} }
    local _, err = client():chat{ messages = MSG }
    assert.equal("protocol", err.kind)
    assert.equal(1, err.attempts)
  end)

  it("does not retry a response over max_response_bytes (owl's own limit)", function()
    server:script{ { body = { pad = string.rep("x", 5000) } }, {} }
    local _, err = client{ max_response_bytes = 1000 }:chat{ messages = MSG }
    assert.equal("protocol", err.kind)
    assert.is_true(err.limit)
    assert.equal(1, err.attempts)
  end)

  it("does not retry a stream that failed after its first delta: the error carries the text", function()
    server:script{ { fault = "reset" } }
    local seen = {}
    local _, err = client():chat{ messages = { { role = "user", content = "a fairly long answer to stream" } },
      stream = true, on_delta = function(d) seen[#seen + 1] = d.text end }
    assert.is_not_nil(err)
    assert.is_true(#seen > 0)
    assert.equal(table.concat(seen), err.partial_text)
    assert.equal(1, err.attempts)
    assert.equal(1, server:stats().total)
  end)

  it("retries a stream refused before it began", function()
    server:script{ err_reply(503) }
    local res = assert(client():chat{ messages = MSG, stream = true, on_delta = function() end })
    assert.equal(2, res.attempts)
  end)

  it("waits in owl.sleep: other tasks run meanwhile, and cancelling the task ends the wait at once", function()
    server:script{ err_reply(429, { ["retry-after"] = "30" }) }
    local ticks = 0
    local caller = owl.spawn(function() return client():chat{ messages = MSG } end)
    local ticker = owl.spawn(function()
      for _ = 1, 5 do owl.sleep(0.05); ticks = ticks + 1 end
      caller:cancel()
    end)
    local started = core.now()
    local res, err = caller:wait()
    assert.is_nil(select(2, ticker:wait()))
    assert.is_nil(res)
    assert.equal("cancelled", err.kind)
    assert.equal(5, ticks)
    assert.is_true(core.now() - started < 5, "the cancelled wait took " .. (core.now() - started) .. " s")
    assert.equal(1, server:stats().total)
  end)

  it("owl.run passes max_retries to every call", function()
    server:script{ {}, err_reply(500), err_reply(500) }
    local result, err = owl.run(client{ headers = { ["x-mock-subtasks"] = "1" } }, "p", { max_retries = 1 })
    assert.is_nil(result)
    assert.equal("worker", err.kind)
    assert.equal(2, err.cause.attempts)
    server:reset()
    server:script{ {}, err_reply(500), err_reply(500) }
    result = assert(owl.run(client{ headers = { ["x-mock-subtasks"] = "1" } }, "p"))
    assert.equal(1, #result.outputs)
  end)

  it("keeps the key out of an error that ran out of retries", function()
    local echo = { status = 503, headers = { ["retry-after-ms"] = "10" },
                   body = { error = { message = "down " .. KEY, type = "t " .. KEY } } }
    server:script{ echo, echo, echo }
    local _, err = client():chat{ messages = MSG }
    assert.equal(3, err.attempts)
    assert.is_nil(tostring(err):find(KEY, 1, true))
    assert.is_nil(err.provider_type:find(KEY, 1, true))
  end)
end)
