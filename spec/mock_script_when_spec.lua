-- The mock's script entries with "when": an entry is for the request whose
-- text holds every one of its strings, so workers that run at once, each
-- asking in turn, get their own scripted answers whatever order their
-- requests arrive in (examples/analysis/mock_session.json relies on it).
local mock = require("support.mock")

local function chat(messages)
  return { model = "gpt-test", messages = messages }
end

local function content(r)
  return mock.json_decode(r.body).choices[1].message.content
end

describe("mock script entries with when", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("gives each request the first entry whose strings it holds, in any arrival order", function()
    server:script{
      { when = { "subtask: a" }, text = "a first" },
      { when = { "subtask: b" }, text = "b first" },
      { when = { "subtask: a" }, text = "a second" },
      { text = "anyone" },
    }
    local function ask(who) return chat{ { role = "user", content = "Your subtask: " .. who } } end
    assert.equal("b first", content(server:request{ body = ask("b") }))
    assert.equal("a first", content(server:request{ body = ask("a") }))
    assert.equal("a second", content(server:request{ body = ask("a") }))
    -- b's entries are used up: it takes the entry without "when"
    assert.equal("anyone", content(server:request{ body = ask("b") }))
    assert.equal(0, server:stats().script_pending)
  end)

  it("matches the system prompt, tool results and every string together", function()
    server:script{ { when = { "analyst", "line 7", "clean" }, text = "matched" }, { text = "fallback" } }
    local r = server:request{ body = chat{
      { role = "system", content = "You are an analyst." },
      { role = "user", content = "subtask clean" },
      { role = "assistant", content = mock.null, tool_calls = {
        { id = "c1", type = "function", ["function"] = { name = "scan", arguments = "{}" } } } },
      { role = "tool", tool_call_id = "c1", content = "problem at line 7" },
    } }
    assert.equal("matched", content(r))
    -- one string missing: the entry stays queued, the request gets the next
    server:script{ { when = { "analyst", "nowhere" }, text = "never" } }
    assert.equal("fallback", content(server:request{ body = chat{ { role = "system", content = "analyst" } } }))
    assert.equal(1, server:stats().script_pending)
  end)

  it("leaves a request no entry fits to the default answer", function()
    server:script{ { when = { "elsewhere" }, text = "never" } }
    assert.equal("```\nhello\n```", content(server:request{ body = chat{ { role = "user", content = "hello" } } }))
    assert.equal(1, server:stats().script_pending)
  end)

  it("refuses a when that is not a non-empty array of non-empty strings", function()
    for _, bad in ipairs({ "text", {}, { "" }, { 3 } }) do
      local ok, err = pcall(server.script, server, { { when = bad, text = "x" } })
      assert.is_false(ok)
      assert.matches('when.. must be a non%-empty array of non%-empty strings', tostring(err))
    end
  end)
end)
