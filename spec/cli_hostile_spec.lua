-- spec/cli_hostile_spec.lua: regression specs for what a hostile review of
-- bin/owl found. Each runs bin/owl as a process, under the Lua running the
-- specs, against the mock on 127.0.0.1, and checks what reaches the
-- terminal: no API key from an echoing server, no raw control character from
-- a plan or an error, an end to a silent server, a bound on stdin.
local mock = require("support.mock")
local socket = require("socket")

local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local KEY = "sk-hostile-SECRET-1234567890"
-- Both halves of the key: a leak cut at a field limit still shows one.
local KEY_PARTS = { KEY, "sk-hostile-SECRET", "SECRET-1234567890" }
local LIMIT = 1024 * 1024 -- the stdin cap bin/owl documents (1 MiB)

local q = mock.shell_quote

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- owl(args [, o]) -> { out, err, code, elapsed }: bin/owl run with args.
--   o.env    extra environment, { NAME = value }
--   o.stdin  a shell command whose output is bin/owl's stdin (else /dev/null)
--   o.limit  seconds before `timeout` kills it (60): a regression that hangs
--            fails the spec (exit 124) instead of hanging the suite
-- Inherited OWL_* and OPENAI_* settings are dropped; the key is KEY and the
-- endpoint comes from OPENAI_BASE_URL, as a user would set them. stdout and
-- stderr go to files, so their bytes are exactly what bin/owl wrote (and
-- stdout is not a terminal).
local function owl(args, o)
  o = o or {}
  local out_file, err_file = os.tmpname(), os.tmpname()
  local env = { "env", "-u", "OWL_TIMEOUT", "-u", "OWL_MODEL", "-u", "OPENAI_BASE_URL",
                "OPENAI_API_KEY=" .. q(KEY) }
  for name, value in pairs(o.env or {}) do env[#env + 1] = name .. "=" .. q(value) end
  local cmd = "timeout " .. (o.limit or 60) .. " " .. table.concat(env, " ") .. " " .. LUA .. " bin/owl"
  for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
  cmd = cmd .. " >" .. q(out_file) .. " 2>" .. q(err_file)
  if o.stdin then
    -- the writer's own complaints (a broken pipe once owl stops reading) are not owl's
    cmd = "{ " .. o.stdin .. "\n} 2>/dev/null | " .. cmd
  else
    cmd = cmd .. " </dev/null"
  end
  local started = socket.gettime()
  local p = assert(io.popen("unset LD_PRELOAD; " .. cmd .. "; echo \"exit=$?\"", "r"))
  local status = p:read("*a")
  p:close()
  local r = { elapsed = socket.gettime() - started, code = tonumber(status:match("exit=(%d+)")) }
  r.out, r.err = slurp(out_file), slurp(err_file)
  os.remove(out_file)
  os.remove(err_file)
  return r
end

local function has(s, needle) return s:find(needle, 1, true) ~= nil end

local function assert_no_key(r, secrets)
  local all = r.out .. r.err
  for _, secret in ipairs(secrets or KEY_PARTS) do
    assert.is_false(has(all, secret), "'" .. secret .. "' leaked into:\n" .. all)
  end
end

-- Bytes a terminal acts on: ESC, BEL, CR, and CSI as UTF-8 (U+009B).
local RAW = { ["ESC"] = "\27", ["BEL"] = "\7", ["CR"] = "\r", ["U+009B"] = "\194\155" }

local function assert_no_raw_controls(s)
  for name, byte in pairs(RAW) do
    assert.is_false(has(s, byte), "a raw " .. name .. " reached the terminal:\n" .. s)
  end
end

-- A chat completion whose message content is text.
local function completion(content)
  return { body = { id = "chatcmpl-hostile", object = "chat.completion", model = "m", choices = { {
    index = 0, finish_reason = "stop", message = { role = "assistant", content = content } } } } }
end

-- An error object with the key in every field a server may fill.
local function keyed_error(key)
  return { message = "bad key " .. key, type = key, code = key, param = key }
end

local function keyed_reply(status, key)
  return { status = status, body = { error = keyed_error(key) },
           headers = { ["x-request-id"] = key, ["retry-after"] = key } }
end

describe("bin/owl against a hostile server", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function run(args, o)
    o = o or {}
    o.env = o.env or {}
    o.env.OPENAI_BASE_URL = server.url
    return owl(args, o)
  end

  -- The request the server saw carried the secret: it was there to leak.
  local function assert_sent(header, value)
    local seen = server:requests()[1].headers[header]
    assert.truthy(seen and has(seen, value), header .. " was not sent: " .. tostring(seen))
  end

  describe("regression: the API key echoed back by the server reached the terminal", function()
    -- stdout after a failure: nothing, or with --json what finished (here
    -- nothing past the plan call) and the error, redacted like stderr
    local function assert_failure_out(r, flags, status)
      if #flags == 0 then
        assert.equal("", r.out)
        return
      end
      local got = assert(mock.json_decode(r.out), r.out)
      assert.equal(status, got.error.status)
      assert.truthy(has(got.error.message, "bad key [redacted]"), got.error.message)
      assert.equal(1, got.usage.total.calls)
    end

    for _, flags in ipairs({ {}, { "--json" } }) do
      local label = #flags == 0 and "" or " with --json"

      it("regression: a 400 with the key in message, type, code, param, x-request-id, retry-after" .. label, function()
        server:script{ keyed_reply(400, KEY) }
        local args = { "run" }
        for _, f in ipairs(flags) do args[#args + 1] = f end
        args[#args + 1] = "p"
        local r = run(args)
        assert.equal(1, r.code, r.err)
        assert_sent("authorization", KEY)
        assert_no_key(r)
        assert_failure_out(r, flags, 400)
        assert.truthy(has(r.err, "400"), r.err)
        assert.truthy(has(r.err, "bad key"), r.err)
      end)

      it("regression: a 200 with an error object in place of choices, keyed the same way" .. label, function()
        server:script{ keyed_reply(200, KEY) }
        local args = { "run" }
        for _, f in ipairs(flags) do args[#args + 1] = f end
        args[#args + 1] = "p"
        local r = run(args)
        assert.equal(1, r.code, r.err)
        assert_sent("authorization", KEY)
        assert_no_key(r)
        assert_failure_out(r, flags, 200)
        assert.truthy(has(r.err, "bad key"), r.err)
        assert.truthy(has(r.err, "choices"), r.err)
      end)
    end

    it("regression: a worker's keyed error, on its progress line and in the final error", function()
      -- the plan, then the one worker gets the keyed 400
      server:script{ {}, keyed_reply(400, KEY) }
      local r = run({ "run", "--header", "x-mock-subtasks: 1", "p" })
      assert.equal(1, r.code, r.err)
      assert.equal(2, server:stats().total)
      assert_no_key(r)
      assert.truthy(has(r.err, "part_1 failed"), r.err)
      assert.truthy(has(r.err, "bad key"), r.err)
    end)

    it("regression: a credential passed with --header, echoed in the error", function()
      local token, api_key = "tok-hostile-HEADER-0987654321", "xk-hostile-APIKEY-5555"
      server:script{ { status = 403, body = { error = {
        message = "denied for " .. token .. " and " .. api_key, type = token, code = api_key, param = token } },
        headers = { ["x-request-id"] = api_key, ["retry-after"] = token } } }
      local r = run({ "run", "--header", "Authorization: Bearer " .. token, "--header", "X-Api-Key: " .. api_key, "p" })
      assert.equal(1, r.code, r.err)
      assert_sent("authorization", token)
      assert_sent("x-api-key", api_key)
      assert_no_key(r, { token, api_key, "HEADER-0987654321", "APIKEY-5555" })
      assert.truthy(has(r.err, "403"), r.err)
      assert.truthy(has(r.err, "denied for"), r.err)
    end)
  end)

  describe("regression: escape sequences from a plan or a server reached the terminal raw", function()
    local plan = {
      objective = "build \27]0;pwned\7 a thing \27[2J then\r over",
      subtasks = {
        { name = "a\27[2Jb\r", description = "the first part" },
        { name = "c\27]0;pwned\7d\194\155", description = "the second part \27[2J" },
      },
    }
    local plan_reply = completion(mock.json_encode(plan))

    it("regression: plan objective and subtask names are shown escaped; stdout keeps the answer as sent", function()
      local final = "final \27[31mred\27[0m\r\nline two\n"
      server:script{ plan_reply, {}, {}, completion(final) }
      local r = run({ "run", "p" })
      assert.equal(0, r.code, r.err)
      assert.equal(4, server:stats().total)
      assert_no_raw_controls(r.err)
      -- the text is still there for a person to read, with each control shown as an escape
      assert.truthy(has(r.err, "build \\x1b]0;pwned\\x07 a thing \\x1b[2J then"), r.err)
      assert.truthy(has(r.err, "a\\x1b[2Jb"), r.err)
      assert.truthy(has(r.err, "c\\x1b]0;pwned\\x07d"), r.err)
      -- stdout is a file here, not a terminal: the answer goes out byte for byte
      assert.equal(final, r.out)
    end)

    it("regression: a server error message and fields with escape sequences", function()
      server:script{ { status = 400, body = { error = {
        message = "boom \27]0;pwned\7\27[2J\r\n\194\155" .. "31m end", type = "t\27[2J", code = "c\7", param = "p\r" } } } }
      local r = run({ "run", "p" })
      assert.equal(1, r.code, r.err)
      assert_no_raw_controls(r.err)
      assert.truthy(has(r.err, "boom \\x1b]0;pwned\\x07\\x1b[2J"), r.err)
      assert.truthy(has(r.err, "31m end"), r.err)
      assert.truthy(has(r.err, "t\\x1b[2J"), r.err)
    end)

    it("regression: a failed worker's line and the final error name an escaped subtask", function()
      server:script{ plan_reply, { status = 500, body = { error = { message = "down \27[2J\27]0;pwned\7" } } }, {} }
      -- --max-retries 0: this pins what is shown of a failure, not retries
      local r = run({ "run", "--max-workers", "1", "--max-retries", "0", "p" })
      assert.equal(1, r.code, r.err)
      assert.equal(3, server:stats().total)
      assert_no_raw_controls(r.err)
      assert.truthy(has(r.err, "a\\x1b[2Jb"), r.err)
      assert.truthy(has(r.err, "down \\x1b[2J\\x1b]0;pwned\\x07"), r.err)
    end)

    it("regression: usage errors quote arguments and OWL_TIMEOUT escaped", function()
      for _, args in ipairs({ { "run", "--bogus\27]0;pwned\7", "p" }, { "run", "--header", "\27[2J", "p" },
                              { "fly\27[2J\r" } }) do
        local r = run(args)
        assert.equal(2, r.code, r.err)
        assert_no_raw_controls(r.err)
        assert.truthy(has(r.err, "\\x1b"), r.err)
      end
      local r = run({ "run", "p" }, { env = { OWL_TIMEOUT = "\27]0;pwned\7" } })
      assert.equal(2, r.code, r.err)
      assert_no_raw_controls(r.err)
      assert.truthy(has(r.err, "OWL_TIMEOUT"), r.err)
      assert.truthy(has(r.err, "\\x1b]0;pwned"), r.err)
      assert.equal(0, server:stats().total)
    end)
  end)

  describe("regression: a silent server held bin/owl for the default 600 s", function()
    local function assert_timed_out(r)
      assert.equal(1, r.code, r.err)
      assert.truthy(r.elapsed < 15, "took " .. r.elapsed .. " s")
      -- it waited for the timeout, not failed at once for some other reason
      assert.truthy(r.elapsed >= 1.5, "took only " .. r.elapsed .. " s: " .. r.err)
      local e = r.err:lower()
      assert.truthy(has(e, "timeout") or has(e, "timed out"), r.err)
      assert.equal(1, server:stats().total)
    end

    it("regression: --timeout 2 ends a hang, and wins over OWL_TIMEOUT", function()
      server:script{ { fault = "hang" } }
      assert_timed_out(run({ "run", "--timeout", "2", "--max-retries", "0", "p" }, { env = { OWL_TIMEOUT = "600" } }))
    end)

    it("regression: OWL_TIMEOUT=2 ends a hang", function()
      server:script{ { fault = "hang" } }
      assert_timed_out(run({ "run", "--max-retries", "0", "p" }, { env = { OWL_TIMEOUT = "2" } }))
    end)

    it("regression: a --timeout that is not a positive, bounded number is a usage error", function()
      for _, v in ipairs({ "0", "-1", "abc", "1e12", "99999999999", "nan", "inf", "0x10", "2s", "" }) do
        for _, args in ipairs({ { "run", "--timeout", v, "p" }, { "run", "--timeout=" .. v, "p" } }) do
          local r = run(args)
          assert.equal(2, r.code, table.concat(args, " ") .. ": " .. r.err)
          assert.truthy(has(r.err, "--timeout"), r.err)
        end
      end
      assert.equal(0, server:stats().total)
    end)

    it("regression: an OWL_TIMEOUT that is not a positive, bounded number is a usage error", function()
      for _, v in ipairs({ "0", "-1", "abc", "1e12", "nan" }) do
        local r = run({ "run", "p" }, { env = { OWL_TIMEOUT = v } })
        assert.equal(2, r.code, v .. ": " .. r.err)
        assert.truthy(has(r.err, "OWL_TIMEOUT"), r.err)
      end
      assert.equal(0, server:stats().total)
    end)
  end)

  describe("regression: stdin was read whole and sent as it came", function()
    local function a_bytes(n) return "head -c " .. n .. " /dev/zero | tr '\\0' a" end

    local function assert_too_large(r)
      assert.equal(2, r.code, r.err)
      assert.truthy(has(r.err, "problem"), r.err)
      assert.truthy(has(r.err, tostring(LIMIT)), r.err)
      assert.equal("", r.out)
      assert.equal(0, server:stats().total)
    end

    it("regression: 2 MiB on stdin is refused, naming the limit, before any request", function()
      assert_too_large(run({ "run", "-" }, { stdin = a_bytes(2 * LIMIT) }))
    end)

    it("regression: one byte past the limit is refused; the limit itself is sent whole", function()
      assert_too_large(run({ "run", "-" }, { stdin = a_bytes(LIMIT + 1) }))
      server:script{ { status = 400, body = { error = { message = "enough" } } } }
      local r = run({ "run", "-" }, { stdin = a_bytes(LIMIT) })
      assert.equal(1, r.code, r.err)
      assert.truthy(has(r.err, "enough"), r.err)
      assert.equal(1, server:stats().total)
      assert.truthy(server:requests()[1].body_bytes > LIMIT)
    end)

    it("regression: stdin that never ends is refused at the limit, not read to its end", function()
      -- after 2 MiB the writer trickles on until bin/owl closes the pipe
      local r = run({ "run", "-" }, { stdin = a_bytes(2 * LIMIT) .. "; while printf a; do sleep 0.1; done",
                                      limit = 30 })
      assert_too_large(r)
      assert.truthy(r.elapsed < 15, "took " .. r.elapsed .. " s")
    end)

    it("regression: the newline ending a problem on stdin is not sent; newlines inside it are", function()
      for input, want in pairs({ ["sort a list\n"] = "sort a list", ["sort a list\r\n"] = "sort a list",
                                 ["line one\nline two\n"] = "line one\nline two" }) do
        server:reset()
        server:script{ { status = 400, body = { error = { message = "seen" } } } }
        local r = run({ "run", "-" }, { stdin = "printf '%s' " .. q(input) })
        assert.equal(1, r.code, r.err)
        local sent = mock.json_decode(server:requests()[1].body)
        assert.equal(want, sent.messages[#sent.messages].content)
      end
    end)

    it("regression: a header with a line break is refused with its message, not a Lua source position", function()
      local r = run({ "run", "--header", "X-A: b\r\nX-Injected: 1", "p" })
      assert.equal(1, r.code, r.err)
      assert.matches("^owl: owl%.providers%.openai: header value holds a line break", r.err)
      assert.is_nil(r.err:find("%.lua:%d+:"), r.err)
      assert.equal(0, server:stats().total)
    end)

    it("regression: stdin that is not UTF-8 is refused with a message, before any request", function()
      local r = run({ "run", "-" }, { stdin = "printf '\\377\\376abc'" })
      assert.equal(2, r.code, r.err)
      assert.equal("owl: the problem is not valid UTF-8 (byte 1)\n", r.err)
      assert.is_false(has(r.err, "\255"), r.err)
      assert.equal("", r.out)
      assert.equal(0, server:stats().total)
    end)
  end)
end)
