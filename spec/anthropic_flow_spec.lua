-- spec/anthropic_flow_spec.lua: owl.run on provider anthropic, end to end
-- against the mock's POST /v1/messages, in both ways of asking for the plan
-- (output_config and a forced tool): the result, the usage, and what every
-- request carried (the system prompt at the top level, max_tokens, the
-- structured-output fields, x-api-key and anthropic-version).
local owl = require("owl")
local prompts = require("owl.prompts")
local mock = require("support.mock")

describe("owl.run on provider anthropic", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(mode, headers)
    return owl.client{ provider = "anthropic", base_url = server.base, api_key = "sk-ant-flow", model = "claude-test",
                       structured = mode, headers = headers }
  end

  for _, mode in ipairs({ "output_config", "tool" }) do
    describe("with structured = '" .. mode .. "'", function()
      it("runs the plan, every worker at once and the aggregator", function()
        local n = 4
        local c = client(mode, { ["x-mock-subtasks"] = tostring(n), ["x-mock-barrier"] = tostring(n),
                                 ["x-mock-barrier-timeout-ms"] = "10000" })
        local events = {}
        local result, err = owl.run(c, "Write a word counter in Lua.",
          { on_event = function(name) events[#events + 1] = name end })
        assert.is_nil(err)
        assert.equal("Mock plan for: Write a word counter in Lua.", result.objective)
        assert.equal(n, #result.subtasks)
        for i = 1, n do
          assert.equal("part_" .. i, result.subtasks[i].name)
          assert.is_nil(result.outputs[i]:find("```", 1, true))
          assert.truthy(result.outputs[i]:find("Part " .. i .. " of " .. n .. " of the problem.", 1, true))
          assert.truthy(result.final:find("Part " .. i .. " of " .. n .. " of the problem.", 1, true))
        end
        assert.same({ calls = n + 2, input_tokens = 10 * (n + 2), output_tokens = 5 * (n + 2), cached_input_tokens = 0 },
          result.usage.total)
        assert.equal("plan", events[1])
        assert.equal("aggregate_start", events[#events - 1])
        assert.equal("done", events[#events])
        local stats = server:stats()
        assert.equal(n, stats.max_in_flight)
        assert.equal(n + 2, stats.paths["/v1/messages"])
      end)

      it("sends every request in Anthropic's shape", function()
        local problem = "Problem text"
        assert(owl.run(client(mode, { ["x-mock-subtasks"] = "2" }), problem))
        local reqs = server:requests()
        assert.equal(4, #reqs)
        for _, req in ipairs(reqs) do
          assert.equal("/v1/messages", req.path)
          assert.equal("sk-ant-flow", req.headers["x-api-key"])
          assert.equal("2023-06-01", req.headers["anthropic-version"])
          assert.equal("application/json", req.headers["content-type"])
          assert.is_nil(req.headers.authorization)
          local body = mock.json_decode(req.body)
          assert.equal("claude-test", body.model)
          assert.equal(16384, body.max_tokens)
          assert.equal("string", type(body.system))
          for _, m in ipairs(body.messages) do assert.are_not.equal("system", m.role) end
          assert.equal(1, #body.messages)
          assert.equal("user", body.messages[1].role)
          assert.is_nil(body.structured)
          assert.is_nil(body.response_format)
        end

        -- the orchestrator: its system prompt on top, the plan schema where the mode puts it
        local plan_req = mock.json_decode(reqs[1].body)
        assert.equal(prompts.render(prompts.orchestrator.system, { problem = problem }), plan_req.system)
        assert.equal(problem, plan_req.messages[1].content)
        local schema
        if mode == "tool" then
          assert.is_nil(plan_req.output_config)
          assert.equal(1, #plan_req.tools)
          assert.equal("plan", plan_req.tools[1].name)
          assert.is_string(plan_req.tools[1].description)
          assert.same({ type = "tool", name = "plan" }, plan_req.tool_choice)
          schema = plan_req.tools[1].input_schema
        else
          assert.is_nil(plan_req.tools)
          assert.is_nil(plan_req.tool_choice)
          assert.equal("json_schema", plan_req.output_config.format.type)
          schema = plan_req.output_config.format.schema
        end
        assert.same({ "objective", "subtasks" }, schema.required)
        assert.is_false(schema.additionalProperties)
        assert.same({ "name", "description" }, schema.properties.subtasks.items.required)

        -- workers and the aggregator ask for plain text
        for i = 2, 4 do
          local body = mock.json_decode(reqs[i].body)
          assert.is_nil(body.output_config)
          assert.is_nil(body.tools)
          assert.is_nil(body.tool_choice)
        end
        local agg = mock.json_decode(reqs[4].body)
        assert.truthy(agg.messages[1].content:find("Part 1 of 2 of the problem.", 1, true))
        assert.truthy(agg.messages[1].content:find("Part 2 of 2 of the problem.", 1, true))
      end)

      it("uses each role's model, and DEFAULT_MAX_TOKENS as changed at run time", function()
        local anthropic = require("owl.providers.anthropic")
        local saved = anthropic.DEFAULT_MAX_TOKENS
        finally(function() anthropic.DEFAULT_MAX_TOKENS = saved end)
        anthropic.DEFAULT_MAX_TOKENS = 2048
        assert(owl.run(client(mode, { ["x-mock-subtasks"] = "1" }), "p",
          { models = { orchestrator = "claude-big", worker = "claude-small", aggregator = "claude-mid" } }))
        local models = {}
        for i, req in ipairs(server:requests()) do
          local body = mock.json_decode(req.body)
          models[i] = body.model
          assert.equal(2048, body.max_tokens)
        end
        assert.same({ "claude-big", "claude-small", "claude-mid" }, models)
      end)

      it("a refusal of the plan stops the run with kind 'refusal'", function()
        server:script{ { body = { type = "message", role = "assistant", content = {}, stop_reason = "refusal",
          stop_details = { type = "refusal", explanation = "Blocked by policy." },
          usage = { input_tokens = 4, output_tokens = 0 } } } }
        local result, err = owl.run(client(mode), "p")
        assert.is_nil(result)
        assert.equal("refusal", err.kind)
        assert.equal("the orchestrator refused: Blocked by policy.", err.message)
      end)

      it("a plan cut off at max_tokens stops the run with kind 'length'", function()
        local block = mode == "tool" and { type = "tool_use", id = "t", name = "plan", input = {} }
                                      or { type = "text", text = '{"objec' }
        server:script{ { body = { type = "message", role = "assistant", content = { block }, stop_reason = "max_tokens",
          usage = { input_tokens = 4, output_tokens = 16384 } } } }
        local _, err = owl.run(client(mode), "p")
        assert.equal("length", err.kind)
        assert.equal(16384, err.partial.usage.orchestrator.output_tokens)
      end)
    end)
  end

  it("counts cached input in the run's usage", function()
    local function reply(text)
      return { body = { type = "message", role = "assistant", stop_reason = "end_turn",
        content = { { type = "text", text = text } },
        usage = { input_tokens = 2, cache_creation_input_tokens = 0, cache_read_input_tokens = 100, output_tokens = 3 } } }
    end
    server:script{
      reply('{"objective":"o","subtasks":[{"name":"a","description":"d"}]}'), reply("worker out"), reply("final out"),
    }
    local result = assert(owl.run(client(), "p"))
    assert.equal("final out", result.final)
    assert.same({ calls = 3, input_tokens = 306, output_tokens = 9, cached_input_tokens = 300 }, result.usage.total)
  end)
end)
