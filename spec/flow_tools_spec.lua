-- owl.run with tools: a worker given tools (by `tools`, or per subtask by
-- `tools_for`) runs the tool loop, each of its model calls counted in the
-- run's usage, its events flowing; a worker without tools stays one call.
-- For each provider, streamed and not. The workers' first calls meet at
-- the mock's barrier, so the script is consumed in a known order: both
-- first calls, then the tool workers' second calls.
local owl = require("owl")
local mock = require("support.mock")
local flow = require("support.flow")

describe("owl.run with tools", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local add = flow.add_tool(0.01) -- a handler that waits, inside a worker's task
  local call_add = { name = "add", arguments = { a = 2, b = 3 } }

  for _, provider in ipairs({ "openai", "anthropic" }) do
    for _, stream in ipairs({ false, true }) do
      describe(provider .. (stream and ", streamed" or ", whole"), function()
        local function client(no_barrier)
          return owl.client{ provider = provider, base_url = provider == "openai" and server.url or server.base,
                             api_key = "sk-flow-tools", model = "m",
                             headers = { ["x-mock-subtasks"] = "2", ["x-mock-barrier"] = not no_barrier and "2" or nil } }
        end

        -- The LLM requests the mock got, bodies decoded, split by whether
        -- they carried tools.
        local function requests()
          local with, without = {}, {}
          for _, r in ipairs(server:requests()) do
            local body = mock.json_decode(r.body)
            if body.tools ~= nil and (provider == "openai" or body.tools[1].name == "add") then
              with[#with + 1] = body
            else
              without[#without + 1] = body
            end
          end
          return with, without
        end

        it("gives tools_for's tools to its subtask alone; the other worker stays one call", function()
          server:script{
            {}, -- the plan (two subtasks, from the header)
            -- both first calls: text for the worker without tools, a call for the other
            { text = "plain output", tool_calls = { call_add } },
            { text = "plain output", tool_calls = { call_add } },
            { text = "2 + 3 = 5" },
          }
          local events, asked = {}, {}
          local result, err = owl.run(client(), "Add things.", {
            stream = stream,
            tools_for = function(subtask)
              asked[#asked + 1] = subtask.name
              if subtask.name == "part_1" then return { add } end
            end,
            on_event = function(name, data)
              if name == "worker_done" or name:find("^worker_tool") or name == "worker_step" then
                events[#events + 1] = { name = name, data = data }
              end
            end,
          })
          assert.is_nil(err)
          table.sort(asked)
          assert.same({ "part_1", "part_2" }, asked)
          assert.equal("2 + 3 = 5", result.outputs[1])
          assert.equal("plain output", result.outputs[2])
          -- plan 1 + tool worker 2 + plain worker 1 + aggregator 1
          assert.same({ calls = 3, input_tokens = 30, output_tokens = 15, cached_input_tokens = 0 }, result.usage.workers)
          assert.equal(5, result.usage.total.calls)

          local by = {}
          for _, e in ipairs(events) do
            by[e.name] = by[e.name] or {}
            table.insert(by[e.name], e.data)
          end
          assert.equal(1, #by.worker_tool_start)
          assert.same({ 1, "part_1", "add" }, { by.worker_tool_done[1].index, by.worker_tool_done[1].name,
                                               by.worker_tool_done[1].tool })
          assert.is_true(by.worker_tool_done[1].ok)
          assert.equal(2, #by.worker_step)
          for _, d in ipairs(by.worker_done) do
            assert.is_true(d.ok)
            if d.index == 1 then
              assert.same({ input_tokens = 20, output_tokens = 10, cached_input_tokens = 0 }, d.usage)
            else
              assert.same({ input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, d.usage)
            end
          end

          local with, without = requests()
          assert.equal(2, #with)
          assert.equal(stream, with[1].stream == true)
          local last = with[2].messages[#with[2].messages]
          if provider == "openai" then
            assert.same({ role = "tool", tool_call_id = last.tool_call_id, content = "5" }, last)
          else
            assert.equal("tool_result", last.content[1].type)
            assert.equal("5", last.content[1].content)
          end
          for _, body in ipairs(without) do assert.is_nil(body.tool_choice) end
        end)

        it("gives `tools` to every worker and honours max_steps", function()
          server:script{ {}, { tool_calls = { call_add } }, { tool_calls = { call_add } }, { text = "done" }, { text = "done" } }
          local result = assert(owl.run(client(), "Add.", { stream = stream, tools = { add }, max_steps = 1 }))
          assert.same({ "done", "done" }, result.outputs)
          assert.equal(4, result.usage.workers.calls)
          local with = requests()
          assert.equal(4, #with)
          local nones = 0
          for _, body in ipairs(with) do
            local tc = body.tool_choice
            if tc == "none" or (type(tc) == "table" and tc.type == "none") then nones = nones + 1 end
          end
          assert.equal(2, nones) -- each worker's second call is its last, tools off
        end)

        it("fails a worker whose tools_for answers no list of tools, and the other still runs", function()
          -- one worker call only: no barrier to meet
          server:script{ {}, { text = "ok" } }
          local result, err = owl.run(client(true), "Go.", { stream = stream, tools_for = function(subtask)
            if subtask.name == "part_1" then return { "not a tool" } end
          end })
          assert.is_nil(result)
          assert.equal("worker", err.kind)
          assert.equal("invalid", err.cause.kind)
          assert.truthy(err.cause.message:find("tools_for for subtask 'part_1' returned no list of owl.tool", 1, true))
          assert.equal("ok", err.partial.outputs[2])
        end)
      end)
    end
  end

  it("checks the tool options before any call", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    local function raises(opts, text)
      local ok, err = pcall(owl.run, c, "x", opts)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(text, 1, true), tostring(err))
    end
    raises({ tools = { {} } }, "owl.run: option 'tools': tools[1] is not an owl.tool")
    raises({ tools = add }, "owl.run: option 'tools'")
    raises({ max_steps = 1.5 }, "option 'max_steps' must be an integer from 0 to 1000000, got 1.5")
    raises({ max_tool_result_bytes = -1 }, "option 'max_tool_result_bytes' must be a positive integer")
    raises({ tools_for = {} }, "option 'tools_for' must be a function")
    assert.equal(0, server:stats().total)
  end)
end)
