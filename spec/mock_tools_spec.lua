-- The mock's scripted model answers ({ text, tool_calls } script entries):
-- written in the shape of the request's provider, whole or streamed, as
-- the real APIs send them (the raw bytes, read without owl).
local mock = require("support.mock")

describe("mock server: scripted tool calls", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local calls = {
    { id = "call_a", name = "add", arguments = { a = 1 } },
    { name = "add", arguments = '{"a": ' }, -- no id: the mock makes one; arguments as raw, broken JSON
  }
  local function openai(stream)
    return { body = { model = "m", stream = stream, messages = { { role = "user", content = "x" } } } }
  end
  local function anthropic(stream)
    return { path = "/v1/messages", body = { model = "m", max_tokens = 10, stream = stream,
                                            messages = { { role = "user", content = "x" } } } }
  end

  it("OpenAI, whole: tool_calls with the arguments as text, content null, finish_reason tool_calls", function()
    server:script{ { tool_calls = calls } }
    local choice = mock.json_decode(server:request(openai(false)).body).choices[1]
    assert.equal("tool_calls", choice.finish_reason)
    assert.equal(mock.null, choice.message.content)
    local tc = choice.message.tool_calls
    assert.same({ id = "call_a", type = "function", ["function"] = { name = "add", arguments = '{"a":1}' } }, tc[1])
    assert.matches("^call_mock", tc[2].id)
    assert.equal('{"a": ', tc[2]["function"].arguments)
  end)

  it("OpenAI, streamed: each call's first piece has its id and name, then its arguments in pieces", function()
    server:script{ { text = "Let me add.", tool_calls = calls } }
    local events = mock.sse_events(server:request(openai(true)).body)
    assert.equal("[DONE]", events[#events].data)
    assert.equal("tool_calls", events[#events - 1].json.choices[1].finish_reason)
    local text, args, firsts = {}, { [0] = {}, [1] = {} }, {}
    for i = 1, #events - 1 do
      local delta = events[i].json.choices[1].delta
      if delta.content then text[#text + 1] = delta.content end
      for _, tc in ipairs(delta.tool_calls or {}) do
        if tc.id then
          firsts[#firsts + 1] = tc
          assert.equal("function", tc.type)
          assert.equal("add", tc["function"].name)
        else
          assert.is_nil(tc["function"].name)
        end
        table.insert(args[tc.index], tc["function"].arguments)
      end
    end
    assert.equal("Let me add.", table.concat(text))
    assert.equal(2, #firsts)
    assert.equal("call_a", firsts[1].id)
    assert.equal('{"a":1}', table.concat(args[0]))
    assert.equal('{"a": ', table.concat(args[1]))
  end)

  it("Anthropic, whole: a text block, tool_use blocks, stop_reason tool_use", function()
    server:script{ { text = "Adding.", tool_calls = calls } }
    local m = mock.json_decode(server:request(anthropic(false)).body)
    assert.equal("tool_use", m.stop_reason)
    assert.same({ type = "text", text = "Adding." }, m.content[1])
    assert.same({ type = "tool_use", id = "call_a", name = "add", input = { a = 1 } }, m.content[2])
    -- text that is not JSON cannot be an input object: it is sent as a string
    assert.equal('{"a": ', m.content[3].input)
  end)

  it("Anthropic, streamed: a tool_use block per call, its input in input_json_delta pieces", function()
    server:script{ { tool_calls = calls } }
    local events = mock.sse_events(server:request(anthropic(true)).body)
    local starts, json = {}, {}
    for _, e in ipairs(events) do
      if e.event == "content_block_start" then
        starts[#starts + 1] = e.json
        json[e.json.index] = {}
      elseif e.event == "content_block_delta" then
        assert.equal("input_json_delta", e.json.delta.type)
        table.insert(json[e.json.index], e.json.delta.partial_json)
      end
    end
    assert.equal(2, #starts) -- no empty text block
    assert.same({ type = "tool_use", id = "call_a", name = "add", input = {} }, starts[1].content_block)
    assert.equal(0, starts[1].index)
    assert.equal(1, starts[2].index)
    assert.equal('{"a":1}', table.concat(json[0]))
    assert.equal('{"a": ', table.concat(json[1]))
    assert.equal("tool_use", events[#events - 1].json.delta.stop_reason)
  end)

  it("answers a scripted text alone as a plain answer", function()
    server:script{ { text = "Just text." }, { text = "Just text." } }
    local choice = mock.json_decode(server:request(openai(false)).body).choices[1]
    assert.equal("stop", choice.finish_reason)
    assert.equal("Just text.", choice.message.content)
    assert.is_nil(choice.message.tool_calls)
    local m = mock.json_decode(server:request(anthropic(false)).body)
    assert.equal("end_turn", m.stop_reason)
    assert.same({ { type = "text", text = "Just text." } }, m.content)
  end)
end)
