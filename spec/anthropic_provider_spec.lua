-- spec/anthropic_provider_spec.lua: owl.providers.anthropic. build and body
-- are checked field by field (system messages, max_tokens, both ways of
-- writing structured output, headers); read is run against every recorded
-- non-streaming Anthropic exchange in ../shared/fixtures/real/, with the
-- expected values written out here from reading each fixture, and against
-- hand-made answers for what the recordings do not show (thinking, refusal,
-- prompt caching, 529, a 200 that carries an error).
local json = require("owl.json")
local errors = require("owl.errors")
local anthropic = require("owl.providers.anthropic")
local mock = require("support.mock")
local transfer = require("support.transfer")

local function client(fields)
  local c = { base_url = "https://api.example.test", model = "claude-test", timeout = 600, connect_timeout = 5 }
  for k, v in pairs(fields or {}) do c[k] = v end
  return c
end

local function msgs() return { { role = "user", content = "hi" } } end

-- A message body in the Messages API's shape.
local function message(fields)
  local m = { id = "msg_1", type = "message", role = "assistant", model = "claude-test",
              content = json.array({}), stop_reason = "end_turn", stop_sequence = json.null,
              usage = { input_tokens = 3, output_tokens = 2 } }
  for k, v in pairs(fields or {}) do m[k] = v end
  return transfer.finished(200, {}, json.encode(m))
end

local SCHEMA = { type = "object", properties = {}, additionalProperties = false }

