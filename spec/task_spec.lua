-- spec/task_spec.lua: the task layer's timers, cancellation and semaphores
-- ("owl 3 of 6", the core contract): owl.sleep is a timer, never a busy
-- wait; task:cancel ends a task's transfers and its children; a client's
-- max_connections and owl.run's max_workers are semaphores over one loop.
local owl = require("owl")
local core = require("owl.core")
local task = require("owl.task")
local mock = require("support.mock")

-- Wall and CPU seconds f takes.
local function timed(f)
  local wall, cpu = core.now(), os.clock()
  local r = { f() }
  return core.now() - wall, os.clock() - cpu, r
end

describe("owl.sleep", function()
  it("sleeps in a task without holding the CPU, and other tasks run meanwhile", function()
    local order = {}
    local wall, cpu = timed(function()
      local a = owl.spawn(function() owl.sleep(0.3); order[#order + 1] = "a" end)
      local b = owl.spawn(function() owl.sleep(0.1); order[#order + 1] = "b" end)
      a:wait()
      b:wait()
    end)
    assert.same({ "b", "a" }, order)
    assert.is_true(wall >= 0.29 and wall < 1.5, "slept " .. wall .. " s")
    assert.is_true(cpu < 0.1, "used " .. cpu .. " s of CPU: a busy wait")
  end)

  it("blocks outside a task, still without a busy wait", function()
    local wall, cpu = timed(function() owl.sleep(0.2) end)
    assert.is_true(wall >= 0.19 and wall < 1.5, "slept " .. wall .. " s")
    assert.is_true(cpu < 0.1, "used " .. cpu .. " s of CPU")
    local zero = timed(function() owl.sleep(0) end)
    assert.is_true(zero < 0.1)
  end)

  it("raises on a bad duration, naming it", function()
    for _, v in ipairs({ -1, 0 / 0, math.huge, "1" }) do
      assert.has_error(function() owl.sleep(v) end,
        "owl.sleep: seconds must be a number from 0 to 1e9, got " .. tostring(v))
    end
  end)

  it("tells a host loop when the next timer is due", function()
    assert.is_nil(owl.next_timer_ms())
    local t = owl.spawn(function() owl.sleep(0.5) end)
    local ms = owl.next_timer_ms()
    assert.is_true(ms > 300 and ms <= 500, tostring(ms))
    t:cancel()
    assert.is_nil(owl.next_timer_ms())
  end)
end)

describe("task:cancel", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(headers, extra)
    local o = { base_url = server.url, api_key = "sk-task", model = "m", headers = headers }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  local function ask(c, content)
    return c:chat{ messages = { { role = "user", content = content } } }
  end

  it("ends a task's transfer: its wait returns a cancelled error at once, and the loop goes on", function()
    local slow = client{ ["x-mock-latency-ms"] = "5000" }
    local seen
    local t = owl.spawn(function()
      local res, err = ask(slow, "slow")
      seen = { res = res, err = err }
      return "went on"
    end)
    local wall, _, r = timed(function()
      assert.is_true(t:cancel())
      return { t:wait() }
    end)
    local res, err = r[1][1], r[1][2]
    assert.is_nil(res)
    assert.equal("cancelled", err.kind)
    assert.equal("the task was cancelled", err.message)
    assert.is_true(wall < 2, "cancel took " .. wall .. " s")
    -- the call inside saw its transfer cancelled
    assert.equal("cancelled", seen.err.kind)
    -- and the loop is usable
    assert.matches("after", assert(ask(client(), "after")).text)
    assert.is_false(t:cancel()) -- an ended task
  end)

  it("wakes a sleeping task and cancels the tasks it spawned", function()
    local child
    local parent = owl.spawn(function()
      child = owl.spawn(function() owl.sleep(30) end)
      owl.sleep(30)
      return "not reached"
    end)
    local wall = timed(function()
      parent:cancel()
      assert.equal("cancelled", select(2, parent:wait()).kind)
      assert.equal("cancelled", select(2, child:wait()).kind)
    end)
    assert.is_true(wall < 1, "took " .. wall .. " s")
    assert.is_nil(owl.next_timer_ms())
  end)

  it("cancelling an owl.run task cancels the workers and never starts the aggregator", function()
    local c = client{ ["x-mock-subtasks"] = "4" }
    server:script{ {}, { latency_ms = 5000 }, { latency_ms = 5000 }, { latency_ms = 5000 }, { latency_ms = 5000 } }
    local planned = false
    local run = owl.spawn(function()
      return owl.run(c, "problem", { on_event = function(name) if name == "plan" then planned = true end end })
    end)
    local deadline = core.now() + 5
    while not planned and core.now() < deadline do owl.sleep(0.02) end
    assert.is_true(planned)
    owl.sleep(0.1) -- the workers' requests reach the mock
    local wall = timed(function()
      run:cancel()
      local result, err = run:wait()
      assert.is_nil(result)
      assert.equal("cancelled", err.kind)
    end)
    assert.is_true(wall < 2, "took " .. wall .. " s")
    assert.equal(5, server:stats().total) -- the plan and four workers; no aggregator
    assert.matches("after", assert(ask(client(), "after")).text)
  end)
end)

describe("owl.pcall", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  it("lets owl wait inside it in a task, on every Lua, and catches what is raised after a wait", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m" }
    local t = owl.spawn(function()
      local ok, res = owl.pcall(function(word)
        owl.sleep(0.01)
        return assert(c:chat{ messages = { { role = "user", content = word } } })
      end, "inside")
      assert.is_true(ok, tostring(res))
      assert.matches("inside", res.text)
      local ok2, err = owl.pcall(function()
        owl.sleep(0.01)
        error("after a wait", 0)
      end)
      assert.is_false(ok2)
      assert.equal("after a wait", err)
      -- nested, and the task goes on waiting normally afterwards
      local ok3, v = owl.pcall(owl.pcall, function() owl.sleep(0.01); return 7 end)
      assert.is_true(ok3)
      assert.equal(true, v)
      owl.sleep(0.01)
      return "done"
    end)
    assert.equal("done", assert(t:wait()))
  end)

  it("is pcall outside a task, and refuses a yield that is not owl's", function()
    assert.same({ false, "x" }, { owl.pcall(error, "x", 0) })
    assert.same({ true, 1, 2 }, { owl.pcall(function() return 1, 2 end) })
    local t = owl.spawn(function()
      return owl.pcall(function() coroutine.yield("mine") end)
    end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.equal("owl.pcall: the function yielded outside owl (only owl's waits can pass through)", err)
  end)
end)

describe("semaphores", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("a client's max_connections caps its calls on the shared loop", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m", max_connections = 2,
                          headers = { ["x-mock-latency-ms"] = "200" } }
    assert.equal(owl.loop(), c:get_loop()) -- no private loop a host would not drive
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = owl.spawn(function() return assert(c:chat{ messages = { { role = "user", content = "n" .. i } } }) end)
    end
    for i = 1, 6 do
      local res = tasks[i]:wait()
      assert.matches("n" .. i, res.text)
    end
    local stats = server:stats()
    assert.equal(6, stats.total)
    assert.equal(2, stats.max_in_flight)
  end)

  it("a blocking call outside any task waits for a slot while tasks hold them", function()
    local c = owl.client{ base_url = server.url, api_key = "k", model = "m", max_connections = 1,
                          headers = { ["x-mock-latency-ms"] = "200" } }
    local t = owl.spawn(function() return c:chat{ messages = { { role = "user", content = "task" } } } end)
    local res = assert(c:chat{ messages = { { role = "user", content = "main" } } })
    assert.matches("main", res.text)
    assert.matches("task", assert(t:wait()).text)
    assert.equal(1, server:stats().max_in_flight)
  end)

  it("grants slots in order, and a cancelled waiter gives up its place", function()
    local sem = task.semaphore(1)
    local order = {}
    local holder = owl.spawn(function() sem:acquire(); owl.sleep(0.1); order[#order + 1] = "holder"; sem:release() end)
    local quitter = owl.spawn(function()
      if sem:acquire() then order[#order + 1] = "quitter"; sem:release() end
    end)
    local next_one = owl.spawn(function() sem:acquire(); order[#order + 1] = "next"; sem:release() end)
    quitter:cancel()
    holder:wait()
    next_one:wait()
    assert.same({ "holder", "next" }, order)
    assert.equal("cancelled", select(2, quitter:wait()).kind)
  end)

  it("raises on a bad size", function()
    for _, v in ipairs({ 0, -1, 1.5, 0 / 0, math.huge, "2" }) do
      assert.has_error(function() task.semaphore(v) end,
        "owl.task: a semaphore needs a positive integer, got " .. tostring(v))
    end
  end)
end)
