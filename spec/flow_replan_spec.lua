-- spec/flow_replan_spec.lua: re-planning from results (issue 8, §3): after
-- each round the orchestrator reads every subtask with its shortened output
-- and answers {done, subtasks}; new subtasks run as the next round with the
-- earlier outputs in their prompts, until done or max_rounds. On both
-- providers, streaming and not.
local owl = require("owl")
local json = require("owl.json")
local mock = require("support.mock")
local F = require("support.flow")

local function answer(done, subtasks)
  return { json = json.encode({ done = done, subtasks = json.array(subtasks or {}) }) }
end

for _, provider in ipairs(F.providers) do
  for _, stream in ipairs({ false, true }) do
    describe("owl.run with replan on " .. provider .. (stream and ", streaming" or ""), function()
      local server
      setup(function() server = mock.start() end)
      teardown(function() server:stop() end)
      before_each(function() server:reset() end)

      it("asks the orchestrator after the round, with every subtask and its output, and stops when done", function()
        local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
        local events = {}
        local result = assert(owl.run(c, "Write a stack.", { replan = true, stream = stream,
          on_event = function(name, data)
            if name == "round_start" or name == "replan" then events[#events + 1] = { name, data.round, data.done } end
          end }))
        -- the mock's answer to {done, subtasks} is done = true
        assert.same({ { "round_start", 1 }, { "replan", 1, true } }, events)
        assert.same({ { round = 1, first = 1, last = 2, done = true, seconds = result.rounds[1].seconds } }, result.rounds)
        local reqs = F.requests(server)
        assert.equal(5, #reqs) -- plan, 2 workers, the re-plan, the aggregator
        local rp = reqs[4]
        assert.is_not_nil(rp.structured)
        local s = F.schema_of(rp.body)
        assert.same({ "done", "subtasks" }, s.required)
        assert.equal("boolean", s.properties.done.type)
        assert.same({ "name", "description" }, s.properties.subtasks.items.required)
        assert.is_nil(s.properties.subtasks.minItems)
        assert.truthy(rp.user:find("Round 1 of at most 3 is done.", 1, true))
        for i = 1, 2 do
          assert.truthy(rp.user:find("### part_" .. i .. "\nPart " .. i .. " of 2 of the problem.\n\nResult:\n"
            .. result.outputs[i], 1, true), "output " .. i)
        end
        assert.equal(2, result.usage.orchestrator.calls)
      end)

      it("runs the new subtasks as the next round, with the earlier outputs, and aggregates every round", function()
        local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
        server:script{ {}, {}, {},
          answer(false, { { name = "tests", description = "Write tests for the stack." } }), {},
          answer(true) }
        local result = assert(owl.run(c, "Write a stack.", { replan = true, stream = stream }))
        assert.equal(3, #result.subtasks)
        assert.equal("tests", result.subtasks[3].name)
        assert.equal(3, #result.outputs)
        assert.equal(2, #result.rounds)
        assert.same({ 1, 2, false }, { result.rounds[1].first, result.rounds[1].last, result.rounds[1].done })
        assert.same({ 3, 3, true }, { result.rounds[2].first, result.rounds[2].last, result.rounds[2].done })
        local reqs = F.requests(server)
        assert.equal(7, #reqs)
        local tests = F.worker(reqs, "tests")
        assert.truthy(tests.user:find("Results of earlier rounds:\n\n### part_1\n" .. result.outputs[1], 1, true))
        assert.truthy(tests.user:find("### part_2\n" .. result.outputs[2], 1, true))
        -- the second re-plan saw all three; the aggregator merged all three
        assert.truthy(reqs[6].user:find("Round 2 of at most 3", 1, true))
        assert.truthy(reqs[6].user:find("### tests\nWrite tests for the stack.", 1, true))
        assert.truthy(result.final:find("Write tests for the stack.", 1, true))
        assert.truthy(result.final:find("Part 2 of 2 of the problem.", 1, true))
      end)

      it("stops at max_rounds without asking again", function()
        local c = F.client(server, provider, { ["x-mock-subtasks"] = "1" })
        server:script{ {}, {}, answer(false, { { name = "more", description = "More." } }), {} }
        local result = assert(owl.run(c, "p", { replan = true, max_rounds = 2, stream = stream }))
        assert.equal(2, #result.rounds)
        assert.is_nil(result.rounds[2].done)
        assert.equal(5, server:stats().total) -- plan, worker, re-plan, worker, aggregator
      end)
    end)
  end

  describe("re-planning on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    it("shortens each output to its share of replan_bytes", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2", ["x-mock-reply-bytes"] = "5000" })
      local result = assert(owl.run(c, "p", { replan = true, replan_bytes = 1000 }))
      local out = result.outputs[1]
      assert.truthy(#out > 4900)
      local rp = F.requests(server)[4]
      assert.truthy(rp.user:find(out:sub(1, 500) .. "... (" .. (#out - 500) .. " more bytes)", 1, true))
      assert.is_nil(rp.user:find(result.outputs[1]:sub(1, 501), 1, true))
      assert.truthy(#rp.user < 2000)
    end)

    it("raises before any call for a plan schema without subtasks", function()
      local c = F.client(server, provider)
      assert.has_error(function() owl.run(c, "p", { replan = true, schema = { type = "object" } }) end,
        "owl.run: replan needs a plan schema with a 'subtasks' property")
      assert.equal(0, server:stats().total)
    end)

    it("refuses an answer that fails its schema, keeping the round's outputs", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      server:script{ {}, {}, {}, { json = json.encode({ subtasks = json.array({}) }) } }
      local result, err = owl.run(c, "p", { replan = true })
      assert.is_nil(result)
      assert.equal("invalid", err.kind)
      assert.matches("the re-plan does not match its schema", err.message, 1, true)
      assert.is_string(err.partial.outputs[1])
      assert.is_string(err.partial.outputs[2])
      assert.equal(1, #err.partial.rounds)
    end)

    it("refuses new subtasks past max_subtasks, or depending on an unknown one", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      server:script{ {}, {}, {}, answer(false, { { name = "a", description = "A." }, { name = "b", description = "B." } }) }
      local _, err = owl.run(c, "p", { replan = true, max_subtasks = 3 })
      assert.equal("invalid", err.kind)
      assert.matches("would make 4 subtasks in all, more than max_subtasks (3)", err.message, 1, true)
      assert.equal(4, server:stats().total)
      server:reset()
      server:script{ {}, {}, {}, answer(false, { { name = "a", description = "A.", depends_on = json.array({ "part_1", "zz" }) } }) }
      _, err = owl.run(c, "p", { replan = true, schema = owl.flow.dag_plan_schema })
      assert.equal("the plan names dependencies that are not subtasks: 'a' depends on 'zz'", err.message)
    end)

    it("lets a new subtask depend on an earlier one, whose whole output it gets", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "1", ["x-mock-reply-bytes"] = "3000" })
      server:script{ {}, {}, answer(false, { { name = "next", description = "Go on.", depends_on = json.array({ "part_1" }) } }) }
      local result = assert(owl.run(c, "p", { replan = true, max_rounds = 2, replan_bytes = 300,
                                              schema = owl.flow.dag_plan_schema }))
      local nxt = F.worker(F.requests(server), "next")
      assert.truthy(nxt.user:find("their results:\n\n### part_1\n" .. result.outputs[1] .. "\n", 1, true))
    end)
  end)
end