describe("owl.providers.anthropic", function()
  describe("build", function()
    it("posts to base_url .. /v1/messages, joined with one slash", function()
      for _, base in ipairs({ "http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080//" }) do
        local spec = anthropic.build(client({ base_url = base }), { messages = msgs() })
        assert.are.equal("http://127.0.0.1:8080/v1/messages", spec.url)
      end
    end)

    it("sends Content-Type, x-api-key, anthropic-version 2023-06-01, then the client's headers sorted", function()
      local headers = { ["X-Zeta"] = "z", ["anthropic-beta"] = "b-1", ["X-Alpha"] = 7 }
      local spec = anthropic.build(client({ api_key = "sk-ant-test-1", headers = headers }), { messages = msgs() })
      assert.are.same({
        "Content-Type: application/json",
        "x-api-key: sk-ant-test-1",
        "anthropic-version: 2023-06-01",
        "X-Alpha: 7",
        "X-Zeta: z",
        "anthropic-beta: b-1",
      }, spec.headers)
    end)

    it("sends no x-api-key without a key", function()
      for _, key in ipairs({ "none", "" }) do
        local c = client({ api_key = key })
        if key == "none" then c.api_key = nil end
        assert.are.same({ "Content-Type: application/json", "anthropic-version: 2023-06-01" },
          anthropic.build(c, { messages = msgs() }).headers)
      end
    end)

    it("lets a client header replace owl's of the same name, in any case", function()
      local spec = anthropic.build(client({ api_key = "sk-x", headers = {
        ["X-Api-Key"] = "gateway-key", ["Anthropic-Version"] = "2099-01-01", Authorization = "Bearer tok",
      } }), { messages = msgs() })
      assert.are.same({ "Content-Type: application/json", "Anthropic-Version: 2099-01-01",
                        "Authorization: Bearer tok", "X-Api-Key: gateway-key" }, spec.headers)
    end)

    it("raises on a header that could smuggle another one in", function()
      local ok, err = pcall(anthropic.build, client({ headers = { ["X-A"] = "v\r\nX-Evil: 1" } }), { messages = msgs() })
      assert.is_false(ok)
      assert.matches("owl.providers.anthropic: header value holds a line break: ", err, 1, true)
      assert.has_error(function()
        anthropic.build(client({ headers = { ["X-A"] = true } }), { messages = msgs() })
      end, "owl.providers.anthropic: header value must be a string, got boolean")
    end)

    it("copies the timeouts, the response cap and the CA file from the client", function()
      local spec = anthropic.build(client({ timeout = 30, connect_timeout = 2, stall_timeout = 9,
                                            max_response_bytes = 1000, ca_file = "/tmp/ca.pem" }), { messages = msgs() })
      assert.are.same({ 30, 2, 9, 1000, "/tmp/ca.pem" },
        { spec.timeout, spec.connect_timeout, spec.stall_timeout, spec.max_response_bytes, spec.ca_file })
    end)

    it("raises on a client without a base_url", function()
      assert.has_error(function() anthropic.build({ model = "m" }, { messages = msgs() }) end,
        "owl.providers.anthropic: client has no base_url")
    end)
  end)

  describe("body", function()
    it("is what build puts in its spec, and leaves the request alone", function()
      local request = { messages = msgs(), temperature = 0 }
      local body = anthropic.body(client(), request)
      assert.are.same(anthropic.build(client(), request).body, body)
      assert.are_not.equal(request, body)
      assert.is_nil(request.model)
      assert.is_nil(request.max_tokens)
    end)

    it("uses the client's model when the request names none, the request's otherwise", function()
      assert.are.equal("claude-test", anthropic.body(client(), { messages = msgs() }).model)
      assert.are.equal("claude-other", anthropic.body(client(), { model = "claude-other", messages = msgs() }).model)
      local no_model = client()
      no_model.model = nil
      assert.has_error(function() anthropic.body(no_model, { messages = msgs() }) end,
        "owl.providers.anthropic: no model: set the client's model or the request's")
    end)

    it("sets max_tokens to DEFAULT_MAX_TOKENS (16384) unless the request has its own", function()
      assert.are.equal(16384, anthropic.DEFAULT_MAX_TOKENS)
      assert.are.equal(16384, anthropic.body(client(), { messages = msgs() }).max_tokens)
      assert.are.equal(50, anthropic.body(client(), { messages = msgs(), max_tokens = 50 }).max_tokens)
      local saved = anthropic.DEFAULT_MAX_TOKENS
      finally(function() anthropic.DEFAULT_MAX_TOKENS = saved end)
      anthropic.DEFAULT_MAX_TOKENS = 4096 -- read at each call
      assert.are.equal(4096, anthropic.body(client(), { messages = msgs() }).max_tokens)
    end)

    it("moves a system message to the top-level system", function()
      local user = { role = "user", content = "question" }
      local request = { messages = { { role = "system", content = "Be brief." }, user } }
      local body = anthropic.body(client(), request)
      assert.are.equal("Be brief.", body.system)
      assert.are.equal(1, #body.messages)
      assert.are.equal(user, body.messages[1])
      assert.are.equal(2, #request.messages) -- the request's own list is not changed
    end)

    it("joins several system messages with a blank line, wherever they are", function()
      local body = anthropic.body(client(), { messages = {
        { role = "system", content = "One." }, { role = "user", content = "q" },
        { role = "assistant", content = "a" }, { role = "system", content = "Two." }, { role = "user", content = "q2" },
      } })
      assert.are.equal("One.\n\nTwo.", body.system)
      assert.are.same({ "user", "assistant", "user" }, { body.messages[1].role, body.messages[2].role, body.messages[3].role })
    end)

    it("keeps a rope system message a rope, joined piece by piece with strings", function()
      local rope = json.rope({ "Big ", "prompt." })
      assert.are.equal(rope, anthropic.body(client(), { messages = { { role = "system", content = rope } } }).system)
      local body = anthropic.body(client(), { messages = {
        { role = "system", content = "First." }, { role = "system", content = rope }, { role = "user", content = "q" },
      } })
      assert.are.equal(getmetatable(rope), getmetatable(body.system))
      assert.are.same({ "First.", "\n\n", "Big ", "prompt." }, { body.system[1], body.system[2], body.system[3], body.system[4] })
      assert.are.equal('"First.\\n\\nBig prompt."', json.encode(body.system))
    end)

    it("passes the messages table through when it holds no system message, and an empty list as []", function()
      local messages = msgs()
      local body = anthropic.body(client(), { messages = messages })
      assert.are.equal(messages, body.messages)
      assert.is_nil(body.system)
      local only_system = anthropic.body(client(), { messages = { { role = "system", content = "s" } } })
      assert.are.equal("[]", json.encode(only_system.messages))
    end)

    it("passes a request's own system field through, and refuses it together with system messages", function()
      local blocks = { { type = "text", text = "cached", cache_control = { type = "ephemeral" } } }
      assert.are.equal(blocks, anthropic.body(client(), { messages = msgs(), system = blocks }).system)
      assert.has_error(function()
        anthropic.body(client(), { system = "a", messages = { { role = "system", content = "b" } } })
      end, "owl.providers.anthropic: the request has both a system field and system messages")
    end)

    it("raises on a system message that is not text and on a message that is not a table", function()
      assert.has_error(function()
        anthropic.body(client(), { messages = { { role = "system", content = { { type = "text", text = "x" } } } } })
      end, "owl.providers.anthropic: the content of system message 1 must be a string or a json.rope, got table")
      assert.has_error(function() anthropic.body(client(), { messages = { "hi" } }) end,
        "owl.providers.anthropic: request.messages[1] must be a table, got string")
    end)

    it("passes every other request field through unchanged and adds only model and max_tokens", function()
      local tools = { { name = "f", description = "d", input_schema = { type = "object" } } }
      local thinking = { type = "enabled", budget_tokens = 2048 }
      local messages = msgs()
      local request = { messages = messages, temperature = 0.25, stop_sequences = { "END" }, tools = tools,
                        tool_choice = { type = "auto" }, thinking = thinking, metadata = { user_id = "u" },
                        stream = false, some_future_field = { a = 1 } }
      local body = anthropic.body(client(), request)
      assert.are.same({ "max_tokens", "messages", "metadata", "model", "some_future_field", "stop_sequences", "stream",
                        "temperature", "thinking", "tool_choice", "tools" }, mock.sorted_keys(body))
      for k, v in pairs(request) do assert.are.equal(v, body[k], k) end
    end)

    it("raises on a request that is not a table or has no messages, and on a missing client", function()
      assert.has_error(function() anthropic.body(client(), "hi") end,
        "owl.providers.anthropic: request must be a table, got string")
      assert.has_error(function() anthropic.body(client(), { prompt = "hi" }) end,
        "owl.providers.anthropic: request has no messages")
      assert.has_error(function() anthropic.body(nil, { messages = msgs() }) end,
        "owl.providers.anthropic: body needs a client table, got nil")
      assert.has_error(function() anthropic.build(nil, { messages = msgs() }) end,
        "owl.providers.anthropic: build needs a client table, got nil")
    end)

    it("points a misuse error at the caller's line, on every Lua", function()
      local cases = {
        function() anthropic.build(client(), {}) end,
        function() anthropic.body(client(), { messages = { { role = "system", content = 1 } } }) end,
        function() anthropic.body(client(), { messages = msgs(), structured = { name = "a b", schema = {} } }) end,
        function() anthropic.body(client({ structured = "json" }), { messages = msgs(), structured = { name = "a", schema = {} } }) end,
        function() anthropic.build(client({ headers = { a = "b\n" } }), { messages = msgs() }) end,
        function() anthropic.build({ model = "m" }, { messages = msgs() }) end,
      }
      for i, f in ipairs(cases) do
        local ok, err = pcall(f)
        assert.is_false(ok)
        assert.matches("^spec/anthropic_provider_spec%.lua:%d+: owl%.providers%.anthropic: ", err, nil, "case " .. i)
      end
    end)
  end)

  describe("structured output", function()
    local structured = { name = "plan", schema = SCHEMA }

    it("is output_config.format json_schema by default, and the request's own format wins", function()
      local request = { messages = msgs(), temperature = 0, structured = structured }
      local body = anthropic.body(client(), request)
      assert.are.same({ format = { type = "json_schema", schema = SCHEMA } }, body.output_config)
      assert.are.equal(SCHEMA, body.output_config.format.schema)
      assert.is_nil(body.structured)
      assert.is_nil(body.tools)
      assert.is_nil(body.tool_choice)
      assert.is_nil(request.output_config)
      assert.are.same(body, anthropic.body(client({ structured = "output_config" }), request))
      -- other output_config settings stay; a request's own format wins
      local own = { format = { type = "json_schema", schema = { type = "object" } } }
      assert.are.equal(own.format, anthropic.body(client(), { messages = msgs(), output_config = own,
        structured = structured }).output_config.format)
      local effort = anthropic.body(client(), { messages = msgs(), output_config = { effort = "low" }, structured = structured })
      assert.are.same({ effort = "low", format = { type = "json_schema", schema = SCHEMA } }, effort.output_config)
    end)

    it("is a forced tool with the client's structured = 'tool'", function()
      local body = anthropic.body(client({ structured = "tool" }), { messages = msgs(), structured = structured })
      assert.are.equal(1, #body.tools)
      assert.are.same({ "description", "input_schema", "name" }, mock.sorted_keys(body.tools[1]))
      assert.are.equal("plan", body.tools[1].name)
      assert.are.equal(SCHEMA, body.tools[1].input_schema)
      assert.is_string(body.tools[1].description)
      assert.are.same({ type = "tool", name = "plan" }, body.tool_choice)
      assert.is_nil(body.output_config)
      assert.is_nil(body.structured)
    end)

    it("adds the answer's tool after the request's own tools, and keeps the request's tool_choice", function()
      local mine = { name = "lookup", description = "d", input_schema = { type = "object" } }
      local request = { messages = msgs(), tools = { mine }, tool_choice = { type = "any" }, structured = structured }
      local body = anthropic.body(client({ structured = "tool" }), request)
      assert.are.equal(mine, body.tools[1])
      assert.are.equal("plan", body.tools[2].name)
      assert.are.equal(request.tool_choice, body.tool_choice)
      assert.are.equal(1, #request.tools) -- the request's list is not changed
      assert.are.equal("[", json.encode(anthropic.body(client({ structured = "tool" }),
        { messages = msgs(), tools = {}, structured = structured }).tools):sub(1, 1))
    end)

    it("raises on a tool already named like the answer, a bad name or schema, or an unknown mode", function()
      local tool = client({ structured = "tool" })
      assert.has_error(function()
        anthropic.body(tool, { messages = msgs(), tools = { { name = "plan" } }, structured = structured })
      end, "owl.providers.anthropic: request.tools[1] is named 'plan', the name of the structured answer's tool")
      local function body(s, c) return anthropic.body(c or client(), { messages = msgs(), structured = s }) end
      assert.has_error(function() body({ name = "my plan", schema = {} }) end,
        'owl.providers.anthropic: schema name must be 1 to 64 letters, digits, \'_\' or \'-\', got "my plan"')
      assert.has_error(function() body({ name = string.rep("a", 65), schema = {} }, tool) end)
      assert.has_error(function() body({ name = "plan", schema = "{}" }) end,
        "owl.providers.anthropic: request.structured.schema must be a table, got string")
      assert.has_error(function() body("plan") end,
        "owl.providers.anthropic: request.structured must be a table { name, schema }, got string")
      assert.has_error(function() body(structured, client({ structured = "json_mode" })) end,
        "owl.providers.anthropic: client.structured must be 'output_config' or 'tool', got \"json_mode\"")
      assert.has_error(function()
        anthropic.body(client(), { messages = msgs(), output_config = "x", structured = structured })
      end, "owl.providers.anthropic: request.output_config must be a table, got string")
    end)
  end)

  describe("read, on the recorded exchanges", function()
    -- Written out from each fixture's body.
    local ok = {
      ["anthropic-08-plain-message.json"] = {
        text = "The capital of France is Paris.", finish_reason = "stop", input_tokens = 20, output_tokens = 10,
        id = "msg_01Fg1JVgvCYUHWsxrj9GkpEv", model = "claude-3-opus-20240229",
      },
      ["anthropic-09-tool-use-structured.json"] = {
        finish_reason = "tool_calls", input_tokens = 497, output_tokens = 56,
        id = "msg_01K4Fzcf1bhiyLzHpwLdrefj", model = "claude-sonnet-4-5-20250929",
        tool_calls = { {
          id = "toolu_01LZABsgreMefH2Go8D5PQbW", name = "final_result",
          arguments = { city = "Mexico City", country = "Mexico" },
        } },
      },
    }
    local failed = {
      ["anthropic-10-error-404-not-found.json"] = {
        status = 404, message = "model: claude-sonet-4-5", provider_type = "not_found_error",
        -- the recording kept no headers but the body's own request_id
        request_id = "req_011CdufXo8Y2LVfY2veyuQWG",
      },
    }

    it("covers every non-streaming Anthropic fixture", function()
      local names = transfer.recorded("anthropic")
      for _, name in ipairs(names) do
        assert.is_truthy(ok[name] or failed[name], "no expectation written for " .. name)
      end
      assert.are.equal(3, #names)
    end)

    for name, want in pairs(ok) do
      it("reads " .. name, function()
        local r, err = anthropic.read(transfer.fixture(name), client())
        assert.is_nil(err)
        assert.are.equal(want.text, r.text)
        assert.is_nil(r.refusal)
        assert.is_nil(r.thinking)
        assert.are.equal(want.finish_reason, r.finish_reason)
        assert.are.same({ input_tokens = want.input_tokens, output_tokens = want.output_tokens, cached_input_tokens = 0 },
          r.usage)
        local calls = want.tool_calls or {}
        assert.are.equal(#calls, #r.tool_calls)
        for i, c in ipairs(calls) do
          local got = r.tool_calls[i]
          assert.are.equal(c.id, got.id)
          assert.are.equal(c.name, got.name)
          assert.are.same(c.arguments, got.arguments)
          assert.are.same(c.arguments, json.decode(got.arguments_json))
          assert.is_nil(got.arguments_error)
        end
        if #calls == 0 then assert.are.equal("[]", json.encode(r.tool_calls)) end
        assert.are.equal("message", r.raw.type)
        assert.are.equal(want.id, r.raw.id)
        assert.are.equal(want.model, r.raw.model)
      end)
    end

    for name, want in pairs(failed) do
      it("reads " .. name .. " as an http error", function()
        local r, err = anthropic.read(transfer.fixture(name), client({ api_key = "sk-ant-never-shown" }))
        assert.is_nil(r)
        assert.is_true(errors.is(err))
        assert.are.equal("http", err.kind)
        assert.are.equal(want.status, err.status)
        assert.are.equal(want.message, err.message)
        assert.are.equal(want.provider_type, err.provider_type)
        assert.are.equal(want.request_id, err.request_id)
        assert.is_nil(err.provider_code)
        assert.is_nil(err.param)
        assert.are.equal("owl: http error 404: model: claude-sonet-4-5 (not_found_error)", tostring(err))
      end)
    end

    it("reads anthropic-09's forced tool as the answer when the client writes structured output as a tool", function()
      local request = { messages = msgs(), structured = { name = "final_result", schema = SCHEMA } }
      local r = assert(anthropic.read(transfer.fixture("anthropic-09-tool-use-structured.json"),
        client({ structured = "tool" }), request))
      assert.are.same({ city = "Mexico City", country = "Mexico" }, json.decode(r.text))
      assert.are.equal("stop", r.finish_reason)
      assert.are.equal(0, #r.tool_calls)
      assert.are.equal("[]", json.encode(r.tool_calls))
      -- in the default mode, or without the request, it stays a tool call
      for _, args in ipairs({ { client(), request }, { client({ structured = "tool" }) },
                              { client({ structured = "tool" }), { messages = msgs() } } }) do
        local plain = assert(anthropic.read(transfer.fixture("anthropic-09-tool-use-structured.json"), args[1], args[2]))
        assert.is_nil(plain.text)
        assert.are.equal("tool_calls", plain.finish_reason)
        assert.are.equal(1, #plain.tool_calls)
      end
    end)
  end)

  describe("read, on hand-made answers", function()
    it("joins text blocks as they are and thinking blocks with a blank line, skipping other blocks", function()
      local r = assert(anthropic.read(message{ content = {
        { type = "thinking", thinking = "Let me see.", signature = "sig1" },
        { type = "redacted_thinking", data = "opaque" },
        { type = "text", text = "The answer " },
        { type = "server_tool_use", id = "srv_1", name = "web_search", input = { query = "q" } },
        { type = "text", text = "is 42." },
        { type = "thinking", thinking = "Done.", signature = "sig2" },
      } }, client()))
      assert.are.equal("The answer is 42.", r.text)
      assert.are.equal("Let me see.\n\nDone.", r.thinking)
      assert.are.equal(0, #r.tool_calls)
    end)

    it("normalize, the seam a stream reader shares, reads a message table as read does", function()
      local m = { type = "message", content = { { type = "text", text = "hi" } }, stop_reason = "max_tokens",
                  usage = { input_tokens = 1, output_tokens = 2 } }
      local r = anthropic.normalize(m, client())
      assert.are.same({ text = "hi", finish_reason = "length", usage = { input_tokens = 1, output_tokens = 2,
        cached_input_tokens = 0 } }, { text = r.text, finish_reason = r.finish_reason, usage = r.usage })
      assert.are.equal(m, r.raw)
      assert.are.same(r.usage, assert(anthropic.read(transfer.finished(200, {}, json.encode(m)), client())).usage)
      local odd = anthropic.normalize({ content = "not blocks" }, client())
      assert.is_nil(odd.text)
      assert.are.equal(0, #odd.tool_calls)
    end)

    it("maps every stop_reason", function()
      local want = { end_turn = "stop", stop_sequence = "stop", max_tokens = "length", tool_use = "tool_calls",
                     refusal = "refusal", model_context_window_exceeded = "length", pause_turn = "pause_turn",
                     something_new = "something_new" }
      for reason, finish in pairs(want) do
        local r = assert(anthropic.read(message{ stop_reason = reason }, client()))
        assert.are.equal(finish, r.finish_reason, reason)
      end
      assert.is_nil(assert(anthropic.read(message{ stop_reason = json.null }, client())).finish_reason)
    end)

    it("reads a refusal's text as the refusal, else its stop_details explanation, else says so", function()
      local r = assert(anthropic.read(message{ stop_reason = "refusal",
        content = { { type = "text", text = "I can't help with that." } } }, client()))
      assert.are.equal("I can't help with that.", r.refusal)
      assert.is_nil(r.text)
      assert.are.equal("refusal", r.finish_reason)
      -- the shape anthropic-06 (streaming) shows: no content, stop_details
      local r2 = assert(anthropic.read(message{ stop_reason = "refusal", stop_details = {
        type = "refusal", category = "reasoning_extraction", explanation = "This request was blocked." } }, client()))
      assert.are.equal("This request was blocked.", r2.refusal)
      assert.is_nil(r2.text)
      local r3 = assert(anthropic.read(message{ stop_reason = "refusal", stop_details = json.null }, client()))
      assert.are.equal("the model refused (stop_reason refusal) without saying why", r3.refusal)
    end)

    it("counts cached input in input_tokens, as OpenAI does, and cache reads as cached_input_tokens", function()
      local r = assert(anthropic.read(message{ usage = { input_tokens = 6, cache_creation_input_tokens = 100,
        cache_read_input_tokens = 2000, output_tokens = 30 } }, client()))
      assert.are.same({ input_tokens = 2106, output_tokens = 30, cached_input_tokens = 2000 }, r.usage)
      for _, usage in ipairs({ json.null, { input_tokens = json.null } }) do
        local r2 = assert(anthropic.read(message{ usage = usage }, client()))
        assert.are.same({ input_tokens = 0, output_tokens = 0, cached_input_tokens = 0 }, r2.usage)
      end
      local bare = transfer.finished(200, {}, '{"type":"message","content":[]}')
      assert.are.same({ input_tokens = 0, output_tokens = 0, cached_input_tokens = 0 }, assert(anthropic.read(bare, client())).usage)
    end)

    it("keeps a tool call whose input is not an object, with the reason", function()
      local r = assert(anthropic.read(message{ stop_reason = "tool_use", content = {
        { type = "tool_use", id = "t1", name = "f", input = json.array({ 1 }) },
        { type = "tool_use", id = "t2", name = "g", input = {} },
        { type = "tool_use", id = "t3", name = "h" },
      } }, client()))
      assert.are.equal(3, #r.tool_calls)
      assert.is_nil(r.tool_calls[1].arguments)
      assert.are.equal("[1]", r.tool_calls[1].arguments_json)
      assert.is_string(r.tool_calls[1].arguments_error)
      assert.are.same({}, r.tool_calls[2].arguments)
      assert.are.equal("{}", r.tool_calls[2].arguments_json)
      assert.is_nil(r.tool_calls[2].arguments_error)
      assert.is_string(r.tool_calls[3].arguments_error)
      assert.is_nil(r.tool_calls[3].arguments_json)
      assert.is_nil(r.text)
    end)

    it("takes the forced tool's input as the answer even after other blocks, and keeps the other calls", function()
      local c = client({ structured = "tool" })
      local request = { messages = msgs(), structured = { name = "plan", schema = SCHEMA } }
      local r = assert(anthropic.read(message{ stop_reason = "tool_use", content = {
        { type = "text", text = "Here is the plan." },
        { type = "tool_use", id = "t1", name = "lookup", input = { q = "x" } },
        { type = "tool_use", id = "t2", name = "plan", input = { objective = "o", subtasks = json.array({}) } },
      } }, c, request))
      local answer = assert(json.decode(r.text))
      assert.are.equal("o", answer.objective)
      assert.is_true(json.is_array(answer.subtasks))
      assert.are.equal(0, #answer.subtasks)
      assert.are.equal(1, #r.tool_calls)
      assert.are.equal("lookup", r.tool_calls[1].name)
      assert.are.equal("stop", r.finish_reason)
      -- cut off inside the tool: still a length, with what input there was
      local cut = assert(anthropic.read(message{ stop_reason = "max_tokens", content = {
        { type = "tool_use", id = "t2", name = "plan", input = {} } } }, c, request))
      assert.are.equal("length", cut.finish_reason)
      assert.are.equal("{}", cut.text)
    end)

    it("reads a 529 overloaded_error as an http error with its status and request id", function()
      local r, err = anthropic.read(transfer.finished(529, { ["request-id"] = "req_from_header" },
        '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_from_body"}'), client())
      assert.is_nil(r)
      assert.are.equal("http", err.kind)
      assert.are.equal(529, err.status)
      assert.are.equal("Overloaded", err.message)
      assert.are.equal("overloaded_error", err.provider_type)
      assert.are.equal("req_from_header", err.request_id) -- the header first
      assert.are.equal("owl: http error 529: Overloaded (overloaded_error)", tostring(err))
    end)

    it("keeps retry-after as a number on a 429", function()
      local _, err = anthropic.read(transfer.finished(429, { ["retry-after"] = "12" },
        '{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'), client())
      assert.are.equal(429, err.status)
      assert.are.equal(12, err.retry_after)
      assert.are.equal("rate_limit_error", err.provider_type)
    end)

    it("reads a 200 that carries an error object as a protocol error with its text", function()
      local _, err = anthropic.read(transfer.finished(200, { ["request-id"] = "req_9" },
        '{"type":"error","error":{"type":"api_error","message":"upstream broke"}}'), client())
      assert.are.equal("protocol", err.kind)
      assert.are.equal("the response has no content array: upstream broke", err.message)
      assert.are.equal("api_error", err.provider_type)
      assert.are.equal("req_9", err.request_id)
    end)

    it("reports JSON without a content array as a protocol error", function()
      for _, body in ipairs({ '{"type":"message"}', '{"content":null}', '{"content":"text"}', '[1,2]', '"text"', 'null' }) do
        local r, err = anthropic.read(transfer.finished(200, {}, body), client())
        assert.is_nil(r)
        assert.are.equal("protocol", err.kind)
        assert.are.equal("the response has no content array", err.message, body)
      end
    end)

    it("checks the status before the body: an HTML error page is an http error", function()
      local _, err = anthropic.read(transfer.finished(502, { ["request-id"] = "req_1" }, "<html>Bad gateway</html>"), client())
      assert.are.equal("http", err.kind)
      assert.are.equal(502, err.status)
      assert.are.equal("HTTP 502: <html>Bad gateway</html>", err.message)
      assert.are.equal("req_1", err.request_id)
      local _, empty = anthropic.read(transfer.finished(500, {}, ""), client())
      assert.are.equal("HTTP 500 with an empty body", empty.message)
    end)

    it("reports a 200 body that is empty or not JSON, and no response at all, as protocol errors", function()
      local _, err = anthropic.read(transfer.finished(200, {}, "<html>hello</html>"), client())
      assert.are.equal("protocol", err.kind)
      assert.truthy(err.message:find("not JSON", 1, true))
      assert.truthy(err.message:find("<html>hello</html>", 1, true))
      local _, empty = anthropic.read(transfer.finished(200, {}, ""), client())
      assert.are.equal("the response body is empty (HTTP 200)", empty.message)
      local _, none = anthropic.read(transfer.finished(0, {}, ""), client())
      assert.are.equal("no HTTP response", none.message)
    end)

    it("redacts the client's key from an error message, a quoted body and the request id", function()
      local key = "sk-ant-api03-SECRET.value+42"
      local c = client({ api_key = key })
      local _, err = anthropic.read(transfer.finished(401, { ["request-id"] = "req-" .. key },
        '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ' .. key .. '"}}'), c)
      assert.are.equal("invalid x-api-key: [redacted]", err.message)
      assert.are.equal("req-[redacted]", err.request_id)
      assert.are.equal("authentication_error", err.provider_type)
      local _, err2 = anthropic.read(transfer.finished(403, {}, string.rep("-", 195) .. key), c)
      assert.is_nil(err2.message:find("SECRET", 1, true))
    end)
  end)
end)
