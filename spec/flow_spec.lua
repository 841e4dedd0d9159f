-- owl.run end to end over real HTTP against the mock: the plan, the fan-out
-- (the mock's barrier proves every worker call is in flight at once, without
-- timing), the aggregator, usage, max_workers, and every way a run fails.
local owl = require("owl")
local mock = require("support.mock")

describe("owl.run", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(headers, extra)
    -- max_retries = 0: these specs read one failure; spec/retry_spec.lua retries
    local o = { base_url = server.url, api_key = "sk-flow", model = "gpt-test", headers = headers, max_retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  -- The mock's plan has subtasks part_1..part_n; a worker's reply echoes its
  -- prompt in a code fence; so does the aggregator's.
  local function check_result(result, n)
    assert.matches("^Mock plan for: ", result.objective)
    assert.equal(n, #result.subtasks)
    assert.equal(n, #result.outputs)
    for i = 1, n do
      assert.equal("part_" .. i, result.subtasks[i].name)
      local out = result.outputs[i]
      assert.is_nil(out:find("```", 1, true)) -- fences stripped
      assert.truthy(out:find("part_" .. i .. "%f[^%d]"), "output " .. i .. " lacks its subtask name")
      assert.truthy(out:find("Part " .. i .. " of " .. n .. " of the problem.", 1, true))
    end
    assert.is_nil(result.final:find("^```"))
    for i = 1, n do
      assert.truthy(result.final:find("Part " .. i .. " of " .. n .. " of the problem.", 1, true), "final lacks part " .. i)
    end
    local u = result.usage
    assert.same({ calls = 1, input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, u.orchestrator)
    assert.same({ calls = n, input_tokens = 10 * n, output_tokens = 5 * n, cached_input_tokens = 0 }, u.workers)
    assert.same({ calls = 1, input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, u.aggregator)
    assert.same({ calls = n + 2, input_tokens = 10 * (n + 2), output_tokens = 5 * (n + 2), cached_input_tokens = 0 }, u.total)
  end

  for _, n in ipairs({ 1, 10, 1000 }) do
    it("runs " .. n .. " subtask(s) with every worker call in flight at once", function()
      local c = client{ ["x-mock-subtasks"] = tostring(n), ["x-mock-barrier"] = tostring(n),
                        ["x-mock-barrier-timeout-ms"] = "20000" }
      local result, err = owl.run(c, "Write a word counter in Lua.", { max_subtasks = math.max(n, 100) })
      assert.is_nil(err)
      check_result(result, n)
      local stats = server:stats()
      assert.equal(n, stats.max_in_flight)
      assert.equal(n + 2, stats.total)
    end)
  end

  it("sends the plan request as strict structured output with the plan schema", function()
    assert(owl.run(client{ ["x-mock-subtasks"] = "2" }, "Problem text"))
    local first = mock.json_decode(server:requests()[1].body)
    local rf = first.response_format
    assert.equal("json_schema", rf.type)
    assert.is_true(rf.json_schema.strict)
    assert.equal("plan", rf.json_schema.name)
    local s = rf.json_schema.schema
    assert.same({ "objective", "subtasks" }, s.required)
    assert.is_false(s.additionalProperties)
    assert.same({ "name", "description" }, s.properties.subtasks.items.required)
    assert.equal("Problem text", first.messages[#first.messages].content)
    -- property order on the wire is declaration order: objective, then subtasks
    local raw = server:requests()[1].body
    assert.truthy(raw:find('"objective":', 1, true) < raw:find('"subtasks":', 1, true))
    assert.truthy(raw:find('"name":', 1, true) < raw:find('"description":{', 1, true))
  end)

  it("max_workers caps the workers in flight", function()
    local c = client{ ["x-mock-subtasks"] = "8", ["x-mock-latency-ms"] = "60" }
    local result = assert(owl.run(c, "p", { max_workers = 3 }))
    assert.equal(8, #result.outputs)
    assert.equal(3, server:stats().max_in_flight)
  end)

  it("uses a model per role", function()
    assert(owl.run(client{ ["x-mock-subtasks"] = "1" }, "p",
      { models = { orchestrator = "big", worker = "small", aggregator = "mid" } }))
    local log = server:requests()
    assert.equal("big", mock.json_decode(log[1].body).model)
    assert.equal("small", mock.json_decode(log[2].body).model)
    assert.equal("mid", mock.json_decode(log[3].body).model)
  end)

  it("reports progress through on_event, every event stamped with seconds since the start", function()
    local events = {}
    local result = assert(owl.run(client{ ["x-mock-subtasks"] = "3" }, "p", {
      on_event = function(name, data) events[#events + 1] = { name = name, data = data } end,
    }))
    local names = {}
    for i, e in ipairs(events) do names[i] = e.name end
    assert.same({ "plan", "worker_start", "worker_start", "worker_start", "worker_done", "worker_done", "worker_done",
                  "aggregate_start", "done" }, names)
    local last = 0
    for _, e in ipairs(events) do
      assert.is_true(e.data.seconds >= last, e.name .. " went back in time")
      last = e.data.seconds
    end
    assert.is_true(last < 10)
    assert.equal(3, #events[1].data.subtasks)
    assert.equal(result.objective, events[1].data.objective)
    local started = {}
    for i = 2, 4 do started[events[i].data.index] = events[i].data.name end
    assert.same({ "part_1", "part_2", "part_3" }, started)
    for i = 5, 7 do
      local d = events[i].data
      assert.is_true(d.ok)
      assert.is_nil(d.err)
      assert.same({ input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 }, d.usage)
      assert.is_true(d.duration >= 0 and d.duration <= d.seconds)
    end
    assert.equal(result.usage, events[9].data.usage)
  end)

  it("reports a failed worker's error in its worker_done event", function()
    server:script{ {}, { fault = "500" } }
    local done = {}
    local _, err = owl.run(client{ ["x-mock-subtasks"] = "2" }, "p", {
      on_event = function(name, data) if name == "worker_done" then done[#done + 1] = data end end,
    })
    assert.equal("worker", err.kind)
    assert.equal(2, #done)
    local failed = done[1].ok and done[2] or done[1]
    assert.is_false(failed.ok)
    assert.equal(err.cause, failed.err)
    assert.is_nil(failed.usage)
  end)

  it("runs inside a task, yielding to the driver", function()
    local c = client{ ["x-mock-subtasks"] = "4" }
    local a = owl.spawn(function() return owl.run(c, "first") end)
    local b = owl.spawn(function() return owl.run(c, "second") end)
    local ra, rb = a:wait(), b:wait()
    assert.matches("first", ra.objective)
    assert.matches("second", rb.objective)
    assert.equal(4, #ra.outputs)
    assert.equal(4, #rb.outputs)
  end)

  describe("failures", function()
    it("a failed worker keeps every finished output in err.partial", function()
      local c = client{ ["x-mock-subtasks"] = "5" }
      -- the plan, then one worker gets a 500; the others get default replies
      server:script{ {}, { fault = "500" } }
      local result, err = owl.run(c, "p")
      assert.is_nil(result)
      assert.equal("worker", err.kind)
      assert.equal("http", err.cause.kind)
      assert.equal(500, err.cause.status)
      assert.equal(1, #err.errors)
      assert.matches("^part_%d$", err.subtask)
      local finished = 0
      assert.equal(5, #err.partial.outputs) -- dense: false where a worker failed
      for i = 1, 5 do
        if err.partial.outputs[i] ~= false then
          finished = finished + 1
          assert.truthy(err.partial.outputs[i]:find("Part " .. i .. " of 5", 1, true))
        else
          assert.equal("part_" .. i, err.subtask)
        end
      end
      assert.equal(4, finished)
      assert.equal(5, #err.partial.subtasks)
      assert.equal(5, err.partial.usage.workers.calls)
      assert.matches("1 of 5 workers failed", tostring(err))
    end)

    it("a plan that fails its schema is 'invalid' and names the problem", function()
      server:script{ { body = { id = "x", object = "chat.completion", model = "m", choices = { {
        index = 0, finish_reason = "stop",
        message = { role = "assistant", content = '{"objective": "o", "subtasks": [{"name": 3}]}' } } } } } }
      local _, err = owl.run(client(), "p", { max_replans = 0 }) -- one answer, not asked again
      assert.equal("invalid", err.kind)
      assert.matches("/subtasks/0/name", err.message)
      assert.matches("description", err.message)
    end)

    it("a plan that is not JSON is 'invalid'", function()
      server:script{ { body = { choices = { { index = 0, finish_reason = "stop",
        message = { role = "assistant", content = "Sure! Here is the plan: step 1..." } } } } } }
      local _, err = owl.run(client(), "p", { max_replans = 0 }) -- one answer, not asked again
      assert.equal("invalid", err.kind)
      assert.matches("not JSON", err.message)
    end)

    it("a plan with no subtasks is 'invalid'", function()
      server:script{ { body = { choices = { { index = 0, finish_reason = "stop",
        message = { role = "assistant", content = '{"objective": "o", "subtasks": []}' } } } } } }
      local _, err = owl.run(client(), "p", { max_replans = 0 }) -- one answer, not asked again
      assert.equal("invalid", err.kind)
    end)

    it("a cut-off aggregator answer is 'length' and keeps the outputs", function()
      local c = client{ ["x-mock-subtasks"] = "2" }
      server:script{ {}, {}, {}, { body = { choices = { { index = 0, finish_reason = "length",
        message = { role = "assistant", content = "local x =" } } } } } }
      local _, err = owl.run(c, "p")
      assert.equal("length", err.kind)
      assert.equal(2, #err.partial.outputs)
    end)

    it("an unreachable server is 'connect'", function()
      local c = owl.client{ base_url = "http://127.0.0.1:1/v1", api_key = "k", model = "m" }
      local _, err = owl.run(c, "p")
      assert.equal("connect", err.kind)
    end)

    it("raises on misuse, naming what is wrong", function()
      local c = client()
      assert.has_error(function() owl.run({}, "p") end, "owl.run: the first argument must be an owl client")
      assert.has_error(function() owl.run(c, "") end, "owl.run: the problem must be a non-empty string")
      assert.has_error(function() owl.run(c, 42) end, "owl.run: the problem must be a non-empty string")
      assert.has_error(function() owl.run(c, "p", { bogus = true }) end, "owl.run: unknown option 'bogus'")
      assert.has_error(function() owl.run(c, "p", { max_workers = 0 }) end,
        "owl.run: option 'max_workers' must be a positive integer, got 0")
      assert.has_error(function() owl.run(c, "p", { max_workers = math.huge }) end,
        "owl.run: option 'max_workers' must be a positive integer, got " .. tostring(math.huge))
      assert.has_error(function() owl.run(c, "p", { max_subtasks = 0.5 }) end,
        "owl.run: option 'max_subtasks' must be an integer from 1 to 1000000, got 0.5")
      assert.has_error(function() owl.run(c, "p", { models = { planner = "x" } }) end, "owl.run: models has an unknown role 'planner'")
      assert.equal(0, server:stats().total)
    end)
  end)
end)
