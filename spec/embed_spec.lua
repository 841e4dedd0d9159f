-- Embedding owl in a host's loop (issue 10, "owl 6 of 6"), over real HTTP
-- against the mock: loop:changes() keeps a host's watchers right without
-- diffing, a paced loop starts queued transfers a few per feed, owl.step
-- spreads a fan-out over several budgeted calls, failed tasks reach a
-- handler, and owl.uv runs a flow from a luv loop.
local core = require("owl.core")
local owl = require("owl")
local mock = require("support.mock")
local flow = require("support.flow")

local BODY = { model = "m", messages = { { role = "user", content = "hello" } } }

local function spec_for(server, headers)
  return { url = server.url .. "/chat/completions", headers = headers or {}, timeout = 10,
           connect_timeout = 5, body = BODY }
end

-- Applies loop:changes() to mirror (fd -> events) as a host would.
local function apply(mirror, changes, seen)
  for _, c in ipairs(changes) do
    assert.equal("number", type(c[1]))
    if c[2] == "remove" then
      seen.remove = seen.remove + 1
      mirror[c[1]] = nil
    else
      assert.truthy(c[2] == "r" or c[2] == "w" or c[2] == "rw", c[2])
      seen.set = seen.set + 1
      mirror[c[1]] = c[2]
    end
  end
end

