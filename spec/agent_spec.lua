-- owl.agent, the tool loop, over real HTTP against the mock, for each
-- provider, streamed and not: the mock plays scripted tool calls and its
-- request log shows what owl sent back (the transcript in the provider's
-- shape, every call id answered, errors marked).
local owl = require("owl")
local core = require("owl.core")
local mock = require("support.mock")
local flow = require("support.flow")
local S = owl.schema

local function user(text) return { { role = "user", content = text } } end

describe("owl.agent", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local add = flow.add_tool()

  for _, provider in ipairs({ "openai", "anthropic" }) do
    for _, stream in ipairs({ false, true }) do
      describe(provider .. (stream and ", streamed" or ", whole"), function()
        local function client(headers)
          return owl.client{ provider = provider, base_url = provider == "openai" and server.url or server.base,
                             api_key = "sk-agent", model = "m", headers = headers }
        end
        local function request(text) return { messages = user(text), stream = stream } end

        -- The requests the mock got, bodies decoded.
        local function bodies()
          local out = {}
          for i, r in ipairs(server:requests()) do out[i] = mock.json_decode(r.body) end
          return out
        end

        -- The tool results a request body carries, in order, as { id,
        -- content, is_error } read from the provider's own shape.
        local function wire_results(body)
          local out = {}
          for _, m in ipairs(body.messages) do
            if provider == "openai" and m.role == "tool" then
              local content = m.content
              local is_error = content:find("^Error: ") ~= nil
              out[#out + 1] = { id = m.tool_call_id, content = is_error and content:sub(8) or content, is_error = is_error }
            elseif provider == "anthropic" and m.role == "user" and type(m.content) == "table" then
              for _, b in ipairs(m.content) do
                if b.type == "tool_result" then
                  out[#out + 1] = { id = b.tool_use_id, content = b.content or "", is_error = b.is_error == true }
                end
              end
            end
          end
          return out
        end

        -- The tool call ids of the assistant turns a body carries, in order.
        local function wire_call_ids(body)
          local out = {}
          for _, m in ipairs(body.messages) do
            if m.role == "assistant" then
              if provider == "openai" then
                for _, tc in ipairs(m.tool_calls or {}) do
                  assert.equal("function", tc.type)
                  out[#out + 1] = tc.id
                end
              else
                for _, b in ipairs(m.content) do
                  if b.type == "tool_use" then out[#out + 1] = b.id end
                end
              end
            end
          end
          return out
        end

        it("loops until the model answers without tools, usage summed, every call id answered", function()
          server:script{
            { tool_calls = { { id = "call_1", name = "add", arguments = { a = 1, b = 2 } } } },
            { text = "Checking once more.", tool_calls = { { id = "call_2", name = "add", arguments = { a = 3, b = 4 } } } },
            { text = "1 + 2 = 3 and 3 + 4 = 7." },
          }
          local events = {}
          local res, err = owl.agent(client(), request("Add."), { tools = { add },
            on_event = function(name, data) events[#events + 1] = name .. ":" .. tostring(data.step) end })
          assert.is_nil(err)
          assert.equal("1 + 2 = 3 and 3 + 4 = 7.", res.text)
          assert.is_nil(res.max_steps_reached)
          assert.equal(3, #res.steps)
          assert.equal("3", res.steps[1].results[1].content)
          assert.equal("7", res.steps[2].results[1].content)
          assert.equal("Checking once more.", res.steps[2].text)
          assert.same({ input_tokens = 30, output_tokens = 15, cached_input_tokens = 0 }, res.usage)
          assert.same({ input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, res.steps[2].usage)
          -- the neutral transcript: user, assistant+call, tool, assistant+call, tool, assistant
          local roles = {}
          for i, m in ipairs(res.messages) do roles[i] = m.role end
          assert.same({ "user", "assistant", "tool", "assistant", "tool", "assistant" }, roles)
          assert.same({ "step_start:1", "tool_start:1", "tool_done:1", "step_done:1", "step_start:2", "tool_start:2",
                        "tool_done:2", "step_done:2", "step_start:3", "step_done:3" }, events)

          local sent = bodies()
          assert.equal(3, #sent)
          assert.same({}, wire_results(sent[1]))
          assert.same({ "call_1" }, wire_call_ids(sent[2]))
          assert.same({ { id = "call_1", content = "3", is_error = false } }, wire_results(sent[2]))
          assert.same({ "call_1", "call_2" }, wire_call_ids(sent[3]))
          assert.same({ { id = "call_1", content = "3", is_error = false }, { id = "call_2", content = "7", is_error = false } },
            wire_results(sent[3]))
          for _, body in ipairs(sent) do
            assert.equal(1, #body.tools)
            if provider == "openai" then
              assert.same({ name = "add", description = "Adds two numbers.", parameters = mock.json_decode(
                require("owl.json").encode(add.parameters)) }, body.tools[1]["function"])
            else
              assert.equal("add", body.tools[1].name)
              assert.equal("object", body.tools[1].input_schema.type)
            end
            assert.is_nil(body.tool_choice)
          end
          if provider == "anthropic" then
            -- the second turn's text is a text block before its tool_use
            local turn = sent[3].messages[4]
            assert.same({ type = "text", text = "Checking once more." }, turn.content[1])
          else
            assert.equal("Checking once more.", sent[3].messages[4].content)
            assert.equal(mock.null, sent[2].messages[2].content)
          end
        end)

        it("runs the calls of one turn at once (two handlers sleeping 0.2 s take 0.2 s)", function()
          local spans = {}
          local nap = owl.tool{ name = "nap", description = "Sleeps.", parameters = S.object{ { "id", S.string() } },
            handler = function(args)
              local started = core.now()
              owl.sleep(0.2)
              spans[args.id] = { started, core.now() }
              return "slept " .. args.id
            end }
          server:script{
            { tool_calls = { { id = "n1", name = "nap", arguments = { id = "x" } },
                             { id = "n2", name = "nap", arguments = { id = "y" } } } },
            { text = "rested" },
          }
          local started = core.now()
          local res = assert(owl.agent(client(), request("Rest."), { tools = { nap } }))
          local took = core.now() - started
          assert.equal("rested", res.text)
          -- each began before the other ended: they overlapped
          assert.is_true(spans.x[1] < spans.y[2] and spans.y[1] < spans.x[2])
          assert.is_true(took < 0.38, "took " .. took .. " s")
          assert.same({ { id = "n1", content = "slept x", is_error = false }, { id = "n2", content = "slept y", is_error = false } },
            wire_results(bodies()[2]))
        end)

        it("proves the overlap without timing: both handlers' calls meet at the mock's barrier", function()
          local inner = client({ ["x-mock-barrier"] = "2", ["x-mock-barrier-timeout-ms"] = "5000" })
          local ask = owl.tool{ name = "ask", description = "Asks a model.", handler = function(_, ctx)
            local r, e = inner:chat{ messages = user("inner " .. ctx.id) }
            if not r then return nil, e end
            return r.text
          end }
          server:script{ { tool_calls = { { id = "a1", name = "ask", arguments = {} },
                                          { id = "a2", name = "ask", arguments = {} } } } }
          local res = assert(owl.agent(client(), request("Ask twice."), { tools = { ask } }))
          assert.is_false(res.steps[1].results[1].is_error, res.steps[1].results[1].content)
          assert.equal("```\ninner a1\n```", res.steps[1].results[1].content)
          assert.equal("```\ninner a2\n```", res.steps[1].results[2].content)
          assert.equal(2, server:stats().max_in_flight)
        end)

        it("gives bad JSON, a schema failure, an unknown tool and a raising handler back as errors, and goes on", function()
          local boom = owl.tool{ name = "boom", description = "Fails.", handler = function() error("the disk is full") end }
          local refuse = owl.tool{ name = "refuse", description = "Says no.", handler = function() return nil, "not today" end }
          server:script{
            { tool_calls = {
              { id = "b1", name = "add", arguments = '{"a": 1, "b": ' },
              { id = "b2", name = "add", arguments = { a = "one", b = 2 } },
              { id = "b3", name = "mul", arguments = { a = 1, b = 2 } },
              { id = "b4", name = "boom", arguments = {} },
              { id = "b5", name = "refuse", arguments = {} },
              { id = "b6", name = "add", arguments = { a = 2, b = 2 } },
            } },
            { text = "Sorry." },
          }
          local res, err = owl.agent(client(), request("Try."), { tools = { add, boom, refuse } })
          assert.is_nil(err)
          assert.equal("Sorry.", res.text)
          local r = res.steps[1].results
          assert.equal(6, #r)
          for i = 1, 5 do assert.is_true(r[i].is_error, "result " .. i) end
          assert.is_false(r[6].is_error)
          assert.equal("4", r[6].content)
          if provider == "openai" or stream then
            assert.matches("^invalid arguments for tool 'add': arguments are not valid JSON: ", r[1].content)
          else
            -- Anthropic's whole answer carries a parsed input: the mock sends
            -- text that is not JSON as a string input, which is not an object
            assert.equal("invalid arguments for tool 'add': the tool call's input is not a JSON object", r[1].content)
          end
          assert.matches("^invalid arguments for tool 'add': /a: ", r[2].content)
          assert.equal('unknown tool "mul"; the tools are: add, boom, refuse', r[3].content)
          assert.matches("^the tool raised an error: .*the disk is full$", r[4].content)
          assert.equal("not today", r[5].content)
          local sent = wire_results(bodies()[2])
          assert.equal(6, #sent)
          for i = 1, 6 do
            assert.equal("b" .. i, sent[i].id)
            assert.equal(r[i].content, sent[i].content)
            assert.equal(r[i].is_error, sent[i].is_error)
          end
          if provider == "anthropic" then
            -- every result of the turn in the one user message after it
            local msgs = bodies()[2].messages
            assert.equal(3, #msgs)
            assert.equal(6, #msgs[3].content)
          end
        end)

        it("lets a handler wait: it calls client:chat and its answer is the result", function()
          local c = client()
          local summarize = owl.tool{ name = "summarize", description = "Summarizes a text.",
            parameters = S.object{ { "text", S.string() } },
            handler = function(args, ctx)
              assert.equal("summarize", ctx.name)
              assert.equal(1, ctx.step)
              local r, e = ctx.client:chat{ messages = user("Summarize: " .. args.text) }
              if not r then return nil, e end
              return r.text
            end }
          server:script{
            { tool_calls = { { id = "s1", name = "summarize", arguments = { text = "a long text" } } } },
            { text = "short" },
            { text = "It says: short." },
          }
          local res = assert(owl.agent(c, request("Summarize it."), { tools = { summarize } }))
          assert.equal("It says: short.", res.text)
          assert.equal("short", res.steps[1].results[1].content)
          local sent = bodies()
          assert.equal(3, #sent)
          assert.is_nil(sent[2].tools) -- the handler's own call, without tools
          assert.same({ { id = "s1", content = "short", is_error = false } }, wire_results(sent[3]))
        end)

        it("at max_steps makes one last call with tools disabled and marks the answer", function()
          local loop_call = { tool_calls = { { name = "add", arguments = { a = 1, b = 1 } } } }
          server:script{ loop_call, loop_call, { text = "I stop here: 2." } }
          local res = assert(owl.agent(client(), request("Keep adding."), { tools = { add }, max_steps = 2 }))
          assert.is_true(res.max_steps_reached)
          assert.equal("I stop here: 2.", res.text)
          assert.equal(3, #res.steps)
          assert.same({ input_tokens = 30, output_tokens = 15, cached_input_tokens = 0 }, res.usage)
          local sent = bodies()
          assert.equal(3, #sent)
          assert.is_nil(sent[2].tool_choice)
          -- the tools stay (Anthropic refuses tool blocks without them), tool_choice none
          assert.equal(1, #sent[3].tools)
          if provider == "openai" then
            assert.equal("none", sent[3].tool_choice)
          else
            assert.same({ type = "none" }, sent[3].tool_choice)
          end
          assert.equal(2, #wire_results(sent[3]))
        end)

        it("cuts a tool result over max_tool_result_bytes, with a note saying so", function()
          local big = owl.tool{ name = "dump", description = "Dumps.", handler = function() return ("é"):rep(3000) end }
          server:script{ { tool_calls = { { id = "d1", name = "dump", arguments = {} } } }, { text = "ok" } }
          local res = assert(owl.agent(client(), request("Dump."), { tools = { big }, max_tool_result_bytes = 1001 }))
          local r = res.steps[1].results[1]
          assert.is_true(r.truncated)
          assert.is_false(r.is_error)
          -- 1001 bytes would split a two-byte character: cut at 1000
          assert.equal(("é"):rep(500) .. "\n[owl: this tool result was cut to its first 1000 of 6000 bytes "
            .. "(max_tool_result_bytes)]", r.content)
          assert.equal(r.content, wire_results(bodies()[2])[1].content)
        end)

        it("sends a table result as JSON, repairs text that is not UTF-8, and refuses a function", function()
          local kinds = owl.tool{ name = "kinds", description = "Returns a kind of value.",
            parameters = S.object{ { "kind", S.enum{ "table", "bytes", "fn" } } },
            handler = function(args)
              if args.kind == "table" then return { n = 1 } end
              if args.kind == "bytes" then return "a\255b" end
              return print
            end }
          server:script{
            { tool_calls = { { name = "kinds", arguments = { kind = "table" } }, { name = "kinds", arguments = { kind = "bytes" } },
                             { name = "kinds", arguments = { kind = "fn" } } } },
            { text = "ok" },
          }
          local res = assert(owl.agent(client(), request("Kinds."), { tools = { kinds } }))
          local r = res.steps[1].results
          assert.same({ '{"n":1}', false }, { r[1].content, r[1].is_error })
          assert.same({ "a\239\191\189b", false }, { r[2].content, r[2].is_error })
          assert.is_true(r[3].is_error)
          assert.matches("^the tool returned a function", r[3].content)
          assert.equal('{"n":1}', wire_results(bodies()[2])[1].content)
        end)

        it("with max_steps = 0 makes the one call with tools disabled", function()
          server:script{ { text = "No tools for me." } }
          local res = assert(owl.agent(client(), request("Hi."), { tools = { add }, max_steps = 0 }))
          assert.is_true(res.max_steps_reached)
          assert.equal(1, #res.steps)
          local tc = bodies()[1].tool_choice
          assert.is_true(tc == "none" or (type(tc) == "table" and tc.type == "none"))
        end)

        it("returns a failed model call as nil, err with the steps so far in err.partial", function()
          server:script{ { tool_calls = { { id = "e1", name = "add", arguments = { a = 5, b = 5 } } } }, { fault = "500" } }
          local c = client()
          c.max_retries = 0 -- the 500 fails its call (spec/retry_spec.lua retries)
          local res, err = owl.agent(c, request("Add."), { tools = { add } })
          assert.is_nil(res)
          assert.equal("http", err.kind)
          assert.equal(500, err.status)
          assert.equal(1, #err.partial.steps)
          assert.equal("10", err.partial.steps[1].results[1].content)
          assert.same({ input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, err.partial.usage)
          assert.equal("tool", err.partial.messages[#err.partial.messages].role)
        end)
      end)
    end
  end

  describe("misuse", function()
    local c
    before_each(function() c = owl.client{ base_url = server.url, api_key = "k", model = "m" } end)
    local function raises(fn, text)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(text, 1, true), tostring(err))
    end
    it("refuses what is not a client, a request or a tool list, naming it", function()
      raises(function() owl.agent({}, { messages = {} }) end, "owl.agent: the first argument must be an owl client")
      raises(function() owl.agent(c, {}) end, "owl.agent: request has no messages")
      raises(function() owl.agent(c, { messages = {}, tools = { add } }) end, "give the tools as owl.agent's option")
      raises(function() owl.agent(c, { messages = {} }, { tools = { {} } }) end, "owl.agent: tools[1] is not an owl.tool")
      raises(function() owl.agent(c, { messages = {} }, { tools = { add, add } }) end, "two tools are named 'add'")
      raises(function() owl.agent(c, { messages = {} }, { max_steps = -1 }) end, "'max_steps' must be an integer from 0")
      raises(function() owl.agent(c, { messages = {} }, { max_tool_result_bytes = 0 }) end,
        "'max_tool_result_bytes' must be a positive integer")
      raises(function() owl.agent(c, { messages = {} }, { maxsteps = 3 }) end, "owl.agent: unknown option 'maxsteps'")
      assert.equal(0, server:stats().total)
    end)
  end)
end)
