-- spec/flow_failure_spec.lua: what a run does when part of it fails (issue
-- 9, §2): on_worker_error "wait", "fail_fast" and "skip" (with depends_on
-- and re-planning rounds), a plan that cannot be used asked for again
-- (max_replans), and a plan given by the caller (opts.plan). On both
-- providers, against the mock.
local owl = require("owl")
local mock = require("support.mock")
local F = require("support.flow")
local json = require("owl.json")
local core = require("owl.core")

local function plan(subtasks)
  return { json = json.encode({ objective = "Build it", subtasks = subtasks }) }
end
local function st(name, deps)
  return { name = name, description = "Write " .. name .. ".", depends_on = deps and json.array(deps) or nil }
end

for _, provider in ipairs(F.providers) do
  describe("on_worker_error on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    it("fail_fast cancels the workers in flight at the first failure, and says so", function()
      local c = F.client(server, provider)
      -- the plan, then one worker fails at once while three hang for 5 s
      server:script{ plan{ st("a"), st("b"), st("c"), st("d") }, { fault = "500" },
                     { latency_ms = 5000 }, { latency_ms = 5000 }, { latency_ms = 5000 } }
      local started = core.now()
      local result, err = owl.run(c, "p", { on_worker_error = "fail_fast" })
      assert.is_nil(result)
      assert.is_true(core.now() - started < 3, "the hanging workers were not cancelled")
      assert.equal("worker", err.kind)
      assert.equal(3, err.cancelled)
      assert.matches("fail_fast cancelled the 3 still running or waiting", err.message, 1, true)
      assert.equal("http", err.cause.kind)
      assert.equal(1, #err.errors) -- the failure, not the cancellations
      assert.same({ false, false, false, false }, err.partial.outputs)
      -- their transfers ended: nothing is left in flight at the mock
      assert.is_true(mock.wait_until(3, function() return server:stats().in_flight == 0 end))
    end)

    it("fail_fast keeps what finished and never starts the workers still waiting their turn", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("a"), st("b"), st("c"), st("d") }, {}, { fault = "500" } }
      local _, err = owl.run(c, "p", { on_worker_error = "fail_fast", max_workers = 1 })
      assert.equal("worker", err.kind)
      assert.equal("b", err.subtask)
      assert.equal(2, err.cancelled)
      assert.is_string(err.partial.outputs[1])
      assert.same({ false, false, false }, { err.partial.outputs[2], err.partial.outputs[3], err.partial.outputs[4] })
      assert.equal(3, server:stats().total) -- the plan, a, b: c and d never sent
    end)

    it("wait (the default) finishes the others before it returns the error", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("a"), st("b"), st("c") }, { fault = "500" }, { latency_ms = 300 }, { latency_ms = 300 } }
      local _, err = owl.run(c, "p")
      assert.equal("worker", err.kind)
      assert.is_nil(err.cancelled)
      local done = 0
      for _, o in ipairs(err.partial.outputs) do if o then done = done + 1 end end
      assert.equal(2, done)
    end)

    it("skip aggregates what succeeded and lists the failures", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("alpha"), st("beta"), st("gamma") }, {}, { fault = "500" }, {} }
      local result, err = owl.run(c, "p", { on_worker_error = "skip", max_workers = 1 })
      assert.is_nil(err)
      assert.equal(1, #result.failures)
      local f = result.failures[1]
      assert.equal(2, f.index)
      assert.equal("beta", f.name)
      assert.equal("http", f.err.kind)
      assert.is_false(result.outputs[2])
      assert.is_string(result.final)
      -- the aggregator's prompt holds alpha and gamma, not beta
      local reqs = F.requests(server)
      local agg = reqs[#reqs].user
      assert.truthy(agg:find("### alpha", 1, true))
      assert.truthy(agg:find("### gamma", 1, true))
      assert.is_nil(agg:find("beta", 1, true))
    end)

    it("skip lists the dependents of a failure too, unrun", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("a", {}), st("b", {}), st("c", { "a" }) }, { fault = "500" }, {} }
      local result = assert(owl.run(c, "p", { on_worker_error = "skip", max_workers = 1,
                                              schema = owl.flow.dag_plan_schema }))
      assert.equal(2, #result.failures)
      assert.same({ "a", "c" }, { result.failures[1].name, result.failures[2].name })
      assert.equal("a", result.failures[2].err.dependency)
      assert.is_string(result.outputs[2])
      assert.equal(4, server:stats().total) -- plan, a, b, aggregator
    end)

    it("skip is still an error when every worker failed", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("a"), st("b") }, { fault = "500" }, { fault = "500" } }
      local result, err = owl.run(c, "p", { on_worker_error = "skip" })
      assert.is_nil(result)
      assert.equal("worker", err.kind)
      assert.matches("every worker failed (2)", err.message, 1, true)
      assert.equal(3, server:stats().total) -- no aggregator call
    end)

    it("skip goes on through re-planning rounds, with run indexes", function()
      local c = F.client(server, provider)
      server:script{
        plan{ st("a"), st("b") }, {}, { fault = "500" },
        { json = json.encode({ done = false, subtasks = { st("c") } }) }, {},
      }
      local result = assert(owl.run(c, "p", { on_worker_error = "skip", replan = true, max_rounds = 2,
                                              max_workers = 1 }))
      assert.equal(3, #result.subtasks)
      assert.equal(1, #result.failures)
      assert.same({ 2, "b" }, { result.failures[1].index, result.failures[1].name })
      assert.is_string(result.outputs[3])
    end)

    it("refuses an unknown policy before any call", function()
      local c = F.client(server, provider)
      assert.has_error(function() owl.run(c, "p", { on_worker_error = "retry" }) end,
        "owl.run: option 'on_worker_error' must be 'wait', 'fail_fast' or 'skip', got 'retry'")
      assert.equal(0, server:stats().total)
    end)
  end)

  describe("max_replans on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    local bad = { json = '{"objective": "o", "subtasks": [{"name": 3, "description": "d"}]}' }

    it("asks again with the invalid answer and its errors, and counts every call", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      local retries = {}
      server:script{ bad }
      local result = assert(owl.run(c, "p", { on_event = function(name, d)
        if name == "plan_retry" then retries[#retries + 1] = d end
      end }))
      assert.equal(2, #result.subtasks)
      assert.equal(2, result.usage.orchestrator.calls)
      assert.equal(1, #retries)
      assert.equal("invalid", retries[1].err.kind)
      local reqs = F.requests(server)
      local msgs = reqs[2].body.messages
      -- the second plan request: the first, the answer, and what was wrong
      assert.equal(reqs[1].user, F.requests(server)[1].user)
      assert.equal("assistant", msgs[#msgs - 1].role)
      local answer = msgs[#msgs - 1].content
      if type(answer) == "table" then answer = answer[1].text end
      assert.truthy(answer:find('"name":%s*3'))
      assert.truthy(reqs[2].user:find("That plan cannot be used: the plan does not match its schema: /subtasks/0/name",
        1, true))
      assert.equal(reqs[1].structured, reqs[2].structured)
    end)

    it("after the last try fails with the last plan and its problems", function()
      local c = F.client(server, provider)
      server:script{ { json = '{"objective": "o", "subtasks": []}' }, { text = "no JSON here" }, bad }
      local result, err = owl.run(c, "p", { max_replans = 2 })
      assert.is_nil(result)
      assert.equal("invalid", err.kind)
      assert.equal(3, err.tries)
      assert.equal(3, server:stats().total)
      assert.equal(3, err.partial.usage.orchestrator.calls)
      assert.equal(3, err.plan.subtasks[1].name)
      assert.equal("/subtasks/0/name", err.problems[1].path)
    end)

    it("asks again for a plan that is not JSON or over max_subtasks", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      server:script{ { text = "Sure! Step 1..." } }
      assert(owl.run(c, "p"))
      server:reset()
      server:script{ plan{ st("a"), st("b"), st("c") } }
      local result = assert(owl.run(c, "p", { max_subtasks = 2 }))
      assert.equal(2, #result.subtasks)
      assert.truthy(F.requests(server)[2].user:find("more than max_subtasks (2)", 1, true))
    end)

    it("max_replans = 0 asks once; a bad value raises", function()
      local c = F.client(server, provider)
      server:script{ bad }
      local _, err = owl.run(c, "p", { max_replans = 0 })
      assert.equal(1, err.tries)
      assert.equal(1, server:stats().total)
      assert.has_error(function() owl.run(c, "p", { max_replans = 1.5 }) end,
        "owl.run: option 'max_replans' must be an integer from 0 to 100, got 1.5")
    end)
  end)

  describe("a given plan on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    it("runs it without an orchestrator call", function()
      local c = F.client(server, provider)
      local p = { objective = "Only these", subtasks = { st("x"), st("y") } }
      local result = assert(owl.run(c, "p", { plan = p }))
      assert.equal("Only these", result.objective)
      assert.equal(p.subtasks[1], result.subtasks[1])
      assert.equal(0, result.usage.orchestrator.calls)
      assert.equal(3, server:stats().total) -- two workers, the aggregator
      for _, r in ipairs(F.requests(server)) do assert.is_nil(r.structured) end
      F.worker(F.requests(server), "x")
    end)

    it("checks it against the schema like a model's plan, before any call", function()
      local c = F.client(server, provider)
      local _, err = owl.run(c, "p", { plan = { objective = "o", subtasks = { { name = "x" } } } })
      assert.equal("invalid", err.kind)
      assert.matches("the given plan does not match its schema", err.message, 1, true)
      _, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema,
        plan = { objective = "o", subtasks = { st("x", { "nope" }) } } })
      assert.matches("'x' depends on 'nope'", err.message, 1, true)
      assert.equal(0, server:stats().total)
    end)
  end)
end
