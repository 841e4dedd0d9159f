-- Every non-streaming OpenAI exchange in ../shared/fixtures/real/, replayed
-- byte for byte by the mock server and read by owl over real HTTP. The
-- expected values are written out here from reading the recordings, never
-- taken from a decode of the same body.
local owl = require("owl")
local mock = require("support.mock")

describe("recorded OpenAI exchanges, replayed", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  local function replay(name)
    local c = owl.client{ base_url = server.url, api_key = "sk-replay", model = "gpt-4o-2024-08-06",
                          headers = { ["x-mock-replay"] = mock.fixture_path(name) } }
    return c:chat{ messages = { { role = "user", content = "replay " .. name } } }
  end

  it("openai-01: a plain completion", function()
    local res = assert(replay("openai-01-plain-completion.json"))
    assert.equal("I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
      .. "I recommend checking a reliable weather website or app like the Weather Channel or a local news station.", res.text)
    assert.equal("stop", res.finish_reason)
    assert.is_nil(res.refusal)
    assert.equal(14, res.usage.input_tokens)
    assert.equal(37, res.usage.output_tokens)
    assert.equal("gpt-4o-2024-08-06", res.raw.model)
  end)

  it("openai-02: structured output arrives as JSON text with integers kept", function()
    local res = assert(replay("openai-02-json-schema-structured-output.json"))
    assert.equal('{"city":"San Francisco","temperature":65,"units":"f"}', res.text)
    local v = owl.json.decode(res.text)
    assert.equal(65, v.temperature)
    if math.type then assert.equal("integer", math.type(v.temperature)) end
    assert.equal(79, res.usage.input_tokens)
    assert.equal(14, res.usage.output_tokens)
  end)

  it("openai-03: a refusal has no text and the refusal's words", function()
    local res = assert(replay("openai-03-refusal-structured-output.json"))
    assert.is_nil(res.text)
    assert.equal("I'm very sorry, but I can't assist with that.", res.refusal)
    assert.equal("stop", res.finish_reason)
    assert.equal(12, res.usage.output_tokens)
  end)

  it("openai-04: a tool call with decoded arguments", function()
    local res = assert(replay("openai-04-tool-call.json"))
    assert.is_nil(res.text)
    assert.equal("tool_calls", res.finish_reason)
    assert.equal(1, #res.tool_calls)
    local call = res.tool_calls[1]
    assert.equal("call_Y6qJ7ofLgOrBnMD5WbVAeiRV", call.id)
    assert.equal("GetWeatherArgs", call.name)
    assert.equal('{"city":"Edinburgh","country":"UK","units":"c"}', call.arguments_json)
    assert.same({ city = "Edinburgh", country = "UK", units = "c" }, call.arguments)
    assert.equal(76, res.usage.input_tokens)
    assert.equal(24, res.usage.output_tokens)
  end)

  it("openai-05: an answer cut off at max_tokens says finish_reason length", function()
    local res = assert(replay("openai-05-length-truncated-json.json"))
    assert.equal('{"', res.text)
    assert.equal("length", res.finish_reason)
    assert.equal(1, res.usage.output_tokens)
  end)

  it("openai-14: a structured final answer after a tool round trip", function()
    local res = assert(replay("openai-14-json-schema-with-tools-final-answer.json"))
    assert.equal('{"city":"Mexico City","country":"Mexico"}', res.text)
    assert.equal("stop", res.finish_reason)
    assert.equal(92, res.usage.input_tokens)
    assert.equal(15, res.usage.output_tokens)
  end)

  it("openai-16: 404 model_not_found", function()
    local res, err = replay("openai-16-error-404-model-not-found.json")
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.equal("invalid_request_error", err.provider_type)
    assert.equal("model_not_found", err.provider_code)
    assert.is_nil(err.param)
    assert.equal("The model `gpt-5.2-proo` does not exist or you do not have access to it.", err.message)
  end)

  it("openai-17: 400 unsupported_value with its param", function()
    local _, err = replay("openai-17-error-400-unsupported-value.json")
    assert.equal(400, err.status)
    assert.equal("unsupported_value", err.provider_code)
    assert.equal("messages[0].role", err.param)
    assert.equal("Unsupported value: 'messages[0].role' does not support 'system' with this model.", err.message)
  end)

  it("openai-18: 400 with a null code and a param", function()
    local _, err = replay("openai-18-error-400-invalid-param.json")
    assert.equal(400, err.status)
    assert.equal("invalid_request_error", err.provider_type)
    assert.is_nil(err.provider_code)
    assert.equal("web_search_options", err.param)
    assert.equal("Web search options not supported with this model.", err.message)
  end)

  describe("as the orchestrator's answer", function()
    local function run_with(name)
      local c = owl.client{ base_url = server.url, api_key = "sk-replay", model = "m" }
      server:reset()
      server:script{ { replay = mock.fixture_path(name) } }
      -- max_replans = 0: one recorded answer, not asked for again
      return owl.run(c, "plan something", { max_replans = 0 })
    end

    it("a refusal stops the run with kind 'refusal'", function()
      local res, err = run_with("openai-03-refusal-structured-output.json")
      assert.is_nil(res)
      assert.equal("refusal", err.kind)
      assert.matches("I'm very sorry, but I can't assist with that.", err.message, 1, true)
    end)

    it("a cut-off plan stops the run with kind 'length'", function()
      local _, err = run_with("openai-05-length-truncated-json.json")
      assert.equal("length", err.kind)
    end)

    it("JSON that is not a plan stops the run with kind 'invalid' naming the fields", function()
      local _, err = run_with("openai-02-json-schema-structured-output.json")
      assert.equal("invalid", err.kind)
      assert.matches("objective", err.message)
      assert.matches("subtasks", err.message)
    end)

    it("an HTTP error stops the run and keeps the provider's fields", function()
      local _, err = run_with("openai-16-error-404-model-not-found.json")
      assert.equal("http", err.kind)
      assert.equal("model_not_found", err.provider_code)
      assert.equal(1, err.partial.usage.orchestrator.calls)
    end)
  end)
end)
