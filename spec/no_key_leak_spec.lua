-- spec/no_key_leak_spec.lua: no API key in anything owl hands back or
-- prints ("owl 5 of 6" §6, last bullet). Distinct fake keys for both
-- providers, in client options and in the environment, go through
-- representative flows against the mock, failures included: a 401, a 429
-- and a 500 that echo the key (in the body and in headers), a 200 whose
-- error object echoes it (past the message cap too), a stream that fails
-- with it. Every string reachable from what owl returns is grepped: each
-- event of on_event, the result, the error and its partial (tables walked
-- deeply, errors printed with tostring too), client:chat's errors, and
-- bin/owl's stdout and stderr with and without --json. Each flow first
-- checks at the mock that the key was really sent, so a flow that never
-- used it cannot pass for one that kept it quiet.
local owl = require("owl")
local errors = require("owl.errors")
local mock = require("support.mock")

local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- The keys: a provider-looking prefix and a tail unique to each. A leak
-- cut at a field limit still shows half of a tail, so the halves are
-- searched as well.
local KEYS = {
  openai_option = "sk-proj-Opt7Qx2mK9vL4nR8tWz3Ha5",
  openai_env = "sk-proj-Env3Jb8pD1sF6gH0kYu4Xc7",
  anthropic_option = "sk-ant-api03-Opt5Nc1wE7rT2yU9iOp6As",
  anthropic_env = "sk-ant-api03-Env8Mz4xC0vB5nM3qWe1Rd",
}

