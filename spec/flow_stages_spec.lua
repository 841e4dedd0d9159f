-- spec/flow_stages_spec.lua: the stages of owl.run as public functions
-- (issue 8, §6): a flow of one's own from owl.flow.context, plan, work and
-- aggregate; the `worker` option that replaces a worker (a nested owl.run
-- among them); plan fields of any type in worker prompts. On both providers.
local owl = require("owl")
local json = require("owl.json")
local mock = require("support.mock")
local F = require("support.flow")

for _, provider in ipairs(F.providers) do
  describe("owl.flow stages on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    it("recombine into a flow of one's own: plan, work twice, aggregate", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      local ctx = owl.flow.context(c, "Write a queue.", {})
      local plan = assert(owl.flow.plan(ctx))
      assert.equal(2, #plan.subtasks)
      local outs = assert(owl.flow.work(ctx, plan))
      assert.equal(2, #outs)
      -- a second pass over one subtask of one's own: it joins the run's list
      local extra = { name = "review", description = "Review the queue." }
      local more = assert(owl.flow.work(ctx, plan, { extra }))
      assert.equal(1, #more)
      assert.equal(3, #ctx.partial.subtasks)
      assert.same({ outs[1], outs[2], more[1] }, ctx.partial.outputs)
      -- the second pass saw the first one's results (shortened) in {earlier}
      assert.truthy(F.worker(F.requests(server), "review").user:find("Results of earlier rounds:\n\n### part_1\n", 1, true))
      local final, tree = owl.flow.aggregate(ctx)
      assert.is_string(final)
      assert.same({ { inputs = 3, groups = { { first = 1, last = 3 } }, seconds = tree[1].seconds } }, tree)
      for _, s in ipairs({ "Part 1 of 2", "Part 2 of 2", "Review the queue." }) do
        assert.truthy(final:find(s, 1, true), s)
      end
      assert.same({ calls = 5, input_tokens = 50, output_tokens = 25, cached_input_tokens = 0 }, ctx.usage.total)
      -- aggregate(ctx, plan) merges that plan's subtasks alone
      server:reset()
      final = assert(owl.flow.aggregate(ctx, plan))
      assert.is_nil(final:find("Review the queue.", 1, true))
    end)

    it("a stage that fails returns nil and an error whose partial holds the run so far", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      local ctx = owl.flow.context(c, "p")
      local plan = assert(owl.flow.plan(ctx))
      server:script{ { fault = "500" }, {} }
      local outs, err = owl.flow.work(ctx, plan)
      assert.is_nil(outs)
      assert.equal("worker", err.kind)
      assert.equal(ctx.partial, err.partial)
      assert.equal(1, #(function() local t = {} for _, o in ipairs(err.partial.outputs) do if o then t[#t + 1] = o end end return t end)())
    end)

    it("context checks what owl.run checks, before any call", function()
      local c = F.client(server, provider)
      assert.has_error(function() owl.flow.context(c, "") end, "owl.run: the problem must be a non-empty string")
      assert.has_error(function() owl.flow.context(c, "p", { worker = "x" }) end,
        "owl.run: option 'worker' must be a function, got string")
      assert.has_error(function() owl.flow.context(c, "p", { max_rounds = 0 }) end,
        "owl.run: option 'max_rounds' must be a positive integer, got 0")
      assert.has_error(function() owl.flow.context(c, "p", { max_aggregate_tokens = { m = -1 } }) end,
        "owl.run: option 'max_aggregate_tokens' must be a positive integer or a table of them by model name, got m = -1")
      assert.equal(0, server:stats().total)
    end)

    describe("the worker option", function()
      it("replaces each worker: a nested owl.run for one subtask, the default call for the others", function()
        local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
        local nested
        local result, err = owl.run(c, "Write a parser and a printer.", {
          worker = function(ctx, subtask, job)
            assert.equal("Write a parser and a printer.", ctx.problem)
            assert.is_string(job.vars.objective)
            if subtask.name ~= "part_2" then return owl.flow.worker(ctx, subtask, job) end
            local r, e = owl.run(ctx.client, subtask.description)
            if not r then return nil, e end
            nested = r
            return r.final, r.usage.total
          end,
        })
        assert.is_nil(err)
        assert.equal(nested.final, result.outputs[2])
        assert.truthy(result.outputs[1]:find("Your subtask: part_1", 1, true))
        -- the nested run's four calls count as the workers'; the other worker made one
        assert.equal(1 + 4, result.usage.workers.calls)
        assert.equal(1 + 5 + 1, result.usage.total.calls)
        assert.equal(1 + 1 + 4 + 1, server:stats().total)
      end)

      it("a worker that returns nil and an error, raises, or returns no string fails alone", function()
        local c = F.client(server, provider, { ["x-mock-subtasks"] = "4" })
        local _, err = owl.run(c, "p", {
          worker = function(ctx, subtask, job)
            if subtask.name == "part_1" then return nil, "no luck" end
            if subtask.name == "part_2" then error("boom") end
            if subtask.name == "part_3" then return 42 end
            return owl.flow.worker(ctx, subtask, job)
          end,
        })
        assert.equal("worker", err.kind)
        assert.equal(3, #err.errors)
        assert.equal("worker", err.errors[1].kind)
        assert.equal("the worker function failed: no luck", err.errors[1].message)
        assert.equal("callback", err.errors[2].kind)
        assert.matches("the worker function raised: .*boom", err.errors[2].message)
        assert.equal("invalid", err.errors[3].kind)
        assert.equal("the worker function returned a number, not a string", err.errors[3].message)
        assert.is_string(err.partial.outputs[4])
      end)
    end)

    it("writes plan fields of any type into worker prompts: arrays as JSON, numbers, booleans", function()
      local S = owl.schema
      local Plan = S.object{
        { "objective", S.string() },
        { "subtasks", S.array(S.object{ { "name", S.string() }, { "description", S.string() },
          { "files", S.array(S.string()) }, { "priority", S.integer() }, { "tested", S.boolean() } }) },
      }
      local prompts = owl.prompts.copy()
      prompts.worker.user = "{name}: {description} files={files} priority={priority} tested={tested}"
      local c = F.client(server, provider)
      server:script{ { json = json.encode({ objective = "o", subtasks = { { name = "io", description = "Read files.",
        files = { "a.lua", "b.lua" }, priority = 2, tested = false } } }) } }
      assert(owl.run(c, "p", { schema = Plan, prompts = prompts }))
      local reqs = F.requests(server)
      assert.equal('io: Read files. files=["a.lua","b.lua"] priority=2 tested=false', reqs[2].user)
    end)
  end)
end
