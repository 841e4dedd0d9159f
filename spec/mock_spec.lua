-- spec/mock_spec.lua: the mock LLM server's own features, proven through
-- LuaSocket (never through owl), so that owl's specs can rely on them.
local mock = require("support.mock")
local socket = require("socket")

local function chat(text, extra)
  local body = { model = "gpt-test", messages = { { role = "system", content = "be brief" }, { role = "user", content = text } } }
  for k, v in pairs(extra or {}) do body[k] = v end
  return body
end

local function plan_request()
  return chat("make a plan", {
    response_format = { type = "json_schema", json_schema = { name = "plan", strict = true, schema = { type = "object" } } },
  })
end

local wait_until, run = mock.wait_until, mock.run

local function curl(url, ca_file, body, headers)
  local cmd = "curl -sS --noproxy '*' --max-time 10" .. (ca_file and (" --cacert '" .. ca_file .. "'") or "")
  for k, v in pairs(headers or {}) do cmd = cmd .. " -H '" .. k .. ": " .. v .. "'" end
  if body then cmd = cmd .. " -H 'content-type: application/json' --data-binary '" .. body .. "'" end
  return run(cmd .. " '" .. url .. "'")
end

-- The same call with node's https client: ok, output (body or error).
local function node_https(url, ca_file, body)
  local js = "const h=require('https'),fs=require('fs');const [u,ca,b]=process.argv.slice(1);" ..
    "const r=h.request(u,{method:b?'POST':'GET',ca:ca?fs.readFileSync(ca):undefined}," ..
    "(s)=>{let t='';s.on('data',(d)=>t+=d);s.on('end',()=>process.stdout.write(t));});" ..
    "r.on('error',(e)=>{console.error(e.message);process.exit(1)});r.end(b||undefined);"
  local ok, _, out = run("node -e \"" .. js .. "\" '" .. url .. "' '" .. (ca_file or "") .. "' '" .. (body or "") .. "'")
  return ok, out
end

local HAVE_CURL = run("command -v curl")

