-- spec/check_flow_spec.lua: owl.run's `check` and `max_repairs` (the stage
-- owl.flow.check) end to end against the mock, on both providers, streaming
-- and not: a check that passes at once, one that fails and is repaired (the
-- mock's scripted coding_demo session, whose first integration has a bug),
-- one that never passes (the solution is kept, unverified), one that
-- raises, max_repairs = 0, the events, and the options refused up front.
local owl = require("owl")
local mock = require("support.mock")

local PROBLEM = "Write a small Lua module stats with its own tests."

describe("owl.run with a check", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- max_retries = 0: a scripted failure fails its call (spec/retry_spec.lua retries)
  local function client(provider, headers)
    if provider == "anthropic" then
      return owl.client{ provider = "anthropic", base_url = server.base, api_key = "sk-ant-check",
                         model = "claude-test", headers = headers, max_retries = 0 }
    end
    return owl.client{ base_url = server.url, api_key = "sk-check", model = "m", headers = headers, max_retries = 0 }
  end

  -- The user text of every LLM request the mock saw, in order.
  local function sent()
    local out = {}
    for i, r in ipairs(server:requests()) do
      local body = mock.json_decode(r.body)
      local parts = {}
      for _, m in ipairs(body.messages) do
        if type(m.content) == "string" then parts[#parts + 1] = m.content end
      end
      out[i] = table.concat(parts, "\n")
    end
    return out
  end

  for _, provider in ipairs({ "openai", "anthropic" }) do
    for _, stream in ipairs({ false, true }) do
      describe("on " .. provider .. (stream and ", streaming" or ""), function()
        it("checks once and marks the result verified when the check passes", function()
          local seen = {}
          local result, err = owl.run(client(provider, { ["x-mock-subtasks"] = "2" }), PROBLEM, {
            stream = stream,
            check = function(final, r)
              seen[#seen + 1] = { final = final, subtasks = #r.subtasks, outputs = #r.outputs }
              return true, "fine"
            end,
          })
          assert.is_nil(err)
          assert.is_true(result.verified)
          assert.equal(1, #result.checks)
          assert.is_true(result.checks[1].ok)
          assert.equal("fine", result.checks[1].report)
          assert.is_number(result.checks[1].seconds)
          assert.same({ { final = result.final, subtasks = 2, outputs = 2 } }, seen)
          assert.equal(4, result.usage.total.calls) -- plan, 2 workers, aggregator: no repair
        end)

        it("repairs a solution whose tests fail until they pass (the scripted demo session)", function()
          local result, err = owl.run(client(provider, { ["x-mock-session"] = "coding_demo" }), PROBLEM, {
            stream = stream, check = owl.checks.coding{ run = true }, max_repairs = 2,
          })
          assert.is_nil(err)
          assert.equal(2, #result.checks)
          assert.is_false(result.checks[1].ok)
          assert.truthy(result.checks[1].report:find("variance: expected 4.5714285714286, got 4", 1, true),
            result.checks[1].report)
          assert.is_true(result.checks[2].ok)
          assert.truthy(result.checks[2].report:find("stats: all tests passed", 1, true))
          assert.is_true(result.verified)
          assert.truthy(result.final:find("return self.m2 / (self.n - 1)", 1, true))
          assert.equal(2, result.usage.aggregator.calls) -- the aggregator and one repair
          -- the repair got the buggy solution and the report, not the snippets
          local texts = sent()
          local repair = texts[#texts]
          assert.truthy(repair:find("return self.m2 / self.n\n", 1, true))
          assert.truthy(repair:find("The check failed (attempt 1)", 1, true))
          assert.truthy(repair:find("variance: expected 4.5714285714286", 1, true))
          assert.is_nil(repair:find("### running_moments", 1, true))
        end)
      end)
    end
  end

  it("keeps a solution that never passes, unverified, after max_repairs repairs", function()
    local calls = 0
    local result, err = owl.run(client("openai", { ["x-mock-subtasks"] = "1" }), PROBLEM, {
      check = function(final)
        calls = calls + 1
        assert(type(final) == "string")
        return false, "still wrong " .. calls
      end,
      max_repairs = 2,
    })
    assert.is_nil(err)
    assert.is_false(result.verified)
    assert.equal(3, #result.checks)
    for i = 1, 3 do
      assert.is_false(result.checks[i].ok)
      assert.equal("still wrong " .. i, result.checks[i].report)
    end
    -- the final is the last repair's answer (the mock echoes the repair prompt)
    assert.truthy(result.final:find("The check failed (attempt 2)", 1, true))
    assert.truthy(result.final:find("still wrong 2", 1, true))
    assert.equal(3 + 2, result.usage.total.calls)
    assert.equal(3, result.usage.aggregator.calls)
  end)

  it("makes no repair with max_repairs = 0", function()
    local result = assert(owl.run(client("openai", { ["x-mock-subtasks"] = "1" }), PROBLEM, {
      check = function() return false end, max_repairs = 0,
    }))
    assert.is_false(result.verified)
    assert.equal(1, #result.checks)
    assert.equal("the check failed and gave no report", result.checks[1].report)
    assert.equal(3, result.usage.total.calls)
  end)

  it("ends the run with a callback error when the check raises, keeping the solution and paying no repair", function()
    local result, err = owl.run(client("openai", { ["x-mock-subtasks"] = "1" }), PROBLEM, {
      check = function() error("my check has a bug") end,
    })
    assert.is_nil(result)
    assert.equal("callback", err.kind)
    assert.truthy(err.message:find("the check raised: ", 1, true))
    assert.truthy(err.message:find("my check has a bug", 1, true))
    assert.is_string(err.partial.final)
    assert.equal(0, #err.partial.checks)
    assert.is_false(err.partial.verified)
    assert.equal(3, #server:requests()) -- plan, worker, aggregator
  end)

  it("keeps the repaired solution in err.partial when a repair call fails", function()
    server:script({ {}, {}, {}, { fault = "500" } })
    local result, err = owl.run(client("openai", { ["x-mock-subtasks"] = "1" }), PROBLEM, {
      check = function() return false, "no" end, max_repairs = 1,
    })
    assert.is_nil(result)
    assert.equal("http", err.kind)
    assert.equal(1, #err.partial.checks)
    assert.truthy(err.partial.final:find("Snippets, one per subtask", 1, true)) -- the aggregator's (echoed) answer
  end)

  it("reports check_start, check_done and repair_start, each with seconds", function()
    local events = {}
    local n = 0
    assert(owl.run(client("openai", { ["x-mock-subtasks"] = "1" }), PROBLEM, {
      check = function() n = n + 1 return n == 2, "report " .. n end,
      on_event = function(name, data)
        if name:find("^check") or name:find("^repair") or name == "done" then
          events[#events + 1] = { name = name, data = data }
        end
      end,
    }))
    local names = {}
    for i, e in ipairs(events) do
      names[i] = e.name
      assert.is_number(e.data.seconds)
    end
    assert.same({ "check_start", "check_done", "repair_start", "check_start", "check_done", "done" }, names)
    assert.equal(1, events[1].data.attempt)
    assert.same({ false, "report 1", 1 }, { events[2].data.ok, events[2].data.report, events[2].data.attempt })
    assert.is_number(events[2].data.duration)
    assert.same({ 1, "report 1" }, { events[3].data["repair"], events[3].data.report })
    assert.same({ true, "report 2", 2 }, { events[5].data.ok, events[5].data.report, events[5].data.attempt })
  end)

  it("redacts the client's key from a report", function()
    local result = assert(owl.run(client("openai", { ["x-mock-subtasks"] = "1" }), PROBLEM, {
      check = function() return false, "the key was sk-check" end, max_repairs = 0,
    }))
    assert.is_nil(result.checks[1].report:find("sk-check", 1, true))
  end)

  it("refuses bad check options before any call", function()
    local c = client("openai")
    assert.has_error(function() owl.run(c, PROBLEM, { max_repairs = 1 }) end,
      "owl.run: option 'max_repairs' needs the option 'check'")
    assert.has_error(function() owl.run(c, PROBLEM, { check = function() end, max_repairs = 1.5 }) end,
      "owl.run: option 'max_repairs' must be an integer from 0 to 100, got 1.5")
    assert.has_error(function() owl.run(c, PROBLEM, { check = function() end, max_repairs = -1 }) end,
      "owl.run: option 'max_repairs' must be an integer from 0 to 100, got -1")
    assert.has_error(function() owl.run(c, PROBLEM, { check = "lua" }) end,
      "owl.run: option 'check' must be a function, got string")
    local p = owl.prompts.copy()
    p.repair = nil
    assert.has_error(function() owl.run(c, PROBLEM, { check = function() end, prompts = p }) end,
      "owl.run: prompts.repair is missing (the option 'check' needs it)")
    assert.equal(0, #server:requests())
  end)
end)
