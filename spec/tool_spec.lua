-- owl.tool declarations (every misuse is an error naming the field) and
-- how each provider writes owl's neutral tool transcript and tools into its
-- request body (the loop itself, over HTTP, is spec/agent_spec.lua).
local owl = require("owl")
local json = require("owl.json")
local S = owl.schema
local openai = require("owl.providers.openai")
local anthropic = require("owl.providers.anthropic")
local mock = require("support.mock")

local function handler() return "ok" end

describe("owl.tool", function()
  it("makes a tool from an owl.schema declaration, as a strict JSON Schema", function()
    local t = owl.tool{ name = "add", description = "Adds two numbers.",
                        parameters = S.object{ { "a", S.number() }, { "b", S.number() } }, handler = handler }
    assert.equal("add", t.name)
    assert.equal("object", t.parameters.type)
    assert.same({ "a", "b" }, { t.parameters.required[1], t.parameters.required[2] })
    assert.is_false(t.parameters.additionalProperties)
    assert.equal("owl.tool (add)", tostring(t))
  end)

  it("takes a JSON Schema as it is, and no parameters as an empty object", function()
    local schema = { type = "object", properties = { q = { type = "string" } }, required = { "q" } }
    assert.equal(schema, owl.tool{ name = "q", description = "d", parameters = schema, handler = handler }.parameters)
    local none = owl.tool{ name = "now", description = "The time.", handler = handler }
    assert.same({ type = "object", properties = {} }, none.parameters)
  end)

  it("checks arguments against the schema, naming each path", function()
    local t = owl.tool{ name = "add", description = "d", parameters = S.object{ { "a", S.number() }, { "b", S.number() } },
                        handler = handler }
    assert.is_true(t:check({ a = 1, b = 2 }))
    local ok, why = t:check({ a = "x" })
    assert.is_false(ok)
    assert.matches("/a: ", why, 1, true)
    assert.matches("b", why, 1, true)
  end)

  it("tells whether a list holds any owl.tool (what each provider asks before writing a request's tools)", function()
    local tool = require("owl.tool")
    local t = owl.tool{ name = "a", description = "d", handler = handler }
    local api_entry = { type = "function", ["function"] = { name = "f", parameters = { type = "object" } } }
    assert.is_true(tool.any({ t }))
    assert.is_true(tool.any({ api_entry, t }))
    assert.is_false(tool.any({ api_entry }))
    -- a table shaped like a tool is not one: only owl.tool{...} makes one
    assert.is_false(tool.any({ { name = "a", description = "d", handler = handler } }))
    assert.is_false(tool.any({}))
    assert.is_false(tool.any(nil))
    assert.is_false(tool.any("a"))
    assert.is_false(tool.any(t)) -- a tool, not a list of tools
  end)

  local cases = {
    { "not a table", "x", "owl.tool: expected a table" },
    { "an unknown field", { name = "a", description = "d", handler = handler, strict = true },
      "owl.tool: unknown field 'strict'" },
    { "a name with a space", { name = "a b", description = "d", handler = handler },
      "owl.tool: name must be 1 to 64 letters, digits, '_' or '-', got \"a b\"" },
    { "a name of 65 bytes", { name = ("n"):rep(65), description = "d", handler = handler }, "name must be 1 to 64" },
    { "no description", { name = "a", handler = handler }, "owl.tool 'a': description must be a non-empty string" },
    { "a blank description", { name = "a", description = "  ", handler = handler }, "description must be a non-empty" },
    { "no handler", { name = "a", description = "d" }, "owl.tool 'a': handler must be a function(args, ctx), got nil" },
    { "a declaration that is not an object", { name = "a", description = "d", parameters = S.string(), handler = handler },
      "owl.tool 'a': parameters must be an owl.schema.object declaration, got a string declaration" },
    { "a JSON Schema that is not an object", { name = "a", description = "d", parameters = { type = "array" },
      handler = handler }, "owl.tool 'a': parameters must be a JSON Schema with type \"object\", got type \"array\"" },
    { "parameters of the wrong type", { name = "a", description = "d", parameters = "x", handler = handler },
      "parameters must be an owl.schema declaration or a JSON Schema table, got string" },
  }
  for _, c in ipairs(cases) do
    it("refuses " .. c[1] .. " at the line that declared it", function()
      local ok, err = pcall(function() local t = owl.tool(c[2]); return t end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[3], 1, true), tostring(err))
      assert.truthy(tostring(err):find("tool_spec.lua", 1, true), "the error points at " .. tostring(err))
    end)
  end
end)

