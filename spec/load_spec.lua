-- spec/load_spec.lua: a fan-out under faults (issue "owl 5 of 6", 6). Every
-- worker of one owl.run calls the mock at once, and the mock fails 1% of
-- the calls with a 500 and 1% with a reset mid-body (x-mock-fault-rate,
-- seeded, so a given arrival order gets the same faults). The run must
-- finish with every output present, and the attempts owl counts must add up
-- to the calls plus the faults the mock says it injected.
--
-- 1000 workers in make test; the issue's 5000 under OWL_LONG=1 (make
-- test-long). Thousands of sockets: spec/run.sh raises ulimit -n.
local owl = require("owl")
local mock = require("support.mock")

local LONG = (os.getenv("OWL_LONG") or "") ~= "" and os.getenv("OWL_LONG") ~= "0"
local N = LONG and 5000 or 1000

describe("load", function()
  local server
  setup(function() server = mock.start() end)
  before_each(function() server:reset() end)
  teardown(function()
    owl.loop():close()
    server:stop()
  end)

  -- What the load test rests on: the mock's random faults are the same for
  -- the same seed and arrival order, and it counts what it injected.
  it("the mock's x-mock-fault-rate: one seed, one arrival order, the same faults, counted", function()
    local function sequence(seed)
      server:reset()
      local seen = {}
      for i = 1, 60 do
        local res = server:request{ headers = { ["x-mock-fault-rate"] = "500=0.2,reset=0.2", ["x-mock-seed"] = seed },
                                    body = { model = "m", messages = { { role = "user", content = "hi" } } } }
        -- a reset mid-body: the status line came, the whole body did not
        seen[i] = (res and mock.json_decode(res.body, true)) and tostring(res.status) or "reset"
      end
      return seen, server:stats().injected
    end
    local a, injected = sequence("5")
    local counts = {}
    for _, v in ipairs(a) do counts[v] = (counts[v] or 0) + 1 end
    assert.equal(injected["500"], counts["500"])
    assert.equal(injected.reset, 60 - counts["500"] - counts["200"])
    assert.is_true(injected["500"] > 0 and injected.reset > 0 and counts["200"] > 0)
    assert.same(a, (sequence("5")))
    assert.are_not.same(a, (sequence("6")))
    server:reset()
    local bad = server:request{ headers = { ["x-mock-fault-rate"] = "teapot=0.5" }, body = {} }
    assert.equal(400, bad.status)
  end)

  it(N .. " concurrent workers against 1% 500s and 1% resets: every output present, every fault retried", function()
    -- the plan and the aggregator on a clean client; the workers on one
    -- the mock fails at random (max_retries 5: a worker failing six times
    -- in a row at 2% is not going to happen)
    local run_client = owl.client{ base_url = server.url, api_key = "sk-load-run", model = "m", max_retries = 0,
                                   headers = { ["x-mock-subtasks"] = tostring(N) } }
    local faulty = owl.client{ base_url = server.url, api_key = "sk-load-workers", model = "m", max_retries = 5,
                               headers = { ["x-mock-fault-rate"] = "500=0.01,reset=0.01", ["x-mock-seed"] = "9" } }
    local attempts, in_flight, most = {}, 0, 0
    local result, err = owl.run(run_client, "Load.", {
      max_subtasks = N,
      max_aggregate_tokens = 1e9, -- one aggregator call, whatever the outputs' size
      worker = function(_, _, job)
        in_flight = in_flight + 1
        if in_flight > most then most = in_flight end
        local res, e = faulty:chat(job.request)
        in_flight = in_flight - 1
        if not res then return nil, e end
        attempts[job.index] = res.attempts
        return res.text
      end,
    })
    assert.is_nil(err, tostring(err))
    assert.equal(N, #result.outputs)
    local sum = 0
    for i = 1, N do
      -- the mock echoes each worker's prompt: the output is its own
      assert.matches("Part " .. i .. " of " .. N .. " of the problem.", result.outputs[i], 1, true)
      sum = sum + attempts[i]
    end
    local stats = server:stats()
    local injected = (stats.injected["500"] or 0) + (stats.injected.reset or 0)
    assert.is_true(stats.injected["500"] > 0 and stats.injected.reset > 0, "the mock injected no fault")
    assert.is_true(sum > N)
    assert.equal(N + injected, sum)
    assert.equal(N + 2 + injected, stats.total) -- and the plan and the aggregator, once each
    assert.equal(N, most, "the workers were not all in flight at once")
    -- nothing left behind
    local loop = owl.loop()
    assert.same({ 0, 0 }, { loop:pending() })
    assert.same({ waits = 0, timers = 0, ready = 0, tasks = 0 }, owl.pending())
  end)
end)
