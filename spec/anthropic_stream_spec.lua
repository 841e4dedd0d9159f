-- spec/anthropic_stream_spec.lua: streaming on provider anthropic ("owl 3
-- of 6" §3 and §4). First owl.providers.anthropic_stream, the reader of a
-- streamed Messages answer, on every recorded Anthropic stream in
-- ../shared/fixtures/real/ (the expected values written out by reading
-- each fixture's events) and on what the fixtures lack (thinking, an error
-- event, a cut stream, usage that grows, several tool calls, a forced
-- tool, input JSON cut by max_tokens). Then streamed chat over real HTTP
-- against the mock: the same response as without streaming, every
-- recorded stream replayed byte for byte and cut at many offsets, owl.run
-- streaming in both structured modes, on_delta raising.
local owl = require("owl")
local json = require("owl.json")
local anthropic = require("owl.providers.anthropic")
local anthropic_stream = require("owl.providers.anthropic_stream")
local mock = require("support.mock")

local FIXTURES = "../shared/fixtures/real/"
local read_all = require("support.files").read

-- The events of a well-formed stream (the fixtures are; the C parser and
-- its own spec handle every other framing): { event, data } per block.
local function events_of(body)
  local out = {}
  for block in body:gmatch("(.-)\n\n") do
    local name, data = "message", {}
    for line in (block .. "\n"):gmatch("(.-)\n") do
      local v = line:match("^data: ?(.*)$")
      if v then data[#data + 1] = v end
      local e = line:match("^event: ?(.*)$")
      if e then name = e end
    end
    if #data > 0 then out[#out + 1] = { event = name, data = table.concat(data, "\n") } end
  end
  return out
end

-- A client table as the reader sees one (owl.client's fields it reads).
local function client_of(structured, secrets)
  return { structured = structured or "output_config", secrets = secrets }
end

local function run(events, client, request)
  local r = anthropic.stream_reader(client or client_of(), request)
  local deltas = {}
  for _, ev in ipairs(events) do
    local ds, err = r:event(ev)
    if not ds then return nil, err, deltas, r end
    for _, d in ipairs(ds) do deltas[#deltas + 1] = d end
  end
  local res, err = r:finish()
  return res, err, deltas, r
end

-- One event as the API sends it: the SSE name and the JSON data.
local function ev(t) return { event = t.type, data = json.encode(t) } end

local function start(usage)
  return ev{ type = "message_start", message = { id = "msg_1", type = "message", role = "assistant",
    model = "claude-test", content = json.array({}), stop_reason = json.null, stop_sequence = json.null,
    usage = usage or { input_tokens = 3, output_tokens = 1 } } }
end
local function block_start(index, block) return ev{ type = "content_block_start", index = index, content_block = block } end
local function delta(index, d) return ev{ type = "content_block_delta", index = index, delta = d } end
local function text_delta(index, s) return delta(index, { type = "text_delta", text = s }) end
local function input(index, s) return delta(index, { type = "input_json_delta", partial_json = s }) end
local function block_stop(index) return ev{ type = "content_block_stop", index = index } end
local function message_delta(stop_reason, usage)
  return ev{ type = "message_delta", delta = { stop_reason = stop_reason, stop_sequence = json.null },
             usage = usage or { output_tokens = 5 } }
end
local STOP = ev{ type = "message_stop" }
local PING = { event = "ping", data = '{"type": "ping"}' }

local function by_type(deltas)
  local by = { text = {}, thinking = {}, tool_arguments = {} }
  for _, d in ipairs(deltas) do by[d.type][#by[d.type] + 1] = d.text end
  return { text = table.concat(by.text), thinking = table.concat(by.thinking),
           tool_arguments = table.concat(by.tool_arguments) }
end

describe("owl.providers.anthropic_stream", function()
  local REFUSAL = "This request was blocked as it seems to violate Anthropic's Terms of Service restrictions on "
    .. "reverse engineering or duplicating model outputs. To learn more, visit "
    .. "https://www.anthropic.com/legal/commercial-terms. API integrators: you can reduce refusals for your users "
    .. "by configuring a fallback model \226\128\148 see " -- an em dash
    .. "https://platform.claude.com/docs/en/build-with-claude/refusals-and-fallback"

  local want = {
    ["anthropic-01-stream-plain.json"] = {
      text = "- Captain\n- Scoop", finish_reason = "stop", deltas = 4,
      usage = { input_tokens = 17, output_tokens = 10, cached_input_tokens = 0 },
    },
    ["anthropic-02-stream-tool-use.json"] = {
      finish_reason = "tool_calls", deltas = 0, -- both inputs arrive as one "" piece
      usage = { input_tokens = 542, output_tokens = 62, cached_input_tokens = 0 },
      calls = {
        { id = "toolu_01LtHJmixrs9NcWQkK8hu8hj", name = "pelican_name_generator", arguments_json = "{}", arguments = {} },
        { id = "toolu_01N8a4jWyf116qKTMqKKmjyt", name = "pelican_name_generator", arguments_json = "{}", arguments = {} },
      },
    },
    ["anthropic-03-stream-after-tool-result.json"] = {
      text = "Here are two great names for your pet pelican:\n\n"
        .. "1. **Charles** - A sophisticated and dignified name, perfect for a pelican with personality!\n"
        .. "2. **Sammy** - A friendly and playful name that gives off warm, approachable vibes.\n\n"
        .. "Either of these would make an excellent name for your feathered friend! \240\159\166\133",
      finish_reason = "stop", deltas = 4,
      usage = { input_tokens = 678, output_tokens = 82, cached_input_tokens = 0 },
    },
    ["anthropic-04-stream-json-schema-output.json"] = {
      text = '{"name": "Biscuit", "age": 4, "bio": "Biscuit is a golden retriever with a gentle soul and boundless '
        .. "enthusiasm. He greets every person with a wagging tail and has an uncanny ability to sense when someone "
        .. "needs comfort. His favorite activities include playing fetch at the beach, napping in sunny spots, and "
        .. 'stealing socks to add to his secret collection under the bed."}',
      finish_reason = "stop", deltas = 5,
      usage = { input_tokens = 230, output_tokens = 94, cached_input_tokens = 0 },
    },
    ["anthropic-06-stream-refusal.json"] = {
      refusal = REFUSAL, finish_reason = "refusal", deltas = 0,
      usage = { input_tokens = 97, output_tokens = 0, cached_input_tokens = 0 },
    },
  }

  it("covers every Anthropic stream fixture", function()
    local seen = 0
    for _, name in ipairs(mock.fixture_names()) do
      if name:find("^anthropic%-") then
        local fx = assert(json.decode(read_all(FIXTURES .. name)))
        if fx.body:find("^event:") or fx.body:find("^data:") then
          assert.is_truthy(want[name], "no expectation written for " .. name)
          seen = seen + 1
        end
      end
    end
    assert.equal(5, seen)
  end)

  for name, w in pairs(want) do
    it("reads " .. name .. " and its deltas add up to it", function()
      local fx = assert(json.decode(read_all(FIXTURES .. name)))
      local res, err, deltas = run(events_of(fx.body))
      assert.is_nil(err)
      assert.equal(w.text, res.text)
      assert.equal(w.refusal, res.refusal)
      assert.is_nil(res.thinking)
      assert.equal(w.finish_reason, res.finish_reason)
      assert.same(w.usage, res.usage)
      local calls = w.calls or {}
      assert.equal(#calls, #res.tool_calls)
      for i, c in ipairs(calls) do
        local got = res.tool_calls[i]
        assert.same(c, { id = got.id, name = got.name, arguments_json = got.arguments_json, arguments = got.arguments })
        assert.is_nil(got.arguments_error)
      end
      assert.equal(w.deltas, #deltas)
      -- a refusal's words, if any, would come as text: this one has none
      assert.equal(w.text or "", by_type(deltas).text)
      -- the message read is the recorded one, rebuilt: id, model, stop_details
      local first = assert(json.decode(events_of(fx.body)[1].data)).message
      assert.equal(first.id, res.raw.id)
      assert.equal(first.model, res.raw.model)
      assert.equal(#calls + (w.text and 1 or 0), #res.raw.content)
    end)
  end

  it("reads a stream exactly as read reads the same message whole", function()
    -- anthropic-02 in tool mode: its first call is the forced tool's, so it
    -- is the answer (text "{}", finish stop) and the second stays a call
    local fx = assert(json.decode(read_all(FIXTURES .. "anthropic-02-stream-tool-use.json")))
    local client = client_of("tool")
    local request = { structured = { name = "pelican_name_generator", schema = {} } }
    local res = assert(run(events_of(fx.body), client, request))
    assert.equal("{}", res.text)
    assert.equal("stop", res.finish_reason)
    assert.equal(1, #res.tool_calls)
    assert.equal("toolu_01N8a4jWyf116qKTMqKKmjyt", res.tool_calls[1].id)
    local whole = anthropic.normalize(assert(json.decode(json.encode(res.raw))), client, request)
    whole.raw = nil
    res.raw = nil
    assert.same(whole, res)
  end)

  it("reads thinking, its signature (which replaces), a redacted block and citations", function()
    local res, err, deltas = run({
      start(),
      block_start(0, { type = "thinking", thinking = "", signature = "" }),
      delta(0, { type = "thinking_delta", thinking = "Let me " }),
      delta(0, { type = "thinking_delta", thinking = "think." }),
      delta(0, { type = "signature_delta", signature = "sig-part" }),
      delta(0, { type = "signature_delta", signature = "sig-whole" }),
      block_stop(0),
      block_start(1, { type = "redacted_thinking", data = "opaque" }),
      block_stop(1),
      block_start(2, { type = "text", text = "" }),
      text_delta(2, "The answer"),
      delta(2, { type = "citations_delta", citation = { type = "char_location", cited_text = "x" } }),
      text_delta(2, " is 42."),
      block_stop(2),
      message_delta("end_turn"),
      STOP,
    })
    assert.is_nil(err)
    assert.equal("The answer is 42.", res.text)
    assert.equal("Let me think.", res.thinking)
    assert.same({ { type = "thinking", text = "Let me " }, { type = "thinking", text = "think." },
                  { type = "text", text = "The answer" }, { type = "text", text = " is 42." } }, deltas)
    local content = res.raw.content
    assert.equal(3, #content)
    assert.equal("sig-whole", content[1].signature)
    assert.equal("Let me think.", content[1].thinking)
    assert.same({ type = "redacted_thinking", data = "opaque" }, content[2])
    assert.same({ { type = "char_location", cited_text = "x" } }, content[3].citations)
  end)

  it("overwrites the usage with each message_delta's (cumulative, never added)", function()
    local res, err = run({
      start{ input_tokens = 5, cache_creation_input_tokens = 20, cache_read_input_tokens = 100, output_tokens = 1 },
      block_start(0, { type = "text", text = "" }),
      text_delta(0, "hi"),
      block_stop(0),
      message_delta(json.null, { output_tokens = 7 }),
      message_delta("end_turn", { input_tokens = json.null, cache_read_input_tokens = 100, output_tokens = 15 }),
      STOP,
    })
    assert.is_nil(err)
    -- 5 + 20 + 100 input (a null left the 5), 15 output: not 1 + 7 + 15
    assert.same({ input_tokens = 125, output_tokens = 15, cached_input_tokens = 100 }, res.usage)
    assert.equal(15, res.raw.usage.output_tokens)
    assert.equal("stop", res.finish_reason)
    -- a delta naming usage or content does not replace what the reader keeps
    local res2 = assert(run({
      start(),
      ev{ type = "message_delta", delta = { stop_reason = "end_turn", usage = "x", content = "y" },
          usage = { output_tokens = 2 } },
      ev{ type = "message_delta", delta = {}, usage = { output_tokens = 3 } },
      STOP,
    }))
    assert.same({ input_tokens = 3, output_tokens = 3, cached_input_tokens = 0 }, res2.usage)
    assert.is_nil(res2.text) -- no text block: as normalize reads a message without one
  end)

  it("keeps two tool_use blocks apart, their input pieces by block index", function()
    local res, err, deltas = run({
      start(),
      block_start(0, { type = "text", text = "" }),
      text_delta(0, "Checking."),
      block_stop(0),
      block_start(1, { type = "tool_use", id = "toolu_a", name = "weather", input = {} }),
      input(1, ""),
      input(1, '{"locati'),
      input(1, 'on": "Paris"}'),
      block_stop(1),
      PING,
      block_start(2, { type = "tool_use", id = "toolu_b", name = "time", input = {} }),
      input(2, '{"tz": '),
      input(2, '"CET", "n": [1, 2]}'),
      block_stop(2),
      message_delta("tool_use"),
      STOP,
    })
    assert.is_nil(err)
    assert.equal("Checking.", res.text)
    assert.equal("tool_calls", res.finish_reason)
    assert.equal(2, #res.tool_calls)
    assert.same({ location = "Paris" }, res.tool_calls[1].arguments)
    assert.equal("toolu_a", res.tool_calls[1].id)
    assert.equal("weather", res.tool_calls[1].name)
    assert.same({ tz = "CET", n = { 1, 2 } }, res.tool_calls[2].arguments)
    assert.equal("toolu_b", res.tool_calls[2].id)
    assert.same({ { type = "text", text = "Checking." },
                  { type = "tool_arguments", text = '{"locati', index = 1 },
                  { type = "tool_arguments", text = 'on": "Paris"}', index = 1 },
                  { type = "tool_arguments", text = '{"tz": ', index = 2 },
                  { type = "tool_arguments", text = '"CET", "n": [1, 2]}', index = 2 } }, deltas)
  end)

  it("gives the forced tool's input pieces as text in tool mode, and the answer as the text", function()
    local client = client_of("tool")
    local request = { structured = { name = "plan", schema = {} } }
    local events = {
      start(),
      block_start(0, { type = "tool_use", id = "toolu_p", name = "plan", input = {} }),
      input(0, '{"objective": "x", '),
      input(0, '"subtasks": []}'),
      block_stop(0),
      message_delta("tool_use"),
      STOP,
    }
    local res, err, deltas = run(events, client, request)
    assert.is_nil(err)
    assert.same({ { type = "text", text = '{"objective": "x", ' }, { type = "text", text = '"subtasks": []}' } }, deltas)
    assert.same({ objective = "x", subtasks = {} }, json.decode(res.text))
    assert.equal("stop", res.finish_reason)
    assert.equal(0, #res.tool_calls)
    -- the same events in output_config mode: a tool call like any other
    local res2, _, deltas2 = run(events, client_of(), request)
    assert.is_nil(res2.text)
    assert.equal("tool_calls", res2.finish_reason)
    assert.equal(1, #res2.tool_calls)
    assert.equal("tool_arguments", deltas2[1].type)
    assert.equal(0, deltas2[1].index)
    -- cut in the middle, the answer so far is the partial text
    local _, cut = run({ events[1], events[2], events[3] }, client, request)
    assert.equal("protocol", cut.kind)
    assert.equal('{"objective": "x", ', cut.partial_text)
  end)

  it("a tool input cut by max_tokens is a failed call with its raw text, not a stream error", function()
    local res, err = run({
      start(),
      block_start(0, { type = "tool_use", id = "toolu_c", name = "f", input = {} }),
      input(0, '{"path": "/tm'),
      block_stop(0),
      message_delta("max_tokens"),
      STOP,
    })
    assert.is_nil(err)
    assert.equal("length", res.finish_reason)
    local call = res.tool_calls[1]
    assert.equal("toolu_c", call.id)
    assert.equal('{"path": "/tm', call.arguments_json)
    assert.is_nil(call.arguments)
    assert.matches("^arguments are not valid JSON: ", call.arguments_error)
    -- in tool mode the answer is missing: no text, finish length
    local res2 = assert(run({
      start(),
      block_start(0, { type = "tool_use", id = "toolu_c", name = "plan", input = {} }),
      input(0, '{"objective": "x'),
      block_stop(0),
      message_delta("max_tokens"),
      STOP,
    }, client_of("tool"), { structured = { name = "plan", schema = {} } }))
    assert.is_nil(res2.text)
    assert.equal("length", res2.finish_reason)
  end)

  it("ignores ping, unknown events and unknown delta types, wherever they come", function()
    local res, err, deltas = run({
      PING,
      start(),
      { event = "future_event", data = "not even JSON" },
      PING,
      block_start(0, { type = "text", text = "" }),
      delta(0, { type = "future_delta", whatever = 1 }),
      text_delta(0, "ok"),
      PING,
      block_stop(0),
      message_delta("end_turn"),
      PING,
      STOP,
      PING,
    })
    assert.is_nil(err)
    assert.equal("ok", res.text)
    assert.same({ { type = "text", text = "ok" } }, deltas)
  end)

  it("reads an event without its SSE name by its data's type", function()
    local events = { start(), block_start(0, { type = "text", text = "" }), text_delta(0, "a"), block_stop(0),
                     message_delta("end_turn"), STOP }
    for _, e in ipairs(events) do e.event = "message" end
    local res, err = run(events)
    assert.is_nil(err)
    assert.equal("a", res.text)
  end)

  it("an error event is an http error with the provider's type, redacted, with the text so far", function()
    local res, err = run({
      start(),
      block_start(0, { type = "text", text = "" }),
      text_delta(0, "Hel"),
      text_delta(0, "lo"),
      { event = "error", data = '{"type": "error", "error": {"type": "overloaded_error", '
        .. '"message": "Overloaded for sk-ant-secret"}, "request_id": "req_1"}' },
    }, client_of(nil, { "sk-ant-secret" }))
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal("the stream failed: Overloaded for [redacted]", err.message)
    assert.equal("overloaded_error", err.provider_type)
    assert.equal("req_1", err.request_id)
    assert.equal("Hello", err.partial_text)
    -- an error that is not the usual object is quoted
    local _, err2 = run({ { event = "error", data = "upstream broke" } })
    assert.equal("http", err2.kind)
    assert.equal("the stream failed: upstream broke", err2.message)
    assert.equal("", err2.partial_text)
  end)

  it("a stream cut before message_stop is a protocol error carrying the text so far", function()
    for _, cut in ipairs({ 3, 4, 5 }) do
      local events = { start(), block_start(0, { type = "text", text = "" }), text_delta(0, "Hello, wor"), block_stop(0),
                       message_delta("end_turn"), STOP }
      local partial = {}
      for i = 1, cut do partial[i] = events[i] end
      local res, err = run(partial)
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
      assert.equal("the stream ended before message_stop", err.message)
      assert.equal("Hello, wor", err.partial_text)
    end
    local _, err = run({})
    assert.equal("the stream ended before message_stop", err.message)
  end)

  it("events out of order or not JSON objects are protocol errors", function()
    local cases = {
      { { text_delta(0, "x") }, "a content_block_delta event came before message_start" },
      { { start(), start() }, "a second message_start in one stream" },
      { { start(), text_delta(0, "x") }, "a delta for content block 0, which had not started" },
      { { start(), block_start(0, { type = "text", text = "" }), block_stop(0), text_delta(0, "x") },
        "a delta for content block 0, which had stopped" },
      { { start(), block_start(0, { type = "text" }), block_start(0, { type = "text" }) }, "content block 0 started twice" },
      { { start(), block_stop(3) }, "content_block_stop for a content block that had not started" },
      { { start(), block_start(-1, { type = "text" }) }, "content_block_start needs an index and a content_block object" },
      { { start(), STOP, message_delta("end_turn") }, "the stream went on after message_stop (message_delta)" },
      { { { event = "message_start", data = "{nope" } }, "^a message_start event is not a JSON object %(" },
      { { { event = "message_start", data = "[1]" } }, "^a message_start event is not a JSON object$" },
      { { { event = "message_start", data = '{"type":"message_start"}' } }, "message_start has no message object" },
    }
    for _, c in ipairs(cases) do
      local res, err = run(c[1])
      assert.is_nil(res)
      assert.equal("protocol", err.kind, c[2])
      if c[2]:sub(1, 1) == "^" then assert.matches(c[2], err.message) else assert.equal(c[2], err.message) end
    end
  end)

  it("needs the provider's normalize", function()
    assert.has_error(function() anthropic_stream.reader({}, {}) end,
      "owl.providers.anthropic_stream: reader needs the provider's normalize function, got nil")
  end)
end)

describe("streamed chat on provider anthropic", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(headers, extra)
    local o = { provider = "anthropic", base_url = server.base, api_key = "sk-ant-stream", model = "claude-test",
                headers = headers }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  local function ask(c, content, on_delta, extra)
    local request = { messages = { { role = "user", content = content } }, stream = true, on_delta = on_delta }
    for k, v in pairs(extra or {}) do request[k] = v end
    return c:chat(request)
  end

  local PLAN = { name = "plan", schema = { type = "object" } }

  it("returns the same response as without streaming, assembled from its deltas, usage included", function()
    local c = client()
    local plain = assert(c:chat{ messages = { { role = "user", content = "count to five, slowly please" } } })
    local deltas = {}
    local res = assert(ask(c, "count to five, slowly please", function(d) deltas[#deltas + 1] = d end))
    assert.equal(plain.text, res.text)
    assert.equal("stop", res.finish_reason)
    -- the mock's message_start says 1 output token, its message_delta 5 so far
    assert.same({ input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, res.usage)
    assert.same(plain.usage, res.usage)
    assert.is_true(#deltas > 1)
    local text = {}
    for i, d in ipairs(deltas) do
      assert.equal("text", d.type)
      text[i] = d.text
    end
    assert.equal(res.text, table.concat(text))
    local req = server:requests()[2]
    assert.equal("/v1/messages", req.path)
    local body = mock.json_decode(req.body)
    assert.is_true(body.stream)
    assert.is_nil(body.on_delta)
    assert.is_nil(body.stream_options) -- OpenAI's, not Anthropic's
  end)

  for _, mode in ipairs({ "output_config", "tool" }) do
    it("streams structured output as without streaming, with structured = '" .. mode .. "'", function()
      local c = client(nil, { structured = mode })
      local plain = assert(c:chat{ messages = { { role = "user", content = "plan it" } }, structured = PLAN })
      local text = {}
      local res = assert(ask(c, "plan it", function(d)
        assert.equal("text", d.type) -- in tool mode too: the forced tool's input is the answer's text
        text[#text + 1] = d.text
      end, { structured = PLAN }))
      assert.equal(plain.text, res.text)
      assert.equal("stop", res.finish_reason)
      assert.equal(0, #res.tool_calls)
      assert.same(plain.usage, res.usage)
      assert.same(json.decode(res.text), json.decode(table.concat(text)))
      assert.equal(3, #json.decode(res.text).subtasks)
    end)
  end

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

  it("a stream cut before message_stop is an error carrying the text received", function()
    -- the mock's truncate fault sends half the body, then closes: long
    -- enough a text that half of it comes after message_start's preamble
    local asked = string.rep("cut me somewhere in the middle please ", 8)
    local res, err = ask(client{ ["x-mock-fault"] = "truncate" }, asked)
    assert.is_nil(res)
    assert.truthy(err.kind == "protocol" or err.kind == "connect", err.kind)
    assert.is_string(err.partial_text)
    assert.is_true(#err.partial_text > 20, err.partial_text)
    assert.truthy(("```\n" .. asked .. "\n```"):find(err.partial_text, 1, true) == 1, err.partial_text)
  end)

  it("an error event after the 200 is an http error with the provider's type and the text so far", function()
    local body = table.concat({
      'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_e","type":"message",'
        .. '"role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n',
      'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    })
    server:script{ { status = 200, headers = { ["content-type"] = "text/event-stream" }, body = body } }
    local res, err = ask(client(), "x")
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal("the stream failed: Overloaded", err.message)
    assert.equal("overloaded_error", err.provider_type)
    assert.equal("Hel", err.partial_text)
  end)

  it("a JSON error answering a streaming request is the usual http error", function()
    local res, err = ask(client{ ["x-mock-fault"] = "429", ["x-mock-retry-after"] = "7" }, "x")
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(429, err.status)
    assert.equal(7, err.retry_after)
    assert.equal("rate_limit_error", err.provider_type)
  end)

  it("bounds the silence between bytes, not the length of the answer (the shared stream spec)", function()
    local c = client(nil, { timeout = 0.5 })
    local spec = anthropic.build(c, { messages = {}, stream = true })
    assert.same({ true, 0, 0.5 }, { spec.sse, spec.timeout, spec.stall_timeout })
    assert.is_true(spec.body.stream)
    assert.is_nil(anthropic.build(c, { messages = {} }).sse)
  end)

  describe("replays every recorded Anthropic stream byte for byte, cut at many offsets", function()
    local want = {
      ["anthropic-01-stream-plain.json"] = { finish = "stop", input = 17, output = 10, text = "- Captain\n- Scoop" },
      ["anthropic-02-stream-tool-use.json"] = { finish = "tool_calls", input = 542, output = 62,
        calls = { { "toolu_01LtHJmixrs9NcWQkK8hu8hj", "pelican_name_generator", "{}" },
                  { "toolu_01N8a4jWyf116qKTMqKKmjyt", "pelican_name_generator", "{}" } } },
      ["anthropic-03-stream-after-tool-result.json"] = { finish = "stop", input = 678, output = 82,
        text_start = "Here are two great names for your pet pelican:\n\n1. **Charles**",
        text_end = "feathered friend! \240\159\166\133" },
      ["anthropic-04-stream-json-schema-output.json"] = { finish = "stop", input = 230, output = 94,
        json = { name = "Biscuit", age = 4 } },
      ["anthropic-06-stream-refusal.json"] = { finish = "refusal", input = 97, output = 0,
        refusal_start = "This request was blocked" },
    }

    it("has every Anthropic stream fixture", function()
      local n = 0
      for _, name in ipairs(mock.fixture_names()) do
        local fx = mock.fixture(name)
        if name:find("^anthropic%-") and fx.body:find("^event:") then
          assert.is_truthy(want[name], name)
          n = n + 1
        end
      end
      assert.equal(5, n)
    end)

    -- cut points: a fixed spread, plus every boundary between "\n\n" and
    -- the next event (a cut between the two LFs, and right after them),
    -- and every byte of the one 4-byte character (anthropic-03's emoji)
    local function cuts(body, seed)
      local out, x = {}, seed
      for _ = 1, 12 do
        x = (x * 1103515245 + 12345) % 2147483648
        out[#out + 1] = 1 + x % (#body - 1)
      end
      if seed == 1 then
        for i in body:gmatch("()\n\n") do out[#out + 1] = i; out[#out + 1] = i + 1 end
        local e = body:find("\240\159\166\133", 1, true)
        if e then for k = 0, 4 do out[#out + 1] = e - 1 + k end end
      end
      table.sort(out)
      return out
    end

    for name, w in pairs(want) do
      it(name, function()
        local body = mock.fixture(name).body
        for seed = 1, 4 do
          server:script{ { replay = mock.fixture_path(name), split = cuts(body, seed) } }
          local deltas = {}
          local res, err = ask(client(), "x", function(d) deltas[#deltas + 1] = d end)
          assert.is_nil(err, name .. " seed " .. seed)
          assert.equal(w.finish, res.finish_reason)
          assert.same({ input_tokens = w.input, output_tokens = w.output, cached_input_tokens = 0 }, res.usage)
          local by = by_type(deltas)
          if w.text then assert.equal(w.text, res.text) end
          if w.text_start then
            assert.equal(w.text_start, res.text:sub(1, #w.text_start))
            assert.equal(w.text_end, res.text:sub(-#w.text_end))
          end
          if w.json then
            local v = json.decode(res.text)
            assert.same(w.json, { name = v.name, age = v.age })
          end
          assert.equal(res.text or "", by.text)
          if w.refusal_start then
            assert.is_nil(res.text)
            assert.equal(w.refusal_start, res.refusal:sub(1, #w.refusal_start))
          else
            assert.is_nil(res.refusal)
          end
          local calls = w.calls or {}
          assert.equal(#calls, #res.tool_calls)
          for i, c in ipairs(calls) do
            local got = res.tool_calls[i]
            assert.same(c, { got.id, got.name, got.arguments_json })
          end
          assert.equal("", by.tool_arguments) -- anthropic-02's inputs are "" pieces
          assert.matches("^msg_", res.raw.id)
        end
      end)
    end
  end)

  describe("owl.run with stream = true", function()
    for _, mode in ipairs({ "output_config", "tool" }) do
      it("runs the plan, the workers and the aggregator streaming, with structured = '" .. mode .. "'", function()
        local n = 3
        local c = client({ ["x-mock-subtasks"] = tostring(n) }, { structured = mode })
        local events, worker_deltas, agg_deltas = {}, {}, 0
        local result, err = owl.run(c, "Write a word counter in Lua.", { stream = true,
          on_event = function(name, data)
            events[#events + 1] = name
            if name == "worker_delta" then
              worker_deltas[data.index] = (worker_deltas[data.index] or 0) + 1
              assert.equal("text", data.delta.type)
              assert.equal(worker_deltas[data.index], data.deltas)
            elseif name == "aggregate_delta" then
              agg_deltas = agg_deltas + 1
            end
          end })
        assert.is_nil(err)
        assert.equal("Mock plan for: Write a word counter in Lua.", result.objective)
        assert.equal(n, #result.subtasks)
        for i = 1, n do
          assert.is_true((worker_deltas[i] or 0) > 0, "worker " .. i .. " streamed nothing")
          assert.truthy(result.outputs[i]:find("Part " .. i .. " of " .. n .. " of the problem.", 1, true))
        end
        assert.is_true(agg_deltas > 0)
        -- usage as without streaming: message_delta's count replaces message_start's
        assert.same({ calls = n + 2, input_tokens = 10 * (n + 2), output_tokens = 5 * (n + 2), cached_input_tokens = 0 },
          result.usage.total)
        assert.equal("done", events[#events])
        for _, req in ipairs(server:requests()) do
          local body = mock.json_decode(req.body)
          assert.is_true(body.stream)
          if mode == "tool" and body.tool_choice then assert.equal("plan", body.tool_choice.name) end
        end
      end)
    end
  end)
end)
