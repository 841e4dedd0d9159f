-- spec/anthropic_client_spec.lua: owl.client{ provider = "anthropic" } over
-- real HTTP against the mock's POST /v1/messages: options and environment,
-- what goes on the wire, the normalized response, errors, every recorded
-- non-streaming Anthropic exchange in ../shared/fixtures/real/ replayed byte
-- for byte (expected values written out from reading the recordings), and a
-- server that echoes the key in every error field.
local owl = require("owl")
local errors = require("owl.errors")
local mock = require("support.mock")

local MSG = { { role = "user", content = "hi" } }
local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

describe("owl.client with provider anthropic", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(extra)
    -- max_retries = 0: these specs read one failure; spec/retry_spec.lua retries
    local o = { provider = "anthropic", base_url = server.base, api_key = "sk-ant-test-123456", model = "claude-test",
                max_retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  describe("options", function()
    -- A child Lua with its own environment: what owl.client{provider =
    -- "anthropic"} takes from it. The child keeps LD_PRELOAD: under check-mem's
    -- ASan run it loads the same sanitized build as this process.
    local function from_env(env)
      local code = 'local c = require("owl").client{ provider = "anthropic", model = "m" } '
        .. 'io.write(tostring(c.api_key), " ", c.base_url, " ", tostring(c.structured))'
      local build = os.getenv("OWL_BUILD_DIR") or ("build/" .. (type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")))
      local p = assert(io.popen("env -u ANTHROPIC_API_KEY -u ANTHROPIC_BASE_URL " .. env
        .. " LUA_CPATH='" .. build .. "/?.so' " .. LUA .. " -e " .. mock.shell_quote(code) .. " 2>&1"))
      local out = p:read("*a")
      p:close()
      return out
    end

    it("takes the key from ANTHROPIC_API_KEY and the base URL from ANTHROPIC_BASE_URL, without /v1 by default", function()
      assert.equal("nil https://api.anthropic.com output_config", from_env(""))
      assert.equal("sk-ant-env http://127.0.0.1:9 output_config",
        from_env("ANTHROPIC_API_KEY=sk-ant-env ANTHROPIC_BASE_URL=http://127.0.0.1:9 OPENAI_API_KEY=sk-openai"))
      assert.equal("nil https://api.anthropic.com output_config", from_env("ANTHROPIC_API_KEY= ANTHROPIC_BASE_URL="))
    end)

    it("checks the structured option: output_config (default) or tool, and only for a provider that has ways", function()
      assert.equal("output_config", client().structured)
      assert.equal("tool", client{ structured = "tool" }.structured)
      assert.has_error(function() client{ structured = "json_mode" } end,
        "owl.client: option 'structured' must be 'output_config' or 'tool' for provider 'anthropic', got 'json_mode'")
      assert.has_error(function() client{ structured = true } end,
        "owl.client: option 'structured' must be a string, got boolean")
      assert.has_error(function() owl.client{ provider = "openai", structured = "tool" } end,
        "owl.client: option 'structured' is not for provider 'openai' (it has one way)")
      assert.is_nil(owl.client{ provider = "openai" }.structured)
    end)

    it("counts x-api-key as a credential and never shows the key", function()
      local c = client{ headers = { ["X-Api-Key"] = "gateway-key-777" } }
      assert.is_nil(tostring(c):find("sk-ant-test", 1, true))
      assert.matches("^owl%.client %(anthropic, ", tostring(c))
      assert.same({ "sk-ant-test-123456", "gateway-key-777" }, c.secrets)
    end)
  end)

  describe("chat", function()
    it("posts to /v1/messages with x-api-key, anthropic-version and max_tokens, the system at the top", function()
      local res = assert(client():chat{ messages = { { role = "system", content = "Be brief." }, MSG[1] }, temperature = 0 })
      assert.equal("```\nhi\n```", res.text)
      assert.equal("stop", res.finish_reason)
      assert.is_nil(res.refusal)
      assert.is_nil(res.thinking)
      assert.equal(0, #res.tool_calls)
      assert.same({ input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, res.usage)
      assert.equal("message", res.raw.type)
      local req = server:requests(1)[1]
      assert.equal("/v1/messages", req.path)
      assert.equal("sk-ant-test-123456", req.headers["x-api-key"])
      assert.equal("2023-06-01", req.headers["anthropic-version"])
      assert.equal("application/json", req.headers["content-type"])
      assert.is_nil(req.headers.authorization)
      local sent = mock.json_decode(req.body)
      assert.same({ "max_tokens", "messages", "model", "system", "temperature" }, mock.sorted_keys(sent))
      assert.equal("Be brief.", sent.system)
      assert.equal(1, #sent.messages)
      assert.same({ role = "user", content = "hi" }, sent.messages[1])
      assert.equal(16384, sent.max_tokens)
      assert.equal("claude-test", sent.model)
    end)

    it("sends no x-api-key without a key", function()
      assert(owl.client{ provider = "anthropic", base_url = server.base, api_key = "", model = "m" }:chat{ messages = MSG })
      assert.is_nil(server:requests(1)[1].headers["x-api-key"])
    end)

    for _, mode in ipairs({ "output_config", "tool" }) do
      it("returns a structured answer as JSON text with structured = '" .. mode .. "'", function()
        local schema = owl.schema.to_json(owl.plan_schema)
        local res = assert(client{ structured = mode, headers = { ["x-mock-subtasks"] = "2" } }:chat{
          messages = MSG, structured = { name = "plan", schema = schema } })
        local plan = assert(owl.json.decode(res.text))
        assert.equal("Mock plan for: hi", plan.objective)
        assert.equal(2, #plan.subtasks)
        assert.equal("stop", res.finish_reason)
        assert.equal(0, #res.tool_calls)
        local sent = mock.json_decode(server:requests(1)[1].body)
        if mode == "tool" then
          assert.same({ type = "tool", name = "plan" }, sent.tool_choice)
          assert.equal("plan", sent.tools[1].name)
          assert.same({ "objective", "subtasks" }, sent.tools[1].input_schema.required)
          assert.is_nil(sent.output_config)
        else
          assert.equal("json_schema", sent.output_config.format.type)
          assert.same({ "objective", "subtasks" }, sent.output_config.format.schema.required)
          assert.is_nil(sent.tools)
        end
        assert.is_nil(sent.structured)
      end)
    end
  end)

  describe("errors", function()
    it("a 500 is an http error with Anthropic's error type and the body's request_id", function()
      local res, err = client{ headers = { ["x-mock-fault"] = "500" } }:chat{ messages = MSG }
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
      assert.equal("api_error", err.provider_type)
      assert.matches("^req_mock", err.request_id)
      assert.matches("^owl: http error 500: The server had an error", tostring(err))
    end)

    it("a 429 keeps its retry-after", function()
      local _, err = client{ headers = { ["x-mock-fault"] = "429", ["x-mock-retry-after"] = "3" } }:chat{ messages = MSG }
      assert.equal(429, err.status)
      assert.equal("rate_limit_error", err.provider_type)
      assert.equal(3, err.retry_after)
    end)

    it("a 529 overloaded_error is an http error with status 529 and the request-id header", function()
      server:script{ { status = 529, headers = { ["request-id"] = "req_overloaded_1" },
        body = { type = "error", error = { type = "overloaded_error", message = "Overloaded" } } } }
      local _, err = client():chat{ messages = MSG }
      assert.equal("http", err.kind)
      assert.equal(529, err.status)
      assert.equal("overloaded_error", err.provider_type)
      assert.equal("Overloaded", err.message)
      assert.equal("req_overloaded_1", err.request_id)
    end)

    it("a 200 body that is not JSON, or empty, is a protocol error", function()
      local _, err = client{ headers = { ["x-mock-fault"] = "malformed" } }:chat{ messages = MSG }
      assert.equal("protocol", err.kind)
      local _, err2 = client{ headers = { ["x-mock-fault"] = "empty" } }:chat{ messages = MSG }
      assert.equal("protocol", err2.kind)
    end)
  end)

  describe("recorded exchanges, replayed", function()
    local function replay(name, extra, request)
      local o = { headers = { ["x-mock-replay"] = mock.fixture_path(name) } }
      for k, v in pairs(extra or {}) do o[k] = v end
      return client(o):chat(request or { messages = { { role = "user", content = "replay " .. name } } })
    end

    it("anthropic-08: a plain message", function()
      local res = assert(replay("anthropic-08-plain-message.json"))
      assert.equal("The capital of France is Paris.", res.text)
      assert.equal("stop", res.finish_reason)
      assert.is_nil(res.refusal)
      assert.is_nil(res.thinking)
      assert.equal(0, #res.tool_calls)
      assert.same({ input_tokens = 20, output_tokens = 10, cached_input_tokens = 0 }, res.usage)
      assert.equal("claude-3-opus-20240229", res.raw.model)
      assert.equal("msg_01Fg1JVgvCYUHWsxrj9GkpEv", res.raw.id)
    end)

    it("anthropic-09: a tool_use block with its input as arguments", function()
      local res = assert(replay("anthropic-09-tool-use-structured.json"))
      assert.is_nil(res.text)
      assert.equal("tool_calls", res.finish_reason)
      assert.equal(1, #res.tool_calls)
      local call = res.tool_calls[1]
      assert.equal("toolu_01LZABsgreMefH2Go8D5PQbW", call.id)
      assert.equal("final_result", call.name)
      assert.same({ city = "Mexico City", country = "Mexico" }, call.arguments)
      assert.same({ city = "Mexico City", country = "Mexico" }, owl.json.decode(call.arguments_json))
      assert.same({ input_tokens = 497, output_tokens = 56, cached_input_tokens = 0 }, res.usage)
    end)

    it("anthropic-09: the same tool_use is the answer when it is the client's structured tool", function()
      local res = assert(replay("anthropic-09-tool-use-structured.json", { structured = "tool" }, {
        messages = MSG, structured = { name = "final_result", schema = { type = "object" } } }))
      assert.same({ city = "Mexico City", country = "Mexico" }, owl.json.decode(res.text))
      assert.equal("stop", res.finish_reason)
      assert.equal(0, #res.tool_calls)
    end)

    it("anthropic-10: 404 not_found_error, with the request_id its body carries", function()
      local res, err = replay("anthropic-10-error-404-not-found.json")
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal(404, err.status)
      assert.equal("not_found_error", err.provider_type)
      assert.equal("model: claude-sonet-4-5", err.message)
      assert.equal("req_011CdufXo8Y2LVfY2veyuQWG", err.request_id)
      assert.is_nil(err.provider_code)
      assert.is_nil(err.param)
    end)

    it("replays every non-streaming Anthropic fixture (these three)", function()
      local seen = {}
      for _, name in ipairs(mock.fixture_names()) do
        if name:find("^anthropic%-") and not mock.fixture(name).body:find("^event:") then seen[#seen + 1] = name end
      end
      assert.same({ "anthropic-08-plain-message.json", "anthropic-09-tool-use-structured.json",
                    "anthropic-10-error-404-not-found.json" }, seen)
    end)

    describe("as the orchestrator's answer", function()
      local function run_with(name, mode)
        server:script{ { replay = mock.fixture_path(name) } }
        -- max_replans = 0: one recorded answer, not asked for again
        return owl.run(client{ structured = mode }, "plan something", { max_replans = 0 })
      end

      it("text that is not JSON stops the run with kind 'invalid'", function()
        local _, err = run_with("anthropic-08-plain-message.json")
        assert.equal("invalid", err.kind)
        assert.matches("not JSON", err.message)
        assert.same({ calls = 1, input_tokens = 20, output_tokens = 10, cached_input_tokens = 0 },
          err.partial.usage.orchestrator)
      end)

      it("a tool call that is not the plan's tool leaves the run without text", function()
        local _, err = run_with("anthropic-09-tool-use-structured.json", "tool")
        assert.equal("protocol", err.kind)
        assert.equal("the orchestrator returned no text (finish_reason tool_calls)", err.message)
      end)

      it("an HTTP error stops the run and keeps the provider's fields", function()
        local _, err = run_with("anthropic-10-error-404-not-found.json")
        assert.equal("http", err.kind)
        assert.equal("not_found_error", err.provider_type)
        assert.equal(1, err.partial.usage.orchestrator.calls)
      end)
    end)
  end)

  describe("regression: a server that echoes the key in every error field", function()
    local KEY = "sk-ant-api03-hostile-KEY-0123456789"
    local SECRETS = { KEY, "gateway-x-api-key-777", "bearer-token-9" }

    local function hostile(extra_headers)
      local headers = { ["X-Api-Key"] = SECRETS[2], Authorization = "Bearer " .. SECRETS[3] }
      for k, v in pairs(extra_headers or {}) do headers[k] = v end
      return client{ api_key = KEY, headers = headers }
    end

    local function echo(status)
      local all = table.concat(SECRETS, " ")
      return {
        status = status,
        headers = { ["request-id"] = "req-" .. KEY, ["retry-after"] = SECRETS[2] },
        body = { type = "error", request_id = "body-" .. KEY,
                 error = { type = "type " .. SECRETS[2], message = "bad x-api-key " .. all,
                           code = "code " .. KEY, param = "param Bearer " .. SECRETS[3] } },
      }
    end

    local function strings_of(v, out, seen)
      out, seen = out or {}, seen or {}
      if type(v) == "string" then
        out[#out + 1] = v
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        if errors.is(v) then out[#out + 1] = tostring(v) end
        for k, x in pairs(v) do
          strings_of(k, out, seen)
          strings_of(x, out, seen)
        end
      end
      return out
    end

    local function assert_no_secret(where, v)
      for _, s in ipairs(strings_of(v)) do
        for _, secret in ipairs(SECRETS) do
          assert.is_nil(s:find(secret, 1, true), where .. " leaks " .. secret .. " in: " .. s:sub(1, 300))
        end
      end
    end

    for _, status in ipairs({ 401, 529, 200 }) do
      it("gets nothing through on a " .. status, function()
        server:script{ echo(status) }
        local res, err = hostile():chat{ messages = MSG }
        assert.is_nil(res)
        assert_no_secret("the error", err)
        assert.equal("type [redacted]", err.provider_type)
        assert.equal("code [redacted]", err.provider_code)
        assert.equal("param [redacted]", err.param) -- "Bearer <token>", the header's value, whole
        assert.equal("req-[redacted]", err.request_id)
        assert.equal("[redacted]", err.retry_after)
        assert.matches("bad x%-api%-key %[redacted%] %[redacted%] %[redacted%]", err.message)
        -- the request did carry them
        local sent = server:requests(1)[1].headers
        assert.equal(SECRETS[2], sent["x-api-key"]) -- the client's header replaced owl's
        assert.equal("Bearer " .. SECRETS[3], sent.authorization)
      end)
    end

    it("gets nothing through owl.run's error, its partial result or its events", function()
      server:script{ {}, echo(500), {} }
      local events = {}
      local result, err = owl.run(hostile{ ["x-mock-subtasks"] = "2" }, "problem",
        { on_event = function(name, ev) events[#events + 1] = { name, ev } end })
      assert.is_nil(result)
      assert.equal("worker", err.kind)
      assert_no_secret("owl.run", { err, events })
      assert.matches("%[redacted%]", tostring(err))
    end)

    it("redacts a refusal that quotes the key", function()
      server:script{ { body = { type = "message", role = "assistant", stop_reason = "refusal",
        content = { { type = "text", text = "I will not use " .. KEY } }, usage = { input_tokens = 1, output_tokens = 1 } } } }
      local _, err = owl.run(hostile(), "problem")
      assert.equal("refusal", err.kind)
      assert.equal("the orchestrator refused: I will not use [redacted]", err.message)
    end)
  end)
end)
