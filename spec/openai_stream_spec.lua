-- spec/openai_stream_spec.lua: owl.providers.openai_stream, the reader of a
-- streamed chat completion, on every recorded OpenAI stream in
-- ../shared/fixtures/real/ and on the shapes the fixtures lack (an error
-- chunk, a cut stream, obfuscation, several tool calls interleaved). The
-- expected values were written out by reading each fixture's events.
local json = require("owl.json")
local stream = require("owl.providers.openai_stream")

local FIXTURES = "../shared/fixtures/real/"
local read_all = require("support.files").read

-- The events of a well-formed `data:` stream (the fixtures are; the C
-- parser and its own spec handle every other framing).
local function events_of(body)
  local out = {}
  for block in body:gmatch("(.-)\n\n") do
    local data = {}
    for line in (block .. "\n"):gmatch("(.-)\n") do
      local v = line:match("^data: ?(.*)$")
      if v then data[#data + 1] = v end
    end
    if #data > 0 then out[#out + 1] = { event = "message", data = table.concat(data, "\n") } end
  end
  return out
end

local function run(events, secrets)
  local r = stream.reader(secrets)
  local deltas = {}
  for _, ev in ipairs(events) do
    local ds, err = r:event(ev)
    if not ds then return nil, err, deltas end
    for _, d in ipairs(ds) do deltas[#deltas + 1] = d end
  end
  local res, err = r:finish()
  return res, err, deltas
end

local function chunk(t) return { event = "message", data = json.encode(t) } end

describe("owl.providers.openai_stream", function()
  local want = {
    ["openai-06-stream-plain.json"] = {
      text = "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
        .. "I recommend checking a reliable weather website or a weather app.",
      finish_reason = "stop", usage = { input_tokens = 14, output_tokens = 30, cached_input_tokens = 0 },
    },
    ["openai-07-stream-json-schema.json"] = {
      text = '{"city":"San Francisco","temperature":61,"units":"f"}',
      finish_reason = "stop", usage = { input_tokens = 79, output_tokens = 14, cached_input_tokens = 0 },
    },
    ["openai-08-stream-refusal.json"] = {
      refusal = "I'm sorry, I can't assist with that request.",
      finish_reason = "stop", usage = { input_tokens = 79, output_tokens = 11, cached_input_tokens = 0 },
    },
    ["openai-09-stream-tool-call.json"] = {
      finish_reason = "tool_calls", usage = { input_tokens = 76, output_tokens = 24, cached_input_tokens = 0 },
      calls = { { id = "call_c91SqDXlYFuETYv8mUHzz6pp", name = "GetWeatherArgs",
                  arguments_json = '{"city":"Edinburgh","country":"UK","units":"c"}',
                  arguments = { city = "Edinburgh", country = "UK", units = "c" } } },
    },
    ["openai-11-stream-length.json"] = {
      text = '{"', finish_reason = "length", usage = { input_tokens = 79, output_tokens = 1, cached_input_tokens = 0 },
    },
    ["openai-12-stream-tool-call-with-headers.json"] = {
      finish_reason = "tool_calls", usage = { input_tokens = 54, output_tokens = 20, cached_input_tokens = 0 },
      calls = { { id = "call_1EYWDzueHEp8OsB8jJSEp7WB", name = "multiply", arguments_json = '{"a":1231,"b":2331}',
                  arguments = { a = 1231, b = 2331 } } },
    },
    ["openai-13-stream-text-after-tool-result.json"] = {
      text = "The result of \\( 1231 \\times 2331 \\) is \\( 2,869,461 \\).",
      finish_reason = "stop", usage = { input_tokens = 87, output_tokens = 26, cached_input_tokens = 0 },
    },
  }

  it("has an expectation for every recorded OpenAI stream", function()
    local p = assert(io.popen('ls "' .. FIXTURES .. '"'))
    local seen = 0
    for name in p:lines() do
      if name:find("^openai%-") then
        local fx = assert(json.decode(read_all(FIXTURES .. name)))
        if fx.body:find("^data:") then
          assert.is_truthy(want[name], "no expectation written for " .. name)
          seen = seen + 1
        end
      end
    end
    p:close()
    assert.equal(7, seen)
  end)

  for name, w in pairs(want) do
    it("reads " .. name .. " and its deltas add up to it", function()
      local fx = assert(json.decode(read_all(FIXTURES .. name)))
      local res, err, deltas = run(events_of(fx.body))
      assert.is_nil(err)
      if w.text then assert.equal(w.text, res.text) end
      assert.equal(w.refusal, res.refusal)
      assert.equal(w.finish_reason, res.finish_reason)
      assert.same(w.usage, res.usage)
      local calls = w.calls or {}
      assert.equal(#calls, #res.tool_calls)
      for i, c in ipairs(calls) do
        local got = res.tool_calls[i]
        assert.equal(c.id, got.id)
        assert.equal(c.name, got.name)
        assert.equal(c.arguments_json, got.arguments_json)
        assert.same(c.arguments, got.arguments)
      end
      -- the deltas, in order, are the whole answer
      local by = { text = {}, refusal = {}, tool_arguments = {} }
      for _, d in ipairs(deltas) do
        by[d.type][#by[d.type] + 1] = d.text
        if d.type == "tool_arguments" then assert.equal(0, d.index) end
      end
      assert.equal(w.text or "", table.concat(by.text))
      assert.equal(w.refusal or "", table.concat(by.refusal))
      assert.equal(calls[1] and calls[1].arguments_json or "", table.concat(by.tool_arguments))
    end)
  end

  it("merges interleaved tool calls by index and ignores fields it does not know", function()
    local res, err, deltas = run({
      chunk{ choices = { { index = 0, delta = { role = "assistant", tool_calls = {
        { index = 0, id = "call_a", type = "function", ["function"] = { name = "f", arguments = "" } },
        { index = 1, id = "call_b", type = "function", ["function"] = { name = "g", arguments = '{"y":' } } } } } },
        obfuscation = "xYz" },
      chunk{ choices = { { index = 0, delta = { tool_calls = { { index = 0, ["function"] = { arguments = '{"x":1}' } } } } } } },
      chunk{ choices = { { index = 0, delta = { tool_calls = { { index = 1, ["function"] = { arguments = "2}" } } } },
        finish_reason = "tool_calls" } }, obfuscation = "q" },
      chunk{ choices = {}, usage = { prompt_tokens = 3, completion_tokens = 4,
                                     prompt_tokens_details = { cached_tokens = 2 } } },
      { event = "message", data = "[DONE]" },
    })
    assert.is_nil(err)
    assert.equal(2, #res.tool_calls)
    assert.same({ x = 1 }, res.tool_calls[1].arguments)
    assert.equal("call_b", res.tool_calls[2].id)
    assert.same({ y = 2 }, res.tool_calls[2].arguments)
    assert.same({ input_tokens = 3, output_tokens = 4, cached_input_tokens = 2 }, res.usage)
    assert.same({ { type = "tool_arguments", text = '{"y":', index = 1 },
                  { type = "tool_arguments", text = '{"x":1}', index = 0 },
                  { type = "tool_arguments", text = "2}", index = 1 } }, deltas)
  end)

  it("a stream cut before [DONE] is an error carrying the text so far", function()
    local res, err = run({
      chunk{ choices = { { index = 0, delta = { content = "Hello" } } } },
      chunk{ choices = { { index = 0, delta = { content = ", wor" } } } },
    })
    assert.is_nil(res)
    assert.equal("protocol", err.kind)
    assert.equal("the stream ended before [DONE]", err.message)
    assert.equal("Hello, wor", err.partial_text)
  end)

  it("an error chunk is an http error with the provider's type, redacted, with the text so far", function()
    local res, err = run({
      chunk{ choices = { { index = 0, delta = { content = "part" } } } },
      chunk{ error = { message = "overloaded for sk-secret", type = "server_error", code = "sk-secret" } },
    }, { "sk-secret" })
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal("the stream failed: overloaded for [redacted]", err.message)
    assert.equal("server_error", err.provider_type)
    assert.equal("[redacted]", err.provider_code)
    assert.equal("part", err.partial_text)
  end)

  it("a chunk that is not JSON, or data after [DONE], is a protocol error", function()
    local _, err = run({ { event = "message", data = "{nope" } })
    assert.equal("protocol", err.kind)
    assert.matches("^a stream chunk is not a JSON object", err.message)
    _, err = run({ { event = "message", data = "[DONE]" }, chunk{ choices = {} } })
    assert.equal("the stream went on after [DONE]", err.message)
  end)
end)