local NEEDLES = {}
for name, key in pairs(KEYS) do
  local tail = key:match("[^-]+$")
  NEEDLES[#NEEDLES + 1] = { name, key }
  NEEDLES[#NEEDLES + 1] = { name .. " (first half)", tail:sub(1, math.floor(#tail / 2)) }
  NEEDLES[#NEEDLES + 1] = { name .. " (second half)", tail:sub(math.floor(#tail / 2) + 1) }
end

-- Journal files to grep with everything else: each flow below runs with a
-- journal (owl.run{journal = FILE}, `bin/owl run --journal FILE`) and
-- grep_files reads every one of them.
local JOURNAL_FILES = {}

-- A fresh journal path for one flow, grepped by grep_files.
local function journal_file()
  local path = os.tmpname()
  os.remove(path) -- owl.run makes it
  JOURNAL_FILES[#JOURNAL_FILES + 1] = path
  return path
end

-- Every string reachable from v: table keys and values, deeply, once per
-- table; an owl error's one-line form too; numbers and booleans as text.
local function strings_of(v, out, seen)
  out, seen = out or {}, seen or {}
  local t = type(v)
  if t == "string" then
    out[#out + 1] = v
  elseif t == "number" or t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" and not seen[v] then
    seen[v] = true
    if errors.is(v) then out[#out + 1] = tostring(v) end
    for k, x in pairs(v) do
      strings_of(k, out, seen)
      strings_of(x, out, seen)
    end
  end
  return out
end

-- Fails naming the key and where it was found.
local function assert_no_key(where, ...)
  local all = {}
  for i = 1, select("#", ...) do strings_of((select(i, ...)), all) end
  for _, s in ipairs(all) do
    for _, needle in ipairs(NEEDLES) do
      if s:find(needle[2], 1, true) then
        error(string.format("%s: the %s key leaked into %q", where, needle[1], #s > 300 and s:sub(1, 300) .. "..." or s), 2)
      end
    end
  end
  return #all
end

local read_file = require("support.files").read_if

-- The journals grepped like the rest, then removed.
local function grep_files(where)
  for _, path in ipairs(JOURNAL_FILES) do
    assert_no_key(where .. ": journal " .. path, assert(read_file(path), "no journal " .. path))
    os.remove(path)
  end
  JOURNAL_FILES = {}
end

-- The key the mock received on its last n requests, from the credential
-- header each provider sends: proves the flow really used that key.
local function assert_sent(server, key, n)
  local seen = 0
  for _, r in ipairs(server:requests(n)) do
    local h = r.headers or {}
    if h.authorization == "Bearer " .. key or h["x-api-key"] == key then seen = seen + 1 end
  end
  assert.is_true(seen > 0, "the mock never received the key " .. key)
end

-- The replies that echo key, for provider ("openai" or "anthropic").
local function error_body(provider, message, key)
  if provider == "anthropic" then
    return { type = "error", error = { type = "authentication_error " .. key, message = message }, request_id = "req_" .. key }
  end
  return { error = { message = message, type = "invalid_request_error " .. key, code = key, param = key } }
end

local function faults(provider, key)
  return {
    ["401 echoing the key"] = { status = 401, headers = { ["x-request-id"] = key, ["request-id"] = key },
      body = error_body(provider, "Incorrect API key provided: " .. key .. ". Find yours at ...", key) },
    ["429 echoing the key, in retry-after too"] = { status = 429, headers = { ["retry-after"] = key },
      body = error_body(provider, "Rate limit reached for " .. key, key) },
    ["500 with an HTML page holding the key"] = { status = 500, headers = { ["content-type"] = "text/html" },
      body = "<html><body>upstream said: Authorization: Bearer " .. key .. "</body></html>" },
    ["200 with an error object echoing the key"] = { status = 200,
      body = error_body(provider, "key " .. key .. " is not allowed", key) },
    ["200 with the key straddling the message cap"] = { status = 200,
      body = error_body(provider, string.rep("x", errors.MAX_MESSAGE - 10) .. key, key) },
  }
end

-- A stream that sends some text, then fails with the key.
local function stream_error(provider, key)
  local body
  if provider == "anthropic" then
    body = 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
      .. '"role":"assistant","model":"m","content":[],"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
      .. 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
      .. 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial "}}\n\n'
      .. 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error ' .. key .. '","message":"failed for '
      .. key .. '"},"request_id":"' .. key .. '"}\n\n'
  else
    body = 'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"partial "}}]}\n\n'
      .. 'data: {"error":{"message":"failed for ' .. key .. '","type":"server_error ' .. key .. '","code":"' .. key .. '"}}\n\n'
  end
  return { status = 200, headers = { ["content-type"] = "text/event-stream" }, body = body }
end

describe("no API key leaks", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  for _, provider in ipairs({ "openai", "anthropic" }) do
    local key = KEYS[provider .. "_option"]
    local function client()
      return owl.client{ provider = provider, base_url = provider == "openai" and server.url or server.base,
                         api_key = key, model = "m", max_retries = 0, timeout = 20 }
    end

    describe(provider .. ", the key in client options", function()
      it("client:chat: no key in any error", function()
        local c = client()
        local f = faults(provider, key)
        for _, name in ipairs(mock.sorted_keys(f)) do
          server:script{ f[name] }
          local res, err = c:chat{ messages = { { role = "user", content = "hi" } } }
          assert.is_nil(res, name)
          assert.is_true(errors.is(err), name)
          assert_sent(server, key, 1)
          assert_no_key("client:chat, " .. name, err)
        end
        server:script{ stream_error(provider, key) }
        local res, err = c:chat{ messages = { { role = "user", content = "hi" } }, stream = true }
        assert.is_nil(res)
        assert.equal("partial ", err.partial_text) -- the failure came after text: it is the stream error
        assert_no_key("client:chat, a stream error", err)
      end)

      -- owl.run with the fault on the plan call, on a worker and on the
      -- aggregator: every event, the result, the error and its partial.
      for _, name in ipairs(mock.sorted_keys(faults(provider, key))) do
        for _, at in ipairs({ 1, 2, 5 }) do
          it("owl.run: " .. name .. " on call " .. at .. " (1 plan, 2-4 workers, 5 aggregator)", function()
            local script = {}
            for i = 1, at - 1 do script[i] = {} end
            script[at] = faults(provider, key)[name]
            server:script(script)
            local events = {}
            local result, err = owl.run(client(), "Write a word counter in Lua.", { max_retries = 0,
              journal = journal_file(), on_event = function(ev, data) events[#events + 1] = { ev, data } end })
            assert.is_nil(result)
            assert.is_true(errors.is(err))
            assert_sent(server, key, at)
            assert.is_true(#events > 0 or at == 1)
            local n = assert_no_key("owl.run", events, err, err.partial)
            assert.is_true(n > 5)
            grep_files("owl.run")
          end)
        end
      end

      it("owl.run with stream: a worker's stream failing with the key", function()
        server:script{ {}, stream_error(provider, key) }
        local events = {}
        local result, err = owl.run(client(), "Write a word counter in Lua.", { max_retries = 0, stream = true,
          on_event = function(ev, data) events[#events + 1] = { ev, data } end })
        assert.is_nil(result)
        assert.equal("worker", err.kind)
        assert_sent(server, key, 4)
        assert_no_key("owl.run with stream", events, err, err.partial)
        grep_files("owl.run with stream")
      end)

      it("owl.run with a journal: a worker's answer echoing the key stays out of the journal", function()
        server:script{ {}, { text = "the key you sent is " .. key } }
        local path = journal_file()
        -- (the result is the caller's own data, the model's words as they
        -- came: only what goes to a file or a screen is redacted)
        assert(owl.run(client(), "Write a word counter in Lua.", { journal = path }))
        assert_sent(server, key, 5)
        -- the journal holds the answers (one line a call), but not the key
        local text = assert(read_file(path))
        assert.truthy(text:find("the key you sent is", 1, true), text:sub(1, 300))
        grep_files("owl.run with a journal")
      end)

      it("owl.run that succeeds: no key in the result or the events", function()
        local events = {}
        local result = assert(owl.run(client(), "Write a word counter in Lua.", {
          on_event = function(ev, data) events[#events + 1] = { ev, data } end }))
        assert_sent(server, key, 5)
        assert_no_key("owl.run", events, result)
      end)
    end)
  end

  -- The keys from the environment: owl.client{} without api_key in a child
  -- Lua, whose every returned string comes back on stdout to be grepped
  -- here; and bin/owl, as a user runs it.
  describe("the keys in the environment", function()
    local function env_prefix(extra)
      local parts = { "env", "-u", "OWL_TIMEOUT", "-u", "OWL_MODEL",
        "OPENAI_API_KEY=" .. mock.shell_quote(KEYS.openai_env),
        "ANTHROPIC_API_KEY=" .. mock.shell_quote(KEYS.anthropic_env),
        "OPENAI_BASE_URL=" .. mock.shell_quote(server.url),
        "ANTHROPIC_BASE_URL=" .. mock.shell_quote(server.base) }
      for _, e in ipairs(extra or {}) do parts[#parts + 1] = e end
      return table.concat(parts, " ")
    end

    for _, provider in ipairs({ "openai", "anthropic" }) do
      local key = KEYS[provider .. "_env"]

      it(provider .. ": owl.run and client:chat in a child Lua, the key from " .. provider:upper() .. "_API_KEY", function()
        -- the plan, a worker failing, two that answer (one at a time), then
        -- the chat call's 200 with an error object
        local f = faults(provider, key)
        server:script{ {}, f["401 echoing the key"], {}, {}, f["200 with an error object echoing the key"] }
        -- the child prints every string it got, one per line, %q-quoted
        local code = [[
          package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
          local owl = require("owl")
          local c = owl.client{ provider = "]] .. provider .. [[", model = "m", max_retries = 0 }
          local events = {}
          local result, err = owl.run(c, "Write a word counter in Lua.", { max_workers = 1,
            on_event = function(ev, data) events[#events + 1] = { ev, data } end })
          local _, err2 = c:chat{ messages = { { role = "user", content = "hi" } } }
          local seen = {}
          local function walk(v)
            if type(v) == "table" and not seen[v] then
              seen[v] = true
              if getmetatable(v) and getmetatable(v).__name == "owl.error" then print(string.format("%q", tostring(v))) end
              for k, x in pairs(v) do walk(k); walk(x) end
            elseif type(v) == "string" then
              print(string.format("%q", v))
            end
          end
          walk({ events, result or false, err or false, err2 or false })
          print(result == nil and err ~= nil and err2 ~= nil and "CHILD-OK" or "CHILD-UNEXPECTED")
        ]]
        local ok, _, out = mock.run("OWL_BUILD_DIR= " .. env_prefix() .. " " .. LUA .. " -e "
          .. mock.shell_quote('package.cpath = "' .. (os.getenv("OWL_BUILD_DIR") or ("build/" .. (type(jit) == "table"
            and "jit" or _VERSION:match("%d+%.%d+")))) .. '/?.so;" .. package.cpath') .. " -e " .. mock.shell_quote(code))
        assert.is_true(ok, out)
        assert.truthy(out:find("CHILD-OK", 1, true), out)
        assert_sent(server, key, 5)
        assert_no_key("a child Lua with " .. provider:upper() .. "_API_KEY", out)
      end)

      for _, json_flag in ipairs({ false, true }) do
        for _, stream in ipairs({ false, true }) do
          local flags = { "--provider", provider, "--max-retries", "0", "--max-workers", "1" }
          if json_flag then flags[#flags + 1] = "--json" end
          if stream then flags[#flags + 1] = "--stream" end
          it("bin/owl run " .. table.concat(flags, " ") .. ": a worker fails echoing the key", function()
            -- the plan, one worker that answers, one that fails echoing the key
            server:script{ {}, {}, stream and stream_error(provider, key) or faults(provider, key)["401 echoing the key"] }
            local cmd = env_prefix() .. " timeout 60 " .. LUA .. " bin/owl run --journal "
              .. mock.shell_quote(journal_file())
            for _, f in ipairs(flags) do cmd = cmd .. " " .. mock.shell_quote(f) end
            local out_file, err_file = os.tmpname(), os.tmpname()
            local ok = mock.run(cmd .. " 'Write a word counter in Lua.' </dev/null >" .. mock.shell_quote(out_file)
              .. " 2>" .. mock.shell_quote(err_file))
            local out, err = read_file(out_file), read_file(err_file)
            os.remove(out_file)
            os.remove(err_file)
            assert.is_false(ok, "bin/owl run should fail:\n" .. out .. err)
            assert_sent(server, key, 3)
            -- the failure is reported: there is something to grep
            assert.truthy((out .. err):find("error", 1, true), out .. err)
            assert_no_key("bin/owl stdout", out)
            assert_no_key("bin/owl stderr", err)
            grep_files("bin/owl")
          end)
        end
      end
    end
  end)
end)