describe("the neutral tool transcript on the wire", function()
  local add = owl.tool{ name = "add", description = "Adds.", parameters = S.object{ { "a", S.number() } },
                        handler = handler }
  local function client(provider) return { provider_name = provider, model = "m", base_url = "http://127.0.0.1:1" } end
  local calls = json.array{
    { id = "c1", name = "add", arguments = { a = 1 }, arguments_json = '{"a":1}' },
    { id = "c2", name = "add", arguments_json = '{"a":', arguments_error = "arguments are not valid JSON" },
  }
  local messages = {
    { role = "system", content = "sys" },
    { role = "user", content = "add" },
    { role = "assistant", content = "Adding.", tool_calls = calls },
    { role = "tool", tool_call_id = "c1", name = "add", content = "1" },
    { role = "tool", tool_call_id = "c2", name = "add", content = "bad arguments", is_error = true },
  }

  it("OpenAI: an assistant message with tool_calls, a tool message per result, errors said in the text", function()
    local body = openai.body(client("openai"), { messages = messages, tools = { add }, tool_choice = "none" })
    local m = json.decode(json.encode(body))
    assert.same({ role = "assistant", content = "Adding.", tool_calls = {
      { id = "c1", type = "function", ["function"] = { name = "add", arguments = '{"a":1}' } },
      { id = "c2", type = "function", ["function"] = { name = "add", arguments = '{"a":' } },
    } }, m.messages[3])
    assert.same({ role = "tool", tool_call_id = "c1", content = "1" }, m.messages[4])
    assert.same({ role = "tool", tool_call_id = "c2", content = "Error: bad arguments" }, m.messages[5])
    assert.same({ type = "function", ["function"] = { name = "add", description = "Adds.", parameters = add.parameters } },
      body.tools[1])
    assert.equal("none", body.tool_choice)
  end)

  it("OpenAI: messages without tool messages go as they are (the same table)", function()
    local plain = { { role = "user", content = "hi" } }
    assert.equal(plain, openai.body(client("openai"), { messages = plain }).messages)
  end)

  it("Anthropic: tool_use blocks, and the turn's results in one user message of tool_result blocks", function()
    local body = anthropic.body(client("anthropic"), { messages = messages, tools = { add }, tool_choice = "none" })
    local m = json.decode(json.encode(body))
    assert.equal("sys", m.system)
    assert.equal(3, #m.messages)
    assert.same({ role = "assistant", content = {
      { type = "text", text = "Adding." },
      { type = "tool_use", id = "c1", name = "add", input = { a = 1 } },
      { type = "tool_use", id = "c2", name = "add", input = {} },
    } }, m.messages[2])
    assert.same({ role = "user", content = {
      { type = "tool_result", tool_use_id = "c1", content = "1" },
      { type = "tool_result", tool_use_id = "c2", content = "bad arguments", is_error = true },
    } }, m.messages[3])
    assert.same({ name = "add", description = "Adds.", input_schema = add.parameters }, body.tools[1])
    assert.same({ type = "none" }, body.tool_choice)
    -- an input that is not an object still encodes as one ({} not [])
    assert.truthy(json.encode(body):find('"input":{}', 1, true))
  end)

  it("Anthropic: an assistant turn without text has no empty text block", function()
    local body = anthropic.body(client("anthropic"), { messages = {
      { role = "user", content = "go" },
      { role = "assistant", tool_calls = { { id = "c1", name = "add", arguments = { a = 1 } } } },
      { role = "tool", tool_call_id = "c1", content = "" },
    } })
    assert.equal(1, #body.messages[2].content)
    assert.equal("tool_use", body.messages[2].content[1].type)
    assert.is_nil(body.messages[3].content[1].content) -- an empty result: no empty text
  end)

  it("Anthropic: a turn's signed thinking blocks go back before its text and tool_use (from the kept raw answer)",
    function()
    local raw = { type = "message", content = {
      { type = "thinking", thinking = "Add them.", signature = "sig1" },
      { type = "redacted_thinking", data = "xyz" },
      { type = "text", text = "Adding." },
      { type = "tool_use", id = "c1", name = "add", input = { a = 1 } },
    } }
    local turn = { role = "assistant", content = "Adding.", raw = raw,
                   tool_calls = { { id = "c1", name = "add", arguments = { a = 1 } } } }
    local msgs = { { role = "user", content = "add" }, turn, { role = "tool", tool_call_id = "c1", content = "1" } }
    local body = anthropic.body(client("anthropic"), { messages = msgs })
    local types = {}
    for i, b in ipairs(body.messages[2].content) do types[i] = b.type end
    assert.same({ "thinking", "redacted_thinking", "text", "tool_use" }, types)
    assert.equal("sig1", body.messages[2].content[1].signature)
    assert.is_nil(body.messages[2].raw)
    -- OpenAI sends only the fields it knows, never the kept raw answer
    local o = openai.body(client("openai"), { messages = msgs })
    assert.same({ "content", "role", "tool_calls" }, mock.sorted_keys(o.messages[2]))
  end)

  it("Anthropic: tool_choice words become its objects; its own objects pass", function()
    local function choice(c)
      return anthropic.body(client("anthropic"), { messages = { { role = "user", content = "x" } }, tool_choice = c })
        .tool_choice
    end
    assert.same({ type = "auto" }, choice("auto"))
    assert.same({ type = "any" }, choice("required"))
    assert.same({ type = "tool", name = "add" }, choice({ type = "tool", name = "add" }))
  end)
end)
