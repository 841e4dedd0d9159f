-- spec/hostile_review_spec.lua: regressions for what the hostile review of
-- the landed core found ("owl 2 of 6"), each named after the bug it pins,
-- over real HTTP against the mock on every Lua. The C-level ones (casts,
-- JSON depth and UTF-8, header cap, budget) are in core_hardening_spec and
-- core_limits_spec; the CLI's are in cli_hostile_spec.
local owl = require("owl")
local core = require("owl.core")
local errors = require("owl.errors")
local text = require("owl.text")
local mock = require("support.mock")

-- work(f, s): f's work on s in linear passes over s
local work = require("support.work")

describe("regression: text handling of untrusted input was quadratic", function()
  -- an unterminated fence whose last line is a long run of spaces, then a
  -- non-space: each space started a new scan to the end of the line
  local function fence(n) return "```lua\nlocal x = 1\n" .. string.rep(" ", n) .. "x" end

  it("text.strip_fences does linear work on an unterminated fence ending in a run of spaces", function()
    for _, n in ipairs({ 16000, 128000 }) do
      local w = work(text.strip_fences, fence(n))
      assert.is_true(w < 40, n .. " spaces cost " .. w .. " linear passes")
    end
    assert.equal("local x = 1\n" .. string.rep(" ", 10) .. "x\n", text.strip_fences(fence(10)))
  end)

  it("tostring(err) does linear work on runs of spaces and newlines", function()
    local saved = errors.MAX_MESSAGE
    errors.MAX_MESSAGE = 1e9 -- past the cap, to measure the one-line form itself
    finally(function() errors.MAX_MESSAGE = saved end)
    for _, n in ipairs({ 16000, 128000 }) do
      local msg = "bad " .. string.rep(" ", n) .. "\n" .. string.rep(" \n", n) .. "end"
      local e = errors.new("http", msg, { provider_type = string.rep(" ", n) .. "t" })
      local w = work(function() return tostring(e) end, msg)
      assert.is_true(w < 40, n .. " spaces cost " .. w .. " linear passes")
    end
    local line = tostring(errors.new("http", "a  \n\n  b"))
    assert.equal("owl: http error: a b", line)
  end)

  it("caps an error's message and fields when it is built, so printing a 300 KB one is cheap", function()
    local e = errors.new("http", string.rep(" ", 300000) .. "x", { provider_code = string.rep("c", 300000) })
    assert.is_true(#e.message <= errors.MAX_MESSAGE + 40)
    assert.matches("%(%d+ more bytes%)$", e.message)
    assert.is_true(#e.provider_code <= errors.MAX_FIELD + 40)
    assert.is_true(#tostring(e) <= errors.MAX_MESSAGE + errors.MAX_FIELD + 200)
  end)
end)

-- ------------------------------------------------------------------ keys

local KEY = "sk-hostile-KEY-0123456789abcdef"
local SECRETS = {
  KEY,
  "azure-api-key-value-42",   -- api-key
  "anthropic-x-api-key-777",  -- x-api-key
  "gateway-bearer-token-9",   -- X-Gateway-Token: Bearer ...
  "shh-custom-secret-5",      -- X-Custom-Secret
}

-- Every string reachable from v (fields, causes, partial results, events).
local function strings_of(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      strings_of(k, out, seen)
      strings_of(x, out, seen)
    end
  end
  return out
end

local function assert_no_secret(where, ...)
  local all = strings_of({ ... })
  for _, v in ipairs({ ... }) do
    if errors.is(v) then all[#all + 1] = tostring(v) end
  end
  for _, s in ipairs(all) do
    for _, secret in ipairs(SECRETS) do
      assert.is_nil(s:find(secret, 1, true), where .. " leaks " .. secret .. " in: " .. s:sub(1, 300))
    end
  end
  return all
end

describe("regression: keys leaked through every error field but the message", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(extra)
    -- max_retries = 0: these specs read one failure; spec/retry_spec.lua retries
    local o = {
      base_url = server.url, api_key = KEY, model = "m", max_retries = 0,
      headers = {
        ["api-key"] = SECRETS[2], ["x-api-key"] = SECRETS[3],
        ["X-Gateway-Token"] = "Bearer " .. SECRETS[4], ["X-Custom-Secret"] = SECRETS[5],
        ["X-Trace"] = "not-secret-trace",
      },
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  -- The server echoes every credential it was sent into every field it has.
  local function echo(status)
    local all = table.concat(SECRETS, " ")
    return {
      status = status,
      headers = { ["x-request-id"] = "req-" .. KEY, ["retry-after"] = SECRETS[4] },
      body = { error = { message = "bad key " .. all, type = "type " .. SECRETS[2],
                         code = "code " .. SECRETS[3], param = "param Bearer " .. SECRETS[4] .. " " .. SECRETS[5] } },
    }
  end

  for _, status in ipairs({ 400, 429, 200 }) do
    it("redacts type, code, param, x-request-id and retry-after of a " .. status .. " error", function()
      server:script{ echo(status) }
      local res, err = client():chat{ messages = { { role = "user", content = "hi" } } }
      assert.is_nil(res)
      assert_no_secret("the error", err)
      -- the fields are still there, only the secrets are gone
      assert.equal("type [redacted]", err.provider_type)
      assert.equal("code [redacted]", err.provider_code)
      -- "Bearer <token>" was the header's whole value: removed whole
      assert.equal("param [redacted] [redacted]", err.param)
      assert.equal("req-[redacted]", err.request_id)
      assert.matches("bad key %[redacted%]", err.message)
      assert.matches("type %[redacted%], code %[redacted%], param", tostring(err))
      -- and the request itself did carry them: the mock saw the headers
      local sent = server:requests()[1].headers
      assert.equal(SECRETS[2], sent["api-key"])
      assert.equal("Bearer " .. SECRETS[4], sent["x-gateway-token"])
    end)
  end

  it("keeps the key out of owl.run's error, its partial result and every event", function()
    server:script{ {}, echo(500), {} }
    local events = {}
    local result, err = owl.run(client{ headers = {
      ["x-mock-subtasks"] = "2", ["api-key"] = SECRETS[2], ["x-api-key"] = SECRETS[3],
      ["X-Gateway-Token"] = "Bearer " .. SECRETS[4], ["X-Custom-Secret"] = SECRETS[5],
    } }, "problem", { on_event = function(name, ev) events[#events + 1] = { name, ev } end })
    assert.is_nil(result)
    assert.equal("worker", err.kind)
    assert.equal(1, #err.errors)
    assert_no_secret("owl.run", err, events)
    assert.matches("%[redacted%]", tostring(err))
  end)

  it("redacts model text that an owl.run error quotes (a refusal echoing the key)", function()
    server:script{ { body = { choices = { { index = 0, finish_reason = "stop",
      message = { role = "assistant", refusal = "I will not use " .. KEY } } } } } }
    local result, err = owl.run(client(), "problem")
    assert.is_nil(result)
    assert.equal("refusal", err.kind)
    assert.equal("the orchestrator refused: I will not use [redacted]", err.message)
    assert_no_secret("the refusal", err)
  end)

  it("names a header as a credential by its name", function()
    for _, name in ipairs({ "Authorization", "api-key", "X-API-Key", "x-goog-api-key", "X-Gateway-Token",
                            "X-Custom-Secret", "Proxy-Authorization", "Cookie" }) do
      assert.is_true(errors.is_credential_header(name), name)
    end
    for _, name in ipairs({ "Content-Type", "X-Trace", "OpenAI-Organization", "User-Agent" }) do
      assert.is_false(errors.is_credential_header(name), name)
    end
    -- longest first: a secret holding another is removed whole
    assert.same({ "Bearer tok-longer", "tok-longer", "k" },
      errors.credentials("k", { Authorization = "Bearer tok-longer", ["X-Trace"] = "t" }))
  end)
end)

-- ------------------------------------------------------------------ driver

describe("regression: the driver", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function ask(c, content)
    return c:chat{ messages = { { role = "user", content = content } } }
  end

  it("forgets a loop closed under a waiting task: its wait is cancelled, later runs work", function()
    local loop = core.loop()
    local slow = owl.client{ base_url = server.url, api_key = "k", model = "m", loop = loop,
                             headers = { ["x-mock-latency-ms"] = "3000" } }
    local t = owl.spawn(function() return ask(slow, "slow") end)
    assert.is_false(t:done())
    loop:close()
    -- another run, on another loop, in the same process
    local fast = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    local result, err = owl.run(fast, "problem", {})
    assert.is_nil(err)
    assert.equal(3, #result.outputs)
    local res, cerr = t:wait()
    assert.is_nil(res)
    assert.equal("cancelled", cerr.kind)
    -- a blocking wait for a new task on the default loop works too
    local t2 = owl.spawn(function() return ask(fast, "again") end)
    local r2 = assert(t2:wait())
    assert.matches("again", r2.text)
  end)

  it("replaces a closed default loop with a new one", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    local first = owl.loop()
    first:close()
    assert.are_not.equal(first, owl.loop())
    assert.matches("after close", assert(ask(c, "after close")).text)
  end)

  it("gives an owl error, not a bare yield error, when a task's call cannot yield, and the next call works", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    local t = owl.spawn(function()
      local seen = {}
      -- pcall: a yield crosses it on 5.2+ and LuaJIT, not on 5.1
      local ok, res, err = pcall(c.chat, c, { messages = { { role = "user", content = "in pcall" } } })
      if _VERSION == "Lua 5.1" and type(jit) ~= "table" then
        assert.is_false(ok)
        assert.matches("Use the nil, err returns instead of pcall", res, 1, true)
        assert.matches("^owl: cannot wait for a call here", res)
      else
        assert.is_true(ok, tostring(res))
        assert.is_nil(err)
        assert.matches("in pcall", res.text)
      end
      -- a sort comparator: no Lua can yield across it
      local sok, serr = pcall(table.sort, { 2, 1 }, function(a, b)
        ask(c, "in sort")
        return a < b
      end)
      assert.is_false(sok)
      assert.matches("owl: cannot wait for a call here", serr)
      -- the waits those left behind never wake the next call early
      for i = 1, 3 do
        local r = assert(ask(c, "next " .. i))
        seen[#seen + 1] = r.text:match("next %d")
      end
      return seen
    end)
    local seen, err = t:wait()
    assert.is_nil(err)
    assert.same({ "next 1", "next 2", "next 3" }, seen)
  end)
end)

-- ------------------------------------------------------------------ bounds

describe("regression: unbounded fan-out and memory", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(headers, extra)
    -- max_retries = 0: these specs read one failure; spec/retry_spec.lua retries
    local o = { base_url = server.url, api_key = "k", model = "m", headers = headers, max_retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  it("refuses a plan over max_subtasks (default 100) before any worker starts", function()
    assert.equal(100, require("owl.flow").DEFAULT_MAX_SUBTASKS)
    local result, err = owl.run(client{ ["x-mock-subtasks"] = "150" }, "problem")
    assert.is_nil(result)
    assert.equal("invalid", err.kind)
    assert.equal("the plan has 150 subtasks, more than max_subtasks (100); no worker was started", err.message)
    assert.equal(150, #err.plan.subtasks)
    -- the plan and one more try (max_replans, default 1), no worker
    assert.equal(2, server:stats().total)
    server:reset()
    result, err = owl.run(client{ ["x-mock-subtasks"] = "3" }, "problem", { max_subtasks = 2, max_replans = 0 })
    assert.is_nil(result)
    assert.matches("more than max_subtasks %(2%)", err.message)
    assert.equal(1, server:stats().total)
  end)

  -- Runs a 300-worker flow in a child under ulimit -n 256, with only
  -- stdio inherited and then `fds` opened (bash redirections); returns the
  -- descriptors open below the limit as the child counted them, and the
  -- mock's stats.
  local function child_flow(fds)
    local lua = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
    -- the plain build: under check-mem the child runs without the memory tools
    local build = "build/" .. (type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+"))
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    -- a latency keeps every call of the window in flight at once
    f:write('package.cpath = "', build, '/?.so;" .. package.cpath\n',
      'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path\n',
      'local owl = require("owl")\n',
      'print("limit", require("owl.core").fd_limit())\n',
      'local c = owl.client{ base_url = "', server.url, '", api_key = "sk-child", model = "m",',
      ' headers = { ["x-mock-subtasks"] = "300", ["x-mock-latency-ms"] = "500" } }\n',
      'local r, err = owl.run(c, "problem", { max_subtasks = 300 })\n',
      'print(r and ("ok " .. #r.outputs) or tostring(err))\n')
    f:close()
    -- what this process holds open (the suite's sockets, busted's files)
    -- would otherwise leak into the child and decide the outcome
    local close_inherited = 'for p in /proc/self/fd/*; do n=${p##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; '
    local ok, _, out = mock.run("bash -c " .. mock.shell_quote(close_inherited .. fds
      .. " ulimit -n 256 && exec " .. lua .. " " .. script))
    os.remove(script)
    assert.is_true(ok, out)
    assert.matches("ok 300", out)
    local open = tonumber(out:match("^limit\t256\t(%d+)\n"))
    assert.is_number(open, out)
    return open, server:stats()
  end

  -- at most half of what was left; a few less once the plan's connection
  -- and the loop's own descriptors are open
  local function assert_window(open, stats)
    local window = math.floor((256 - open) / 2)
    assert.equal(302, stats.total)
    assert.is_true(stats.max_in_flight <= window and stats.max_in_flight >= window - 4,
      "max in flight " .. stats.max_in_flight .. ", half of what was left " .. window)
  end

  it("keeps the worker window under half the descriptor limit (300 workers under ulimit -n 256)", function()
    local open, stats = child_flow("")
    assert.is_true(open >= 3 and open <= 6, "open " .. open)
    assert_window(open, stats)
  end)

  it("counts descriptors the process inherited below the limit, and only those", function()
    -- 100 open below the limit (numbers 100-199), 100 above it (300-399)
    local fds = "for n in $(seq 100 199) $(seq 300 399); do eval \"exec $n</dev/null\"; done; "
    local open, stats = child_flow(fds)
    assert.is_true(open >= 103 and open <= 106, "open " .. open)
    assert_window(open, stats)
  end)

  it("validates max_workers and client timeouts before any paid call", function()
    local c = client()
    for _, v in ipairs({ math.huge, 2000000000 * 2^30, 0, -1, 1.5, 0 / 0 }) do
      assert.has_error(function() owl.run(c, "p", { max_workers = v }) end)
    end
    for _, name in ipairs({ "timeout", "connect_timeout", "stall_timeout" }) do
      for _, v in ipairs({ 1e12, math.huge, 0, -5, 0 / 0 }) do
        local ok, err = pcall(owl.client, { base_url = server.url, model = "m", [name] = v })
        assert.is_false(ok)
        assert.matches("option '" .. name .. "' must be a number of seconds", err)
      end
    end
    assert.has_error(function() client(nil, { max_response_bytes = 0 }) end,
      "owl.client: option 'max_response_bytes' must be a positive integer, got 0")
    -- a large but finite max_workers is a cap, not an error
    assert(owl.run(client{ ["x-mock-subtasks"] = "2" }, "p", { max_workers = 2000000000 }))
    assert.equal(4, server:stats().total)
  end)

  it("fails a response over the client's max_response_bytes, naming the limit", function()
    server:script{ { body = { pad = string.rep("x", 5000) } } }
    local res, err = client(nil, { max_response_bytes = 1000 }):chat{ messages = { { role = "user", content = "hi" } } }
    assert.is_nil(res)
    assert.matches("larger than max_response_bytes %(1000 bytes%)", err.message)
    -- an error page over the cap keeps its status: a 500 stays a 500
    server:script{ { status = 500, body = string.rep("x", 5000) } }
    res, err = client(nil, { max_response_bytes = 1000 }):chat{ messages = { { role = "user", content = "hi" } } }
    assert.is_nil(res)
    assert.equal(500, err.status)
    assert.equal("owl: protocol error 500: the response body is larger than max_response_bytes (1000 bytes)", tostring(err))
  end)

  it("fails a run whose responses pass max_total_response_bytes, keeping the output that finished", function()
    local function answer(c)
      return { body = { choices = { { index = 0, finish_reason = "stop",
        message = { role = "assistant", content = string.rep(c, 3000) } } } } }
    end
    -- the plan, then one worker at a time: the first answer fits, the second does not
    server:script{ {}, answer("x"), answer("y") }
    local result, err = owl.run(client{ ["x-mock-subtasks"] = "2" }, "problem",
      { max_total_response_bytes = 5000, max_workers = 1 })
    assert.is_nil(result)
    assert.equal("worker", err.kind)
    assert.equal(1, #err.errors)
    assert.equal("part_2", err.subtask)
    assert.matches("passed their budget of 5000 bytes %(max_total_response_bytes%)", err.errors[1].message)
    assert.equal(string.rep("x", 3000), err.partial.outputs[1])
    assert.equal(2, #err.partial.subtasks)
  end)

  it("quotes a 20 MB error body from its start, without holding it in Lua", function()
    local big = "<html>" .. string.rep("oops ", 4 * 1024 * 1024) .. KEY
    server:script{ { status = 502, headers = { ["content-type"] = "text/html" }, body = big } }
    local size = #big
    big = nil -- luacheck: ignore 311
    collectgarbage("collect")
    local before = collectgarbage("count")
    local res, err = client():chat{ messages = { { role = "user", content = "hi" } } }
    local grew_kb = collectgarbage("count") - before
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(502, err.status)
    assert.matches("^HTTP 502.*<html>oops oops", err.message)
    assert.matches("%(" .. size .. " bytes in all%)", err.message)
    assert.is_true(#err.message < 1000, #err.message .. " bytes of message")
    assert.is_true(grew_kb < 2048, "Lua memory grew by " .. grew_kb .. " KB")
  end)
end)

-- ------------------------------------------------------------------ UTF-8

describe("regression: invalid UTF-8 went out as invalid JSON", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("raises on a problem that is not UTF-8 before any call", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    assert.has_error(function() owl.run(c, "sort these\255\254") end,
      "owl.run: the problem is not valid UTF-8 (byte 11)")
    assert.equal(0, server:stats().total)
  end)

  it("raises on a chat message that is not UTF-8, naming where, before any call", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    local ok, err = pcall(c.chat, c, { messages = { { role = "user", content = "ok" }, { role = "user", content = "a\192b" } } })
    assert.is_false(ok)
    assert.matches("invalid UTF%-8 at byte 2 of the string at %$%.messages%[2%]%.content", err)
    assert.equal(0, server:stats().total)
  end)
end)
