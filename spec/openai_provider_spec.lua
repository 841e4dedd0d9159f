-- spec/openai_provider_spec.lua: owl.providers.openai. build, body and
-- structured output are checked field by field; read is run against every recorded
-- non-streaming OpenAI exchange in ../shared/fixtures/real/, and the
-- expected values below were written out by reading each fixture, so a
-- reader that got the shape wrong cannot agree with itself.
local errors = require("owl.errors")
local openai = require("owl.providers.openai")
local transfer = require("support.transfer")

local function client(fields)
  local c = { base_url = "https://api.example.test/v1", model = "gpt-test", timeout = 600, connect_timeout = 5 }
  for k, v in pairs(fields or {}) do c[k] = v end
  return c
end

local function msgs() return { { role = "user", content = "hi" } } end

describe("owl.providers.openai", function()
  describe("build", function()
    it("joins base_url and the endpoint with one slash", function()
      for _, base in ipairs({ "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1//" }) do
        local spec = openai.build(client({ base_url = base }), { messages = msgs() })
        assert.are.equal("http://127.0.0.1:8080/v1/chat/completions", spec.url)
      end
    end)

    it("sends Content-Type, the key, then the client's headers in sorted order", function()
      local headers = { ["X-Zeta"] = "z", ["OpenAI-Organization"] = "org-1", ["X-Alpha"] = 7 }
      local spec = openai.build(client({ api_key = "sk-test-1", headers = headers }), { messages = msgs() })
      assert.are.same({
        "Content-Type: application/json",
        "Authorization: Bearer sk-test-1",
        "OpenAI-Organization: org-1",
        "X-Alpha: 7",
        "X-Zeta: z",
      }, spec.headers)
    end)

    it("sends no Authorization header without a key", function()
      for _, key in ipairs({ "none", "" }) do
        local c = client({ api_key = key })
        if key == "none" then c.api_key = nil end
        local spec = openai.build(c, { messages = msgs() })
        assert.are.same({ "Content-Type: application/json" }, spec.headers)
      end
    end)

    it("lets a client header replace owl's of the same name", function()
      local spec = openai.build(client({ api_key = "sk-x", headers = { authorization = "Token abc" } }), { messages = msgs() })
      assert.are.same({ "Content-Type: application/json", "authorization: Token abc" }, spec.headers)
    end)

    it("raises on a header that could smuggle another one in", function()
      assert.has_error(function()
        openai.build(client({ headers = { ["X-A"] = "v\r\nX-Evil: 1" } }), { messages = msgs() })
      end)
      assert.has_error(function()
        openai.build(client({ headers = { ["X-A"] = true } }), { messages = msgs() })
      end)
    end)

    it("uses the client's model when the request names none, the request's otherwise", function()
      assert.are.equal("gpt-test", openai.build(client(), { messages = msgs() }).body.model)
      assert.are.equal("o3", openai.build(client(), { model = "o3", messages = msgs() }).body.model)
      local no_model = client()
      no_model.model = nil
      assert.are.equal("o3", openai.build(no_model, { model = "o3", messages = msgs() }).body.model)
    end)

    it("body gives the body build puts in its spec, alone", function()
      local request = { messages = msgs(), temperature = 0 }
      local body = openai.body(client(), request)
      assert.are.same(openai.build(client(), request).body, body)
      assert.are_not.equal(request, body)
      assert.is_nil(request.model)
      assert.has_error(function() openai.body(client(), { prompt = "x" }) end,
        "owl.providers.openai: request has no messages")
      assert.has_error(function() openai.body(nil, request) end,
        "owl.providers.openai: body needs a client table, got nil")
    end)

    it("raises when no model is named anywhere", function()
      local no_model = client()
      no_model.model = nil
      assert.has_error(function() openai.build(no_model, { messages = msgs() }) end,
        "owl.providers.openai: no model: set the client's model or the request's")
    end)

    it("passes every other request field through unchanged and adds nothing", function()
      local tools = { { type = "function", ["function"] = { name = "f", parameters = { type = "object" } } } }
      local messages = msgs()
      local request = { messages = messages, temperature = 0.25, max_tokens = 10, reasoning_effort = "low",
                        tools = tools, some_future_field = { a = 1 } }
      local spec = openai.build(client(), request)
      assert.are.same({ messages = true, temperature = true, max_tokens = true, reasoning_effort = true,
                        tools = true, some_future_field = true, model = true },
        (function() local keys = {} for k in pairs(spec.body) do keys[k] = true end return keys end)())
      assert.are.equal(messages, spec.body.messages)
      assert.are.equal(tools, spec.body.tools)
      assert.are.equal(0.25, spec.body.temperature)
      assert.are.equal(10, spec.body.max_tokens)
      assert.are.equal("low", spec.body.reasoning_effort)
      -- the caller's table is not the body and is left alone
      assert.are_not.equal(request, spec.body)
      assert.is_nil(request.model)
    end)

    it("copies the timeouts and the CA file from the client", function()
      local spec = openai.build(client({ timeout = 30, connect_timeout = 2, ca_file = "/tmp/ca.pem" }), { messages = msgs() })
      assert.are.equal(30, spec.timeout)
      assert.are.equal(2, spec.connect_timeout)
      assert.are.equal("/tmp/ca.pem", spec.ca_file)
    end)

    it("raises on a request that is not a table or has no messages", function()
      assert.has_error(function() openai.build(client(), "hi") end,
        "owl.providers.openai: request must be a table, got string")
      assert.has_error(function() openai.build(client(), { prompt = "hi" }) end,
        "owl.providers.openai: request has no messages")
      assert.has_error(function() openai.build(nil, { messages = msgs() }) end)
    end)
  end)

  describe("structured output", function()
    it("writes the neutral structured = { name, schema } as a strict json_schema response_format", function()
      local schema = { type = "object", properties = {}, additionalProperties = false }
      local request = { messages = msgs(), temperature = 0, structured = { name = "plan", schema = schema } }
      local body = openai.body(client(), request)
      assert.are.same({ type = "json_schema", json_schema = { name = "plan", strict = true, schema = schema } },
        body.response_format)
      assert.are.equal(schema, body.response_format.json_schema.schema)
      assert.is_nil(body.structured) -- not a field OpenAI knows
      assert.are.equal(0, body.temperature)
      assert.are.equal(request.messages, body.messages)
      assert.is_nil(request.response_format) -- the request is not changed
      assert.are.same(body.response_format, openai.build(client(), request).body.response_format)
      -- a request's own response_format wins
      local own = { type = "json_object" }
      assert.are.equal(own, openai.body(client(), { messages = msgs(), response_format = own,
        structured = { name = "plan", schema = schema } }).response_format)
    end)

    it("raises on a name OpenAI would reject or a schema that is not a table", function()
      local function body(structured) return openai.body(client(), { messages = msgs(), structured = structured }) end
      assert.has_error(function() body({ name = "my plan", schema = {} }) end,
        'owl.providers.openai: schema name must be 1 to 64 letters, digits, \'_\' or \'-\', got "my plan"')
      assert.has_error(function() body({ name = string.rep("a", 65), schema = {} }) end)
      assert.has_error(function() body({ name = "plan", schema = "{}" }) end,
        "owl.providers.openai: request.structured.schema must be a table, got string")
      assert.has_error(function() body("plan") end,
        "owl.providers.openai: request.structured must be a table { name, schema }, got string")
    end)
  end)

  describe("read, on the recorded exchanges", function()
    -- Written out from each fixture's body.
    local ok = {
      ["openai-01-plain-completion.json"] = {
        text = "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
          .. "I recommend checking a reliable weather website or app like the Weather Channel or a local news station.",
        finish_reason = "stop", input_tokens = 14, output_tokens = 37,
      },
      ["openai-02-json-schema-structured-output.json"] = {
        text = '{"city":"San Francisco","temperature":65,"units":"f"}',
        finish_reason = "stop", input_tokens = 79, output_tokens = 14,
      },
      ["openai-03-refusal-structured-output.json"] = {
        refusal = "I'm very sorry, but I can't assist with that.",
        finish_reason = "stop", input_tokens = 79, output_tokens = 12,
      },
      ["openai-04-tool-call.json"] = {
        finish_reason = "tool_calls", input_tokens = 76, output_tokens = 24,
        tool_calls = { {
          id = "call_Y6qJ7ofLgOrBnMD5WbVAeiRV", name = "GetWeatherArgs",
          arguments = { city = "Edinburgh", country = "UK", units = "c" },
          arguments_json = '{"city":"Edinburgh","country":"UK","units":"c"}',
        } },
      },
      ["openai-05-length-truncated-json.json"] = {
        text = '{"', finish_reason = "length", input_tokens = 79, output_tokens = 1,
      },
      ["openai-14-json-schema-with-tools-final-answer.json"] = {
        text = '{"city":"Mexico City","country":"Mexico"}',
        finish_reason = "stop", input_tokens = 92, output_tokens = 15,
      },
    }
    local failed = {
      ["openai-16-error-404-model-not-found.json"] = {
        status = 404, message = "The model `gpt-5.2-proo` does not exist or you do not have access to it.",
        provider_type = "invalid_request_error", provider_code = "model_not_found",
      },
      ["openai-17-error-400-unsupported-value.json"] = {
        status = 400, message = "Unsupported value: 'messages[0].role' does not support 'system' with this model.",
        provider_type = "invalid_request_error", provider_code = "unsupported_value", param = "messages[0].role",
      },
      ["openai-18-error-400-invalid-param.json"] = {
        status = 400, message = "Web search options not supported with this model.",
        provider_type = "invalid_request_error", param = "web_search_options",
      },
    }

    it("reads cached input tokens from usage.prompt_tokens_details", function()
      local body = '{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"ok"}}],'
        .. '"usage":{"prompt_tokens":2006,"completion_tokens":300,"prompt_tokens_details":{"cached_tokens":1920}}}'
      local r = assert(openai.read(transfer.finished(200, {}, body), client()))
      assert.are.same({ input_tokens = 2006, output_tokens = 300, cached_input_tokens = 1920 }, r.usage)
    end)

    it("covers every non-streaming OpenAI fixture", function()
      local names = transfer.recorded("openai")
      for _, name in ipairs(names) do
        assert.is_truthy(ok[name] or failed[name], "no expectation written for " .. name)
      end
      assert.are.equal(9, #names)
    end)

    for name, want in pairs(ok) do
      it("reads " .. name, function()
        local res = transfer.fixture(name)
        local r, err = openai.read(res, client())
        assert.is_nil(err)
        assert.are.equal(want.text, r.text)
        assert.are.equal(want.refusal, r.refusal)
        assert.are.equal(want.finish_reason, r.finish_reason)
        assert.are.equal(want.input_tokens, r.usage.input_tokens)
        assert.are.equal(want.output_tokens, r.usage.output_tokens)
        assert.are.equal(0, r.usage.cached_input_tokens) -- none of these hit the prompt cache
        local calls = want.tool_calls or {}
        assert.are.equal(#calls, #r.tool_calls)
        for i, c in ipairs(calls) do
          assert.are.equal(c.id, r.tool_calls[i].id)
          assert.are.equal(c.name, r.tool_calls[i].name)
          assert.are.same(c.arguments, r.tool_calls[i].arguments)
          assert.are.equal(c.arguments_json, r.tool_calls[i].arguments_json)
          assert.is_nil(r.tool_calls[i].arguments_error)
        end
        assert.are.equal("table", type(r.raw))
        assert.are.equal("chat.completion", r.raw.object)
      end)
    end

    for name, want in pairs(failed) do
      it("reads " .. name .. " as an http error", function()
        local r, err = openai.read(transfer.fixture(name), client({ api_key = "sk-never-shown" }))
        assert.is_nil(r)
        assert.is_true(errors.is(err))
        assert.are.equal("http", err.kind)
        assert.are.equal(want.status, err.status)
        assert.are.equal(want.message, err.message)
        assert.are.equal(want.provider_type, err.provider_type)
        -- JSON null (code in 18, param in 16) reads as absent
        assert.are.equal(want.provider_code, err.provider_code)
        assert.are.equal(want.param, err.param)
      end)
    end

    it("turns the 404 into one readable line", function()
      local _, err = openai.read(transfer.fixture("openai-16-error-404-model-not-found.json"), client())
      assert.are.equal("owl: http error 404: The model `gpt-5.2-proo` does not exist or you do not have access to it."
        .. " (invalid_request_error, model_not_found)", tostring(err))
    end)
  end)

  describe("read, on hand-made answers", function()
    it("reports a 200 body that is not JSON as a protocol error quoting it", function()
      local r, err = openai.read(transfer.finished(200, {}, "<html>upstream says hello</html>"), client())
      assert.is_nil(r)
      assert.are.equal("protocol", err.kind)
      assert.truthy(err.message:find("not JSON", 1, true))
      assert.truthy(err.message:find("<html>upstream says hello</html>", 1, true))
    end)

    it("cuts a long body in the message", function()
      local _, err = openai.read(transfer.finished(200, {}, "x" .. string.rep("y", 5000)), client())
      assert.are.equal("protocol", err.kind)
      assert.is_true(#err.message < 400)
    end)

    it("reports JSON without choices[1].message as a protocol error", function()
      for _, body in ipairs({ '{"id":"x","choices":[]}', '{"choices":[{"index":0}]}', '[1,2]', '"text"', '{"choices":null}' }) do
        local r, err = openai.read(transfer.finished(200, {}, body), client())
        assert.is_nil(r)
        assert.are.equal("protocol", err.kind)
        assert.truthy(err.message:find("choices[1].message", 1, true), err.message)
      end
    end)

    it("reads a 200 that carries an error object as a protocol error with its text", function()
      local _, err = openai.read(transfer.finished(200, {},
        '{"error":{"message":"upstream overloaded","type":"server_error","code":502}}'), client())
      assert.are.equal("protocol", err.kind)
      assert.truthy(err.message:find("upstream overloaded", 1, true))
      assert.are.equal("server_error", err.provider_type)
    end)

    it("checks the status before the body: an HTML error page is an http error", function()
      local r, err = openai.read(transfer.finished(502, { ["X-Request-Id"] = "req_1" }, "<html>Bad gateway</html>"), client())
      assert.is_nil(r)
      assert.are.equal("http", err.kind)
      assert.are.equal(502, err.status)
      assert.are.equal("HTTP 502: <html>Bad gateway</html>", err.message)
      assert.are.equal("req_1", err.request_id)
    end)

    it("says so when an error status comes with an empty body", function()
      local _, err = openai.read(transfer.finished(500, {}, ""), client())
      assert.are.equal("http", err.kind)
      assert.are.equal("HTTP 500 with an empty body", err.message)
    end)

    it("keeps Retry-After as a number", function()
      local _, err = openai.read(transfer.finished(429, { ["Retry-After"] = "7" },
        '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded","param":null}}'), client())
      assert.are.equal(429, err.status)
      assert.are.equal(7, err.retry_after)
      assert.are.equal("rate_limit_exceeded", err.provider_code)
    end)

    it("redacts the client's key from a server error message", function()
      local key = "sk-proj-SECRET.value+42"
      local c = client({ api_key = key })
      local _, err = openai.read(transfer.finished(401, {},
        '{"error":{"message":"Incorrect API key provided: sk-proj-SECRET.value+42. You can find your key...",' ..
        '"type":"invalid_request_error","code":"invalid_api_key","param":null}}'), c)
      assert.are.equal("Incorrect API key provided: [redacted]. You can find your key...", err.message)
      assert.is_nil(tostring(err):find(key, 1, true))
      -- and from a body quoted as text, even past the quoting limit
      local _, err2 = openai.read(transfer.finished(403, {}, string.rep("-", 195) .. key), c)
      assert.is_nil(err2.message:find("sk-proj", 1, true))
      local _, err3 = openai.read(transfer.finished(200, {}, "echo: Authorization: Bearer " .. key), c)
      assert.is_nil(err3.message:find("SECRET", 1, true))
    end)

    it("keeps a tool call whose arguments are not valid JSON, with the reason", function()
      local body = '{"choices":[{"message":{"content":null,"tool_calls":['
        .. '{"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"a\\": "}},'
        .. '{"id":"c2","type":"function","function":{"name":"g","arguments":"[1]"}},'
        .. '{"id":"c3","type":"function","function":{"name":"h","arguments":"{}"}}'
        .. ']},"finish_reason":"tool_calls"}]}'
      local r = assert(openai.read(transfer.finished(200, {}, body), client()))
      assert.are.equal(3, #r.tool_calls)
      assert.is_nil(r.tool_calls[1].arguments)
      assert.are.equal('{"a": ', r.tool_calls[1].arguments_json)
      assert.is_string(r.tool_calls[1].arguments_error)
      assert.is_nil(r.tool_calls[2].arguments)
      assert.is_string(r.tool_calls[2].arguments_error)
      assert.are.same({}, r.tool_calls[3].arguments)
      assert.is_nil(r.tool_calls[3].arguments_error)
      assert.is_nil(r.text)
      assert.are.equal("tool_calls", r.finish_reason)
    end)

    it("counts zero tokens when usage is missing or null", function()
      for _, usage in ipairs({ "", ',"usage":null', ',"usage":{"prompt_tokens":null}' }) do
        local body = '{"choices":[{"message":{"content":"ok"},"finish_reason":null}]' .. usage .. "}"
        local r = assert(openai.read(transfer.finished(200, {}, body), client()))
        assert.are.equal("ok", r.text)
        assert.is_nil(r.finish_reason)
        assert.are.equal(0, r.usage.input_tokens)
        assert.are.equal(0, r.usage.output_tokens)
        assert.are.equal(0, #r.tool_calls)
      end
    end)

    it("reports a transfer with no HTTP response as a protocol error", function()
      local _, err = openai.read(transfer.finished(0, {}, ""), client())
      assert.are.equal("protocol", err.kind)
    end)
  end)
end)