describe("embedding", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  describe("loop:changes()", function()
    it("keeps a host's watchers equal to loop:sockets() through connects, replies and resets", function()
      local loop = core.loop()
      local mirror, seen = {}, { set = 0, remove = 0 }
      assert.same({}, loop:changes())
      for round = 1, 3 do
        -- a reset closes its socket: the next round opens new ones, often
        -- on the same fd numbers
        for i = 1, 10 do
          loop:request(spec_for(server, { i % 2 == 0 and "x-mock-fault: reset" or "x-mock-latency-ms: " .. round * 5 }))
        end
        local done = 0
        while done < 10 do
          done = done + #loop:step(50)
          apply(mirror, loop:changes(), seen)
          assert.same(loop:sockets(), mirror)
        end
      end
      assert.is_true(seen.set >= 10)
      assert.is_true(seen.remove >= 15) -- every reset socket at least
      assert.same({}, loop:changes()) -- nothing new since the last call
      loop:close()
    end)

    it("raises once the loop is closed", function()
      local loop = core.loop()
      loop:close()
      assert.has_error(function() loop:changes() end, "owl.core: the loop is closed")
    end)
  end)

  describe("paced loops", function()
    it("loop:feed starts a few queued transfers per call and says when more wait", function()
      local loop = core.loop()
      loop:feed(0) -- paced from now on: requests queue until fed
      for _ = 1, 40 do loop:request(spec_for(server)) end
      assert.same({ 40, 0 }, { loop:pending() })
      local _, more = loop:feed(0)
      local queued, running = loop:pending()
      assert.is_true(more)
      assert.is_true(running >= 1 and running < 40, "started " .. running)
      assert.equal(40, queued + running)
      -- a plain run still finishes everything
      assert.equal(40, #loop:run())
      loop:close()
    end)

    it("a budgeted step starts what a feed would, and finishes the run in turns", function()
      local loop = core.loop()
      local done, turns = 0, 0
      loop:step(0, 0)
      for _ = 1, 30 do loop:request(spec_for(server)) end
      while done < 30 do
        done = done + #loop:step(5, 1)
        turns = turns + 1
        assert.is_true(turns < 5000, "the run does not end")
      end
      assert.is_true(turns > 1)
      loop:close()
    end)

    it("rejects a budget that is not a number from 0 to a day", function()
      local loop = core.loop()
      assert.has_error(function() loop:feed(-1) end)
      assert.has_error(function() loop:feed(0 / 0) end)
      assert.has_error(function() loop:step(0, "x") end)
      loop:close()
    end)
  end)

  describe("owl.step", function()
    it("runs a 200-worker flow in budgeted turns, spreading the fan-out", function()
      local client = flow.client(server, "openai", { ["x-mock-subtasks"] = "200" })
      local t = owl.spawn(owl.run, client, "a problem", { max_workers = 200, max_subtasks = 200 })
      local steps, spread = 0, false
      while not t:done() do
        owl.step(1)
        steps = steps + 1
        local queued = client:get_loop():pending()
        if queued > 0 then spread = true end -- a step left transfers for the next
        assert.is_true(steps < 200000, "the flow does not end")
      end
      local result, err = t:wait()
      assert.is_nil(err)
      assert.equal(200, #result.outputs)
      assert.is_true(spread, "every transfer started in one step")
      assert.is_true(steps > 3)
    end)

    it("splits a long piece of Lua work at its checkpoints over several steps", function()
      local done_items = 0
      local t = owl.spawn(function()
        owl.sleep(0) -- from here on, the task runs in the steps below
        for _ = 1, 2000 do
          -- about 20 us of work an item: 40 ms in all, 1 ms a step
          local stop = core.now() + 0.00002
          while core.now() < stop do end
          done_items = done_items + 1
          owl.checkpoint()
        end
        return "all"
      end)
      local steps, most = 0, 0
      while not t:done() do
        local before = done_items
        owl.step(1)
        steps = steps + 1
        most = math.max(most, done_items - before)
        assert.is_true(steps < 100000, "the task does not end")
      end
      assert.equal("all", (t:wait()))
      assert.equal(2000, done_items)
      assert.is_true(steps >= 10, "the work took " .. steps .. " steps")
      assert.is_true(most < 2000, "one step did all the work")
    end)

    it("validates a 1000-subtask plan over several steps, with the same verdict", function()
      local task = require("owl.task")
      local plan_stage = require("owl.flow.plan")
      local schema = require("owl.schema")
      local subtasks = {}
      for i = 1, 1000 do subtasks[i] = { name = "part_" .. i, description = "part " .. i } end
      local plan = { objective = "o", subtasks = subtasks }
      local yields = 0
      local t = owl.spawn(function()
        owl.sleep(0) -- from here on, the task runs in the steps below
        local ok = schema.validate(plan_stage.schema, plan)
        subtasks[500].name = 5 -- now invalid, at its 500th item
        local bad, problems = schema.validate(plan_stage.schema, plan)
        return ok, bad, problems
      end)
      while not t:done() do
        owl.step(0) -- a spent budget: every checkpoint pauses
        yields = yields + 1
      end
      local ok, bad, problems = t:wait()
      assert.is_true(ok)
      assert.is_false(bad)
      assert.equal("/subtasks/499/name", problems[1].path)
      assert.is_true(yields > 10, "validation paused " .. yields .. " times")
      -- outside a host's step, a checkpoint never pauses
      assert.is_true((schema.validate(plan_stage.schema, { objective = "o", subtasks = { subtasks[1] } })))
      assert.equal(0, task.pending().ready)
    end)

    it("rejects a budget that is not a number from 0 to a day", function()
      assert.has_error(function() owl.step(-1) end,
        "owl.step: budget_ms must be a number from 0 to 86400000, got -1")
      assert.has_error(function() owl.step("1") end)
    end)
  end)

  describe("failed tasks", function()
    local reported, old
    before_each(function()
      reported = {}
      old = owl.on_task_error(function(err, task) reported[#reported + 1] = { err = err, task = task } end)
    end)
    after_each(function() owl.on_task_error(old) end)

    it("task:on_done runs once the task ends, and at once for an ended task", function()
      local calls = {}
      local t = owl.spawn(function() owl.sleep(0.01); return 42 end)
      t:on_done(function(task) calls[#calls + 1] = task end)
      assert.same({}, calls)
      while not t:done() do owl.step(5) end
      assert.equal(1, #calls)
      assert.equal(t, calls[1])
      assert.equal(42, t:wait())
      t:on_done(function(task) calls[#calls + 1] = task end)
      assert.equal(2, #calls)
      assert.has_error(function() t:on_done(42) end, "task:on_done: expected a function, got number")
    end)

    it("a task that fails under a host, with nobody to hear, reaches owl.on_task_error", function()
      local t = owl.spawn(function() owl.sleep(0.01); error("boom in a task") end)
      while not t:done() do owl.step(5) end
      assert.equal(1, #reported)
      assert.matches("boom in a task", tostring(reported[1].err))
      assert.equal(t, reported[1].task)
    end)

    it("a failure someone hears of (on_done) is not reported again; a raising handler is", function()
      local t = owl.spawn(function() owl.sleep(0.01); error("heard") end)
      t:on_done(function() error("the handler broke") end)
      while not t:done() do owl.step(5) end
      assert.equal(1, #reported)
      assert.matches("the handler broke", tostring(reported[1].err))
    end)

    it("owl.on_task_error takes a function, or nil for the default (stderr)", function()
      owl.on_task_error(nil)
      assert.has_error(function() owl.on_task_error(42) end,
        "owl.on_task_error: expected a function or nil, got number")
    end)
  end)

  describe("owl.uv", function()
    local ok_luv, uv = pcall(require, "luv")

    it("rejects what is not a libuv binding", function()
      assert.has_error(function() require("owl.uv").attach({}) end,
        "owl.uv.attach: expected a libuv binding (vim.uv, vim.loop or require('luv')), got table")
    end)

    if not ok_luv then
      pending("luv is not installed (Debian: lua-luv)")
      return
    end

    it("runs a 50-worker flow from a luv loop and leaves no handle behind on detach", function()
      local client = flow.client(server, "openai", { ["x-mock-subtasks"] = "50" })
      local before = 0
      uv.walk(function() before = before + 1 end)
      local h = require("owl.uv").attach(uv, { budget_ms = 2 })
      local ticks, last, gap = 0, nil, 0
      local tick = uv.new_timer()
      tick:start(10, 10, function()
        local now = core.now()
        if last then gap = math.max(gap, now - last) end
        last, ticks = now, ticks + 1
      end)
      local result, err
      local guard = uv.new_timer()
      guard:start(30000, 0, function() err = "timed out"; uv.stop() end)
      owl.spawn(owl.run, client, "a problem", { max_workers = 50 }):on_done(function(task)
        result, err = task:wait()
        uv.stop()
      end)
      uv.run()
      h:detach()
      for _, t in ipairs({ tick, guard }) do t:stop(); t:close() end
      uv.run("nowait") -- let the closes finish
      local after = 0
      uv.walk(function() after = after + 1 end)
      assert.is_nil(err)
      assert.equal(50, #result.outputs)
      assert.is_true(ticks > 0)
      assert.equal(before, after)
      h:detach() -- idempotent
    end)
  end)
end)