describe("mock server", function()
  local server

  setup(function()
    server = mock.start{ tls = true }
  end)

  teardown(function()
    if server then server:stop() end
  end)

  before_each(function()
    server:reset()
  end)

  describe("start", function()
    it("listens on 127.0.0.1 and reports its ports and urls", function()
      assert.is_number(server.port)
      assert.equal("http://127.0.0.1:" .. server.port .. "/v1", server.url)
      assert.is_number(server.tls_port)
      assert.equal("https://127.0.0.1:" .. server.tls_port .. "/v1", server.tls_url)
      assert.is_true(mock.alive(server.pid))
      local r = server:request{ method = "GET", path = "/healthz" }
      assert.equal(200, r.status)
      assert.equal("ok", r.body)
    end)

    it("finds fixtures next to the repository", function()
      local fx = mock.fixture("openai-01-plain-completion.json")
      assert.equal(200, fx.status)
      assert.is_string(fx.body)
      assert.has_error(function() mock.fixture_path("no-such-fixture.json") end)
      assert.equal(24, #mock.fixture_names())
    end)
  end)

  describe("default replies", function()
    it("echoes the last user message in a code fence, OpenAI shape, fixed usage", function()
      local r = server:request{ body = chat("write a haiku\nabout \"owls\"") }
      assert.equal(200, r.status)
      assert.matches("^application/json", r.headers["content-type"])
      local j = mock.json_decode(r.body)
      assert.equal("chat.completion", j.object)
      assert.equal("gpt-test", j.model)
      assert.equal("assistant", j.choices[1].message.role)
      assert.equal("```\nwrite a haiku\nabout \"owls\"\n```", j.choices[1].message.content)
      assert.equal(mock.null, j.choices[1].message.refusal)
      assert.equal("stop", j.choices[1].finish_reason)
      assert.same({ prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 }, j.usage)
    end)

    it("counts each connection that carried LLM requests once (llm_connections)", function()
      server:reset()
      -- server:request closes its connection: two requests, two connections
      server:request{ body = chat("one") }
      server:request{ body = chat("two") }
      server:request{ method = "GET", path = "/healthz" }
      assert.equal(2, server:stats().llm_connections)
      server:reset()
      assert.equal(0, server:stats().llm_connections)
    end)

    it("answers /chat/completions (no /v1) the same way", function()
      local r = server:request{ path = "/chat/completions", body = chat("hi") }
      assert.equal("```\nhi\n```", mock.json_decode(r.body).choices[1].message.content)
    end)

    it("takes the text parts of a content array", function()
      local body = chat("x")
      body.messages[2].content = { { type = "text", text = "one" }, { type = "text", text = "two" } }
      local j = mock.json_decode(server:request{ body = body }.body)
      assert.equal("```\none\ntwo\n```", j.choices[1].message.content)
    end)

    it("answers a json_schema request with a plan of 3 subtasks by default", function()
      local r = server:request{ body = plan_request() }
      local plan = mock.json_decode(mock.json_decode(r.body).choices[1].message.content)
      assert.is_string(plan.objective)
      assert.equal(3, #plan.subtasks)
      for i, st in ipairs(plan.subtasks) do
        assert.equal("part_" .. i, st.name)
        assert.is_string(st.description)
      end
    end)

    it("makes x-mock-subtasks subtasks, up to at least 10000", function()
      for _, n in ipairs({ 1, 7, 10000 }) do
        local r = server:request{ headers = { ["x-mock-subtasks"] = n }, body = plan_request() }
        local plan = mock.json_decode(mock.json_decode(r.body).choices[1].message.content)
        assert.equal(n, #plan.subtasks)
        assert.equal("part_" .. n, plan.subtasks[n].name)
      end
    end)

    it("answers Anthropic Messages with a text block and end_turn", function()
      local r = server:request{ path = "/v1/messages", body = {
        model = "claude-test", max_tokens = 100, system = "be brief",
        messages = { { role = "user", content = { { type = "text", text = "hello there" } } } },
      } }
      assert.equal(200, r.status)
      local j = mock.json_decode(r.body)
      assert.equal("message", j.type)
      assert.equal("claude-test", j.model)
      assert.equal("text", j.content[1].type)
      assert.equal("```\nhello there\n```", j.content[1].text)
      assert.equal("end_turn", j.stop_reason)
      assert.equal(10, j.usage.input_tokens)
      assert.equal(5, j.usage.output_tokens)
    end)

    it("answers Anthropic output_config.format with the plan as text", function()
      local r = server:request{ path = "/v1/messages", headers = { ["x-mock-subtasks"] = 2 }, body = {
        model = "claude-test", max_tokens = 100, messages = { { role = "user", content = "plan" } },
        output_config = { format = { type = "json_schema", schema = { type = "object" } } },
      } }
      local j = mock.json_decode(r.body)
      assert.equal(2, #mock.json_decode(j.content[1].text).subtasks)
    end)

    it("answers an Anthropic forced tool with a tool_use block holding the plan", function()
      local r = server:request{ path = "/v1/messages", headers = { ["x-mock-subtasks"] = 4 }, body = {
        model = "claude-test", max_tokens = 100, messages = { { role = "user", content = "plan" } },
        tools = { { name = "submit_plan", input_schema = { type = "object" } } },
        tool_choice = { type = "tool", name = "submit_plan" },
      } }
      local j = mock.json_decode(r.body)
      assert.equal("tool_use", j.content[1].type)
      assert.equal("submit_plan", j.content[1].name)
      assert.equal(4, #j.content[1].input.subtasks)
      assert.equal("tool_use", j.stop_reason)
    end)

    it("answers a body that is not JSON with a 400", function()
      local r = server:request{ body = "{nope" }
      assert.equal(400, r.status)
      assert.is_string(mock.json_decode(r.body).error.message)
    end)
  end)

  describe("SSE", function()
    it("streams OpenAI chunks, a finish chunk, a usage chunk, then [DONE]", function()
      local r = server:request{ body = chat("stream me", { stream = true, stream_options = { include_usage = true } }) }
      assert.equal(200, r.status)
      assert.matches("^text/event%-stream", r.headers["content-type"])
      assert.matches("chunked", r.headers["transfer-encoding"])
      local events = mock.sse_events(r.body)
      assert.equal("[DONE]", events[#events].data)
      local usage = events[#events - 1].json
      assert.same({}, usage.choices)
      assert.same({ prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 }, usage.usage)
      local finish = events[#events - 2].json
      assert.equal("stop", finish.choices[1].finish_reason)
      assert.same({}, finish.choices[1].delta)
      assert.equal("assistant", events[1].json.choices[1].delta.role)
      local text = {}
      for i = 1, #events - 3 do
        local e = events[i].json
        assert.equal("chat.completion.chunk", e.object)
        assert.equal("gpt-test", e.model)
        assert.equal(mock.null, e.usage) -- include_usage: null on every chunk but the last
        text[#text + 1] = e.choices[1].delta.content
      end
      assert.equal("```\nstream me\n```", table.concat(text))
    end)

    it("sends no usage chunk without stream_options.include_usage", function()
      local events = mock.sse_events(server:request{ body = chat("x", { stream = true }) }.body)
      assert.equal("[DONE]", events[#events].data)
      assert.equal("stop", events[#events - 1].json.choices[1].finish_reason)
      for i = 1, #events - 1 do assert.is_nil(events[i].json.usage) end
    end)

    it("streams a plan in several content pieces", function()
      local events = mock.sse_events(server:request{ headers = { ["x-mock-subtasks"] = 5 },
        body = chat("plan", { stream = true, response_format = { type = "json_schema" } }) }.body)
      local text = {}
      for i = 2, #events - 2 do text[#text + 1] = events[i].json.choices[1].delta.content end
      assert.is_true(#text > 2)
      assert.equal(5, #mock.json_decode(table.concat(text)).subtasks)
    end)

    it("streams Anthropic events in the API's order", function()
      local r = server:request{ path = "/v1/messages", body = {
        model = "claude-test", max_tokens = 100, stream = true, messages = { { role = "user", content = "hi" } },
      } }
      local events = mock.sse_events(r.body)
      local names, text = {}, {}
      for _, e in ipairs(events) do
        if names[#names] ~= e.event then names[#names + 1] = e.event end
        assert.equal(e.event, e.json.type)
        if e.event == "content_block_delta" then text[#text + 1] = e.json.delta.text end
      end
      assert.same({ "message_start", "content_block_start", "ping", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop" }, names)
      assert.equal("```\nhi\n```", table.concat(text))
      assert.equal("claude-test", events[1].json.message.model)
      local delta = events[#events - 1].json
      assert.equal("end_turn", delta.delta.stop_reason)
      assert.equal(5, delta.usage.output_tokens)
    end)

    it("streams an Anthropic forced tool as input_json_delta pieces", function()
      local events = mock.sse_events(server:request{ path = "/v1/messages", body = {
        model = "c", max_tokens = 100, stream = true, messages = { { role = "user", content = "p" } },
        tools = { { name = "plan", input_schema = { type = "object" } } }, tool_choice = { type = "any" },
      } }.body)
      local json = {}
      for _, e in ipairs(events) do
        if e.event == "content_block_delta" then json[#json + 1] = e.json.delta.partial_json end
      end
      assert.equal("tool_use", events[2].json.content_block.type)
      assert.equal(3, #mock.json_decode(table.concat(json)).subtasks)
      assert.equal("tool_use", events[#events - 1].json.delta.stop_reason)
    end)
  end)

  describe("faults", function()
    it("429 carries retry-after (1 by default) and an OpenAI rate-limit body", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "429" }, body = chat("x") }
      assert.equal(429, r.status)
      assert.equal("1", r.headers["retry-after"])
      assert.equal("rate_limit_exceeded", mock.json_decode(r.body).error.code)
      r = server:request{ headers = { ["x-mock-fault"] = "429", ["x-mock-retry-after"] = "7" }, body = chat("x") }
      assert.equal("7", r.headers["retry-after"])
    end)

    it("429 on /v1/messages is an Anthropic rate_limit_error", function()
      local r = server:request{ path = "/v1/messages", headers = { ["x-mock-fault"] = "429" }, body = chat("x") }
      local j = mock.json_decode(r.body)
      assert.equal("error", j.type)
      assert.equal("rate_limit_error", j.error.type)
    end)

    it("500 has an OpenAI server_error body", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "500" }, body = chat("x") }
      assert.equal(500, r.status)
      assert.equal("server_error", mock.json_decode(r.body).error.type)
    end)

    it("reset sends the head and part of the body, then resets", function()
      -- LuaSocket reports a reset as "closed", like an early close: it sees
      -- the head and part of the body.
      local r = server:request{ headers = { ["x-mock-fault"] = "reset" }, body = chat("x") }
      assert.equal(200, r.status)
      assert.is_false(r.complete)
      assert.is_true(#r.body > 0)
      assert.is_true(#r.body < tonumber(r.headers["content-length"]))
      if HAVE_CURL then -- curl, as owl's libcurl does, tells a reset (56) from a short body (18)
        local ok, code, out = curl(server.base .. "/v1/chat/completions", nil, mock.json_encode(chat("x")),
          { ["x-mock-fault"] = "reset" })
        assert.is_false(ok)
        assert.equal(56, code, out)
        assert.matches("reset", out)
      end
    end)

    it("reset cuts an SSE stream after its first events", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "reset" }, body = chat("x", { stream = true }) }
      assert.equal(200, r.status)
      assert.is_false(r.complete)
      assert.matches("^data: {", r.body)
      assert.is_nil(r.body:find("[DONE]", 1, true))
    end)

    it("truncate promises more bytes than it sends, then closes", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "truncate" }, body = chat("x") }
      assert.equal(200, r.status)
      assert.is_false(r.complete)
      assert.is_true(#r.body < tonumber(r.headers["content-length"]))
      if HAVE_CURL then
        local ok, code, out = curl(server.base .. "/v1/chat/completions", nil, mock.json_encode(chat("x")),
          { ["x-mock-fault"] = "truncate" })
        assert.is_false(ok)
        assert.equal(18, code, out)
      end
    end)

    it("malformed is a 200 application/json body that is not JSON", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "malformed" }, body = chat("x") }
      assert.equal(200, r.status)
      assert.equal("application/json", r.headers["content-type"])
      assert.is_true(r.complete)
      assert.is_nil(mock.json_decode(r.body, true))
    end)

    it("empty is a 200 with no body", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "empty" }, body = chat("x") }
      assert.equal(200, r.status)
      assert.equal("0", r.headers["content-length"])
      assert.equal("", r.body)
    end)

    it("drip sends the body a byte at a time", function()
      server:script{ { body = "0123456789", fault = "drip", drip_ms = 30 } }
      local t0 = socket.gettime()
      local r = server:request{ body = chat("x") }
      assert.equal("0123456789", r.body)
      assert.is_true(socket.gettime() - t0 >= 0.27, "10 bytes at 30 ms each came too fast")
    end)

    it("latency delays the reply", function()
      local t0 = socket.gettime()
      local r = server:request{ headers = { ["x-mock-latency-ms"] = 200 }, body = chat("slow") }
      assert.equal(200, r.status)
      assert.is_true(socket.gettime() - t0 >= 0.19)
    end)

    it("hang never answers, and the request stays in flight", function()
      local p = server:send{ headers = { ["x-mock-fault"] = "hang" }, body = chat("x") }
      assert.is_true(wait_until(2, function() return server:stats().in_flight == 1 end))
      local r, err = p:response(0.3)
      assert.is_nil(r)
      assert.equal("timeout", err)
      assert.is_true(wait_until(2, function() return server:stats().in_flight == 0 end))
    end)

    it("redirect is a 302 to x-mock-location", function()
      local r = server:request{
        headers = { ["x-mock-fault"] = "redirect", ["x-mock-location"] = "http://127.0.0.1:9/elsewhere" },
        body = chat("x"),
      }
      assert.equal(302, r.status)
      assert.equal("http://127.0.0.1:9/elsewhere", r.headers["location"])
    end)

    it("x-mock-status forces a status, with x-mock-body as the body", function()
      local r = server:request{ headers = { ["x-mock-status"] = 418, ["x-mock-body"] = '{"teapot":true}' }, body = chat("x") }
      assert.equal(418, r.status)
      assert.equal('{"teapot":true}', r.body)
      r = server:request{ headers = { ["x-mock-status"] = 503 }, body = chat("x") }
      assert.equal(503, r.status)
      assert.is_string(mock.json_decode(r.body).error.message)
    end)

    it("rejects an unknown fault loudly", function()
      local r = server:request{ headers = { ["x-mock-fault"] = "gremlins" }, body = chat("x") }
      assert.equal(400, r.status)
      assert.matches("gremlins", r.body)
    end)
  end)

  describe("script", function()
    it("queues replies consumed in order, then falls back to the default", function()
      assert.equal(3, server:script{
        { status = 201, headers = { ["x-extra"] = "yes" }, body = "first" },
        { fault = "429", retry_after = 3 },
        { body = { answer = 42 } },
      })
      local r1 = server:request{ body = chat("a") }
      assert.equal(201, r1.status)
      assert.equal("yes", r1.headers["x-extra"])
      assert.equal("first", r1.body)
      local r2 = server:request{ body = chat("b") }
      assert.equal(429, r2.status)
      assert.equal("3", r2.headers["retry-after"])
      assert.same({ answer = 42 }, mock.json_decode(server:request{ body = chat("c") }.body))
      assert.equal(0, server:stats().script_pending)
      assert.equal("```\nd\n```", mock.json_decode(server:request{ body = chat("d") }.body).choices[1].message.content)
    end)

    it("a script entry wins over the request's fault header", function()
      server:script{ { status = 200, body = "scripted" } }
      local r = server:request{ headers = { ["x-mock-fault"] = "500" }, body = chat("x") }
      assert.equal(200, r.status)
      assert.equal("scripted", r.body)
    end)

    it("is cleared by reset", function()
      server:script{ { status = 500, body = "x" } }
      server:reset()
      assert.equal(200, server:request{ body = chat("x") }.status)
    end)

    it("refuses an entry with an unknown fault", function()
      assert.has_error(function() server:script{ { fault = "nope" } } end)
    end)
  end)

  describe("replay", function()
    it("replies with every fixture's status, headers and body, byte for byte", function()
      for _, name in ipairs(mock.fixture_names()) do
        local fx = mock.fixture(name)
        local r = server:request{ headers = { ["x-mock-replay"] = mock.fixture_path(name) }, body = chat("x") }
        assert.equal(fx.status, r.status, name)
        assert.equal(fx.body, r.body, name)
        assert.equal(tostring(#fx.body), r.headers["content-length"], name)
        for k, v in pairs(fx.headers) do assert.equal(v, r.headers[k], name .. " header " .. k) end
      end
    end)

    it("replays from a script entry, by fixture name", function()
      local fx = mock.fixture("anthropic-01-stream-plain.json")
      server:script{ { replay = "anthropic-01-stream-plain.json" } }
      local r = server:request{ path = "/v1/messages", body = chat("x") }
      assert.equal(fx.body, r.body)
      assert.equal("text/event-stream; charset=utf-8", r.headers["content-type"])
    end)

    it("says so when the fixture cannot be read", function()
      local r = server:request{ headers = { ["x-mock-replay"] = "/nonexistent/fixture.json" }, body = chat("x") }
      assert.equal(500, r.status)
      assert.matches("cannot read fixture", r.body)
    end)
  end)

  describe("barrier", function()
    it("holds requests until K are in flight, then answers them all and disarms", function()
      local held = {}
      for i = 1, 3 do
        held[i] = server:send{ headers = { ["x-mock-barrier"] = 4 }, body = chat("w" .. i) }
      end
      assert.is_true(wait_until(3, function() return server:stats().barrier.held == 3 end))
      -- A structured-output request passes even with the header.
      local plan = server:request({ headers = { ["x-mock-barrier"] = 4 }, body = plan_request() }, 2)
      assert.equal(200, plan.status)
      assert.equal(3, server:stats().barrier.held)
      held[4] = server:send{ headers = { ["x-mock-barrier"] = 4 }, body = chat("w4") }
      for i = 1, 4 do
        local r = held[i]:response(5)
        assert.equal(200, r.status)
        assert.equal("```\nw" .. i .. "\n```", mock.json_decode(r.body).choices[1].message.content)
      end
      local s = server:stats()
      assert.is_true(s.max_in_flight >= 4)
      assert.is_false(s.barrier.armed)
      -- Disarmed: a later request passes at once.
      local r = server:request({ headers = { ["x-mock-barrier"] = 4, ["x-mock-barrier-timeout-ms"] = 100 }, body = chat("late") }, 2)
      assert.equal(200, r.status)
    end)

    it("answers 504 naming how many of K arrived when K is not reached in time", function()
      local t0 = socket.gettime()
      local a = server:send{ headers = { ["x-mock-barrier"] = 3, ["x-mock-barrier-timeout-ms"] = 200 }, body = chat("a") }
      local b = server:send{ headers = { ["x-mock-barrier"] = 3, ["x-mock-barrier-timeout-ms"] = 200 }, body = chat("b") }
      for _, p in ipairs({ a, b }) do
        local r = p:response(5)
        assert.equal(504, r.status)
        assert.matches("2 of 3", mock.json_decode(r.body).error.message)
      end
      assert.is_true(socket.gettime() - t0 >= 0.19)
    end)

    it("does not let a deserted generation's timer cut the next one short", function()
      local gone = server:send{ headers = { ["x-mock-barrier"] = 2, ["x-mock-barrier-timeout-ms"] = 300 }, body = chat("gone") }
      assert.is_true(wait_until(2, function() return server:stats().barrier.held == 1 end))
      gone:close()
      assert.is_true(wait_until(2, function() return server:stats().barrier.held == 0 end))
      -- A new generation, still open when the deserted one's 300 ms end.
      local h = { ["x-mock-barrier"] = 3, ["x-mock-barrier-timeout-ms"] = 5000 }
      local a, b = server:send{ headers = h, body = chat("a") }, server:send{ headers = h, body = chat("b") }
      socket.sleep(0.5)
      local c = server:send{ headers = h, body = chat("c") }
      for _, p in ipairs({ a, b, c }) do assert.equal(200, p:response(5).status) end
    end)

    it("is armed again after a reset", function()
      local r = server:request({ headers = { ["x-mock-barrier"] = 2, ["x-mock-barrier-timeout-ms"] = 100 }, body = chat("a") }, 5)
      assert.equal(504, r.status)
      assert.matches("1 of 2", r.body)
    end)
  end)

  describe("stats", function()
    it("counts max_in_flight and connections, and reset brings the maxima down", function()
      local p = {}
      for i = 1, 5 do p[i] = server:send{ headers = { ["x-mock-latency-ms"] = 300 }, body = chat("x" .. i) } end
      for i = 1, 5 do assert.equal(200, p[i]:response(5).status) end
      local s = server:stats()
      assert.equal(5, s.max_in_flight)
      assert.equal(0, s.in_flight)
      assert.is_true(s.max_connections >= 5)
      assert.equal(5, s.total)
      assert.equal(5, s.paths["/v1/chat/completions"])
      server:reset()
      s = server:stats()
      assert.equal(0, s.max_in_flight)
      assert.equal(0, s.total)
      assert.is_nil(s.requests)
    end)

    it("never counts or logs control calls", function()
      server:stats()
      server:requests()
      server:request{ method = "GET", path = "/healthz" }
      local s = server:stats(true)
      assert.equal(0, s.total)
      assert.same({}, s.requests)
    end)

    it("logs each LLM request's method, path, lower-case headers and raw body", function()
      local body = '{"model":"m","messages":[{"role":"user","content":"h\\u00e9 \\"quoted\\""}]}'
      server:request{ headers = { ["X-Custom-Thing"] = "Abc", ["Authorization"] = "Bearer test" }, body = body }
      server:request{ path = "/v1/messages", body = chat("second") }
      local log = server:requests()
      assert.equal(2, #log)
      assert.equal("POST", log[1].method)
      assert.equal("/v1/chat/completions", log[1].path)
      assert.equal("Abc", log[1].headers["x-custom-thing"])
      assert.equal("Bearer test", log[1].headers["authorization"])
      assert.equal(tostring(#body), log[1].headers["content-length"])
      assert.equal(body, log[1].body)
      assert.equal("/v1/messages", log[2].path)
      assert.same(chat("second"), mock.json_decode(log[2].body))
      assert.equal(1, #server:requests(1))
      assert.equal("/v1/messages", server:requests(1)[1].path)
      assert.equal(2, #server:stats(true).requests)
    end)

    it("logs a wrong URL too, with a 404", function()
      local r = server:request{ path = "/v1/v1/chat/completions", body = chat("x") }
      assert.equal(404, r.status)
      assert.equal("/v1/v1/chat/completions", server:requests()[1].path)
    end)

    it("truncates a logged body past 1 MB", function()
      local big = string.rep("a", 1024 * 1024 + 100)
      server:request{ body = big }
      local e = server:requests()[1]
      assert.equal(1024 * 1024, #e.body)
      assert.is_true(e.body_truncated)
      assert.equal(#big, e.body_bytes)
    end)
  end)

  describe("TLS", function()
    local clients = { node = node_https }
    if HAVE_CURL then
      clients.curl = function(url, ca_file, body)
        local ok, _, out = curl(url, ca_file, body)
        return ok, out
      end
    end
    for name, call in pairs(clients) do
      it("answers over HTTPS with the generated certificate (" .. name .. ")", function()
        local ok, out = call("https://127.0.0.1:" .. server.tls_port .. "/healthz", server.cert_file)
        assert.is_true(ok, out)
        assert.equal("ok", out)
        ok, out = call(server.tls_url .. "/chat/completions", server.cert_file,
          mock.json_encode(chat("over tls")))
        assert.is_true(ok, out)
        assert.equal("```\nover tls\n```", mock.json_decode(out).choices[1].message.content)
        assert.equal(1, server:stats().total)
      end)

      it("is refused by a client that does not trust the certificate (" .. name .. ")", function()
        local ok, out = call("https://127.0.0.1:" .. server.tls_port .. "/healthz", nil)
        assert.is_false(ok)
        assert.matches("self[- ]signed", out)
      end)
    end
  end)
end)

describe("mock server lifetime", function()
  it("exits when stopped, and stop is idempotent", function()
    local s = mock.start()
    local pid, port = s.pid, s.port
    assert.is_true(mock.alive(pid))
    assert.is_true(s:stop())
    assert.is_false(mock.alive(pid))
    assert.is_true(s:stop())
    local c = socket.tcp()
    c:settimeout(1)
    assert.is_nil(c:connect("127.0.0.1", port))
    c:close()
  end)

  it("exits once its parent is gone", function()
    -- A parent that lives one second: the server must follow it.
    local f = io.popen("sleep 1 >/dev/null 2>&1 & echo $!")
    local parent = tonumber(f:read("*a"):match("%d+"))
    f:close()
    local s = mock.start{ parent_pid = parent }
    assert.is_true(mock.alive(s.pid))
    assert.is_true(wait_until(6, function() return not mock.alive(s.pid) end))
    s:stop()
  end)

  it("exits after --max-lifetime", function()
    local s = mock.start{ max_lifetime = 1 }
    assert.is_true(wait_until(5, function() return not mock.alive(s.pid) end))
    s:stop()
  end)

  it("fails to start with the server's stderr in the message", function()
    local ok, err = pcall(mock.start, { node = "node --no-such-node-flag" })
    assert.is_false(ok)
    assert.matches("no%-such%-node%-flag", tostring(err))
  end)
end)

describe("mock JSON codec", function()
  it("round-trips the values the harness needs", function()
    local v = { a = { 1, 2.5, -3 }, s = "q\"\\\n\1é", t = true, f = false, o = {} }
    assert.same(v, mock.json_decode(mock.json_encode(v)))
    assert.equal(mock.null, mock.json_decode("null"))
    assert.equal("\240\159\152\128", mock.json_decode('"\\ud83d\\ude00"'))
    assert.is_nil(mock.json_decode("[1,", true))
    assert.has_error(function() mock.json_decode("{} x") end)
  end)
end)
