-- spec/flow_limits_spec.lua: deadlines and budgets (issue 9, §3). Crossing
-- owl.run's `deadline` or `max_total_tokens` ends the run with a `timeout`
-- or `budget` error, cancels what is in flight (their transfers end at the
-- mock) and keeps every finished output in err.partial. The mock counts
-- 10 input and 5 output tokens per call.
local owl = require("owl")
local mock = require("support.mock")
local F = require("support.flow")
local json = require("owl.json")
local core = require("owl.core")
local task = require("owl.task")

local function plan(n)
  local subtasks = {}
  for i = 1, n do subtasks[i] = { name = "s" .. i, description = "Write s" .. i .. "." } end
  return { json = json.encode({ objective = "Build it", subtasks = subtasks }) }
end

local function finished(outputs)
  local n = 0
  for _, o in ipairs(outputs) do if o then n = n + 1 end end
  return n
end

for _, provider in ipairs(F.providers) do
  describe("owl.run limits on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    local function idle()
      return mock.wait_until(3, function() return server:stats().in_flight == 0 end)
    end

    it("a deadline ends the run, cancels the workers in flight and keeps what finished", function()
      local c = F.client(server, provider)
      server:script{ plan(3), {}, { latency_ms = 5000 }, { latency_ms = 5000 } }
      local started = core.now()
      local result, err = owl.run(c, "p", { deadline = 0.6, max_workers = 3 })
      local took = core.now() - started
      assert.is_nil(result)
      assert.equal("timeout", err.kind)
      assert.matches("the run passed its deadline of 0.6 s", err.message, 1, true)
      assert.equal(0.6, err.deadline)
      assert.is_true(took >= 0.6 and took < 2, "took " .. took)
      assert.equal(3, #err.partial.subtasks)
      assert.equal(1, finished(err.partial.outputs))
      assert.is_true(idle(), "a cancelled transfer is still in flight at the mock")
      assert.is_nil(task.next_timer_ms()) -- no timer left behind
    end)

    it("a deadline passed during the plan call ends it there", function()
      local c = F.client(server, provider)
      server:script{ { latency_ms = 5000 } }
      local started = core.now()
      local _, err = owl.run(c, "p", { deadline = 0.3 })
      assert.equal("timeout", err.kind)
      assert.is_true(core.now() - started < 2)
      assert.same({}, err.partial.outputs)
      assert.is_true(idle())
    end)

    it("a run inside its deadline returns its result and leaves no timer", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      local result = assert(owl.run(c, "p", { deadline = 30 }))
      assert.equal(2, #result.outputs)
      assert.is_nil(task.next_timer_ms())
    end)

    it("works inside a task: the deadline is a timer, not a busy wait", function()
      local c = F.client(server, provider)
      server:script{ plan(2), { latency_ms = 5000 }, { latency_ms = 5000 } }
      local ticks = 0
      local ticker = owl.spawn(function()
        -- a cancelled task's sleep returns at once: the loop asks
        while not task.current().cancelled do owl.sleep(0.05); ticks = ticks + 1 end
      end)
      local t = owl.spawn(function() return owl.run(c, "p", { deadline = 0.5 }) end)
      local _, err = t:wait()
      ticker:cancel()
      assert.equal("timeout", err.kind)
      assert.is_true(ticks >= 5, "other tasks ran meanwhile")
    end)

    it("max_total_tokens keeps the call that crosses it and does not start the rest", function()
      local c = F.client(server, provider)
      server:script{ plan(4) }
      -- plan 15, s1 30, s2 45 > 40: s2 is kept, s3 and s4 never sent
      local result, err = owl.run(c, "p", { max_total_tokens = 40, max_workers = 1 })
      assert.is_nil(result)
      assert.equal("budget", err.kind)
      assert.equal(45, err.used)
      assert.equal(40, err.max_total_tokens)
      assert.matches("the run used 45 tokens (input and output), more than max_total_tokens (40)", err.message, 1, true)
      assert.is_string(err.partial.outputs[1])
      assert.is_string(err.partial.outputs[2])
      assert.equal(2, finished(err.partial.outputs))
      assert.equal(3, server:stats().total)
      assert.equal(45, err.partial.usage.total.input_tokens + err.partial.usage.total.output_tokens)
    end)

    it("max_total_tokens cancels the calls in flight when one finishes past it", function()
      local c = F.client(server, provider)
      server:script{ plan(3), {}, { latency_ms = 5000 }, { latency_ms = 5000 } }
      local started = core.now()
      local _, err = owl.run(c, "p", { max_total_tokens = 20 })
      assert.equal("budget", err.kind)
      assert.is_true(core.now() - started < 2)
      assert.equal(1, finished(err.partial.outputs))
      assert.is_true(idle())
    end)

    it("a plan call past the budget ends the run before any worker", function()
      local c = F.client(server, provider)
      local _, err = owl.run(c, "p", { max_total_tokens = 10 })
      assert.equal("budget", err.kind)
      assert.equal(1, server:stats().total)
      assert.equal(3, #err.partial.subtasks)
    end)

    it("a run within its budget is not touched", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      local result = assert(owl.run(c, "p", { max_total_tokens = 60, deadline = 30 }))
      assert.equal(60, result.usage.total.input_tokens + result.usage.total.output_tokens)
    end)

    it("a raise in a callback still reaches the caller", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "1" })
      assert.has_error(function()
        owl.run(c, "p", { deadline = 30, on_event = function(name) if name == "plan" then error("boom") end end })
      end)
      assert.is_nil(task.next_timer_ms())
    end)

    it("raises on a bad deadline or budget before any call", function()
      local c = F.client(server, provider)
      assert.has_error(function() owl.run(c, "p", { deadline = 0 }) end,
        "owl.run: option 'deadline' must be a number of seconds above 0 and at most 1e9, got 0")
      assert.has_error(function() owl.run(c, "p", { max_total_tokens = 2.5 }) end,
        "owl.run: option 'max_total_tokens' must be a positive integer, got 2.5")
      assert.equal(0, server:stats().total)
    end)
  end)
end
