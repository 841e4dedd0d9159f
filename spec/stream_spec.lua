-- spec/stream_spec.lua: streamed chat over real HTTP against the mock
-- ("owl 3 of 6", streaming chat): deltas arrive while the answer does, add
-- up to the same normalized response, may wait, and fail the call cleanly
-- when they raise; a cut stream or an error keeps the text received; a
-- stream's timeout bounds silence, not length; every recorded OpenAI
-- stream replays byte for byte, cut at many offsets.
local owl = require("owl")
local core = require("owl.core")
local json = require("owl.json")
local mock = require("support.mock")

local FIXTURES = "../shared/fixtures/real/"
local read_all = require("support.files").read

describe("streamed chat", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(headers, extra)
    -- max_retries = 0: these specs read one failure; spec/retry_spec.lua retries
    local o = { base_url = server.url, api_key = "sk-stream", model = "m", headers = headers, max_retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  local function ask(c, content, on_delta, extra)
    local request = { messages = { { role = "user", content = content } }, stream = true, on_delta = on_delta }
    for k, v in pairs(extra or {}) do request[k] = v end
    return c:chat(request)
  end

  it("returns the same response as without streaming, assembled from its deltas, usage included", function()
    local c = client()
    local plain = assert(c:chat{ messages = { { role = "user", content = "count to five" } } })
    local deltas = {}
    local res = assert(ask(c, "count to five", function(d) deltas[#deltas + 1] = d end))
    assert.equal(plain.text, res.text)
    assert.equal("stop", res.finish_reason)
    assert.same(plain.usage, res.usage)
    assert.is_true(#deltas > 1)
    local text = {}
    for i, d in ipairs(deltas) do
      assert.equal("text", d.type)
      text[i] = d.text
    end
    assert.equal(res.text, table.concat(text))
    -- owl asked for the usage chunk, and nothing but JSON went to the server
    local body = mock.json_decode(server:requests()[2].body)
    assert.is_true(body.stream)
    assert.same({ include_usage = true }, body.stream_options)
    assert.is_nil(body.on_delta)
  end)

  it("keeps a request's own stream_options", function()
    local res = assert(ask(client(), "hi", nil, { stream_options = { include_usage = false } }))
    assert.same({ include_usage = false }, mock.json_decode(server:requests()[1].body).stream_options)
    assert.equal(0, res.usage.input_tokens) -- no usage chunk was asked for
  end)

  it("hands deltas over while the answer is still arriving", function()
    -- regression: this compared the first delta's time with half the whole
    -- answer's over a 2 ms drip, which a loaded machine stretched past it.
    -- Here the mock sends the first 600 bytes (the role chunk and the first
    -- text), then nothing for a second, then the rest: a delta that came
    -- with the first piece came at least that second before the end,
    -- however late the timers run.
    local first, last
    local res = assert(ask(client{ ["x-mock-split"] = "600", ["x-mock-split-pause-ms"] = "1000" },
      "a longer answer to split", function() first = first or core.now() end))
    last = core.now()
    assert.truthy(res.text:find("a longer answer to split", 1, true))
    assert.is_not_nil(first)
    assert.is_true(last - first >= 0.9, string.format("the first delta came %.3f s before the end", last - first))
  end)

  it("lets on_delta wait (it runs in the waiting task)", function()
    local t = owl.spawn(function()
      local n = 0
      -- the mock streams 20 characters a piece: several pieces, several waits
      local res = assert(ask(client(), string.rep("sleepy ", 10), function() owl.sleep(0.001); n = n + 1 end))
      return res, n
    end)
    local res, n = assert(t:wait())
    assert.matches("sleepy", res.text)
    assert.is_true(n > 1)
  end)

  it("fails the call with a callback error when on_delta raises, and the next call works", function()
    local c = client{ ["x-mock-fault"] = "drip", ["x-mock-drip-ms"] = "1" }
    local res, err = ask(c, "boom", function(d) if d.text:find("o") then error("no o allowed", 0) end end)
    assert.is_nil(res)
    assert.equal("callback", err.kind)
    assert.equal("on_delta raised: no o allowed", err.message)
    assert.is_string(err.partial_text)
    local queued, running = c:get_loop():pending()
    assert.equal(0, queued + running) -- the transfer was ended, not left running
    assert.matches("after", assert(ask(client(), "after")).text)
  end)

  it("a stream cut before [DONE] is an error carrying the text received", function()
    -- the mock's truncate fault sends half the body, then closes
    local res, err = ask(client{ ["x-mock-fault"] = "truncate" }, "cut me somewhere in the middle please")
    assert.is_nil(res)
    assert.truthy(err.kind == "protocol" or err.kind == "connect", err.kind)
    assert.is_string(err.partial_text)
    assert.truthy(("```\ncut me somewhere in the middle please\n```"):find(err.partial_text, 1, true) == 1,
      err.partial_text)
  end)

  it("an error object in the stream is an http error with the text so far", function()
    local body = 'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
      .. 'data: {"error":{"message":"The server is overloaded","type":"server_error","code":null}}\n\n'
    server:script{ { status = 200, headers = { ["content-type"] = "text/event-stream" }, body = body } }
    local res, err = ask(client(), "x")
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal("the stream failed: The server is overloaded", err.message)
    assert.equal("server_error", err.provider_type)
    assert.equal("Hel", err.partial_text)
  end)

  it("with or without on_delta, the same answer; without, the pieces of one read come joined", function()
    local chunks = {}
    for i = 1, 30 do chunks[i] = 'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"' .. i .. ' "}}]}\n\n' end
    local body = table.concat(chunks) .. 'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
      .. 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":30}}\n\ndata: [DONE]\n\n'
    local reply = { status = 200, headers = { ["content-type"] = "text/event-stream" }, body = body }
    server:script{ reply, reply }
    local deltas = {}
    local with = assert(ask(client(), "x", function(d) deltas[#deltas + 1] = d.text end))
    local without = assert(ask(client(), "x"))
    assert.equal(30, #deltas) -- one per chunk, as they came
    assert.same(with, without)
    assert.equal(table.concat(deltas), without.text)
    assert.equal("stop", without.finish_reason)
    assert.equal(30, without.usage.output_tokens)
  end)

  -- regression: without on_delta, picked chunks wake nobody; data after
  -- [DONE] must still end the call when it comes, not when the stream does
  it("data after [DONE] fails the call at once, without on_delta too", function()
    local after = {}
    for i = 1, 300 do after[i] = 'data: {"choices":[{"index":0,"delta":{"content":"more ' .. i .. '"}}]}\n\n' end
    local body = 'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n' .. table.concat(after)
    -- one byte a millisecond: the whole stream takes over fifteen seconds
    server:script{ { status = 200, headers = { ["content-type"] = "text/event-stream" }, body = body,
                     fault = "drip", drip_ms = 1 } }
    local started = core.now()
    local res, err = ask(client(), "x")
    assert.is_nil(res)
    assert.equal("the stream went on after [DONE]", err.message)
    assert.equal("Hi", err.partial_text)
    assert.is_true(core.now() - started < 6, "failed after " .. (core.now() - started) .. " s")
  end)

  it("a JSON error answering a streaming request is the usual http error", function()
    local res, err = ask(client{ ["x-mock-fault"] = "429", ["x-mock-retry-after"] = "7" }, "x")
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(429, err.status)
    assert.equal(7, err.retry_after)
  end)

  it("bounds the silence between bytes, not the length of the answer", function()
    -- a byte every 2 ms for well over a second (the body is about a
    -- thousand bytes), with timeout = 0.5: fine
    local c = client({ ["x-mock-fault"] = "drip", ["x-mock-drip-ms"] = "2" }, { timeout = 0.5 })
    local started = core.now()
    local res = assert(ask(c, "slow but steady"))
    assert.is_true(core.now() - started > 1, "the stream took " .. (core.now() - started) .. " s")
    assert.matches("slow but steady", res.text)
    -- a server that says nothing at all fails within about the timeout
    started = core.now()
    local _, err = ask(client({ ["x-mock-fault"] = "hang" }, { timeout = 1 }), "x")
    assert.equal("timeout", err.kind)
    assert.is_true(core.now() - started < 4, "gave up after " .. (core.now() - started) .. " s")
  end)

  it("on_delta without stream, or not a function, raises", function()
    local c = client()
    assert.has_error(function() c:chat{ messages = {}, on_delta = function() end } end,
      "owl.client: on_delta needs stream = true")
    assert.has_error(function() c:chat{ messages = {}, stream = true, on_delta = 1 } end,
      "owl.client: on_delta must be a function, got number")
  end)

  describe("replays every recorded OpenAI stream byte for byte, cut at many offsets", function()
    local want = {
      ["openai-06-stream-plain.json"] = { finish = "stop", input = 14, output = 30,
        text = "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
          .. "I recommend checking a reliable weather website or a weather app." },
      ["openai-07-stream-json-schema.json"] = { finish = "stop", input = 79, output = 14,
        text = '{"city":"San Francisco","temperature":61,"units":"f"}' },
      ["openai-08-stream-refusal.json"] = { finish = "stop", input = 79, output = 11,
        refusal = "I'm sorry, I can't assist with that request." },
      ["openai-09-stream-tool-call.json"] = { finish = "tool_calls", input = 76, output = 24,
        call = { "call_c91SqDXlYFuETYv8mUHzz6pp", "GetWeatherArgs", '{"city":"Edinburgh","country":"UK","units":"c"}' } },
      ["openai-11-stream-length.json"] = { finish = "length", input = 79, output = 1, text = '{"' },
      ["openai-12-stream-tool-call-with-headers.json"] = { finish = "tool_calls", input = 54, output = 20,
        call = { "call_1EYWDzueHEp8OsB8jJSEp7WB", "multiply", '{"a":1231,"b":2331}' } },
      ["openai-13-stream-text-after-tool-result.json"] = { finish = "stop", input = 87, output = 26,
        text = "The result of \\( 1231 \\times 2331 \\) is \\( 2,869,461 \\)." },
    }

    -- cut points: a fixed spread, plus every boundary between "\n\n" and
    -- the next event (a cut between the two LFs, and right after them)
    local function cuts(body, seed)
      local out, x = {}, seed
      for _ = 1, 12 do
        x = (x * 1103515245 + 12345) % 2147483648
        out[#out + 1] = 1 + x % (#body - 1)
      end
      if seed == 1 then
        for i in body:gmatch("()\n\n") do out[#out + 1] = i; out[#out + 1] = i + 1 end
      end
      table.sort(out)
      return out
    end

    for name, w in pairs(want) do
      it(name, function()
        local body = assert(json.decode(read_all(FIXTURES .. name))).body
        for seed = 1, 4 do
          server:script{ { replay = mock.fixture_path(name), split = cuts(body, seed) } }
          local text = {}
          local res, err = ask(client(), "x", function(d) text[#text + 1] = d.text end)
          assert.is_nil(err, name .. " seed " .. seed)
          assert.equal(w.finish, res.finish_reason)
          assert.equal(w.input, res.usage.input_tokens)
          assert.equal(w.output, res.usage.output_tokens)
          if w.text then assert.equal(w.text, res.text) end
          assert.equal(w.refusal, res.refusal)
          if w.call then
            assert.equal(1, #res.tool_calls)
            assert.same(w.call, { res.tool_calls[1].id, res.tool_calls[1].name, res.tool_calls[1].arguments_json })
            assert.equal(w.call[3], table.concat(text))
          else
            assert.equal(w.text or w.refusal, table.concat(text))
          end
        end
      end)
    end
  end)
end)
