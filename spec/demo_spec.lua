-- spec/demo_spec.lua: `make demo`'s story, end to end. Without a key,
-- examples/demo.sh starts the mock, which plays the scripted coding_demo
-- session: a plan of three subtasks, their code, a first integration whose
-- tests fail (one failed check), the repair, and a final solution that
-- passes its tests and is printed as verified; the output says the answers
-- are scripted. With ANTHROPIC_API_KEY the demo talks to Anthropic's API
-- (here the mock's /v1/messages through ANTHROPIC_BASE_URL).
local mock = require("support.mock")

local function count(s, needle)
  local n, at = 0, 1
  while true do
    local i = s:find(needle, at, true)
    if not i then return n end
    n, at = n + 1, i + 1
  end
end

describe("make demo", function()
  it("tells the whole story against the mock without a key: a failed check, a repair, verified code", function()
    local out, err, code = mock.sh("env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY sh examples/demo.sh")
    assert.equal(0, code, err)
    assert.truthy(err:find("MOCK MODE", 1, true))
    assert.truthy(err:find("its answers are SCRIPTED", 1, true))
    assert.truthy(err:find("(3 subtasks)", 1, true))
    for _, name in ipairs({ "running_moments", "range_tracking", "self_tests" }) do
      assert.truthy(err:find("(" .. name .. ") done", 1, true), name)
    end
    -- the story, in order
    local at = 1
    for _, step in ipairs({ "aggregating", "check 1: FAILED", "variance: expected 4.5714285714286, got 4",
                            "repair 1:", "check 2: PASSED", "stats: all tests passed",
                            "VERIFIED: the final solution passes its tests (after 1 failed check and 1 repair)" }) do
      local i = err:find(step, at, true)
      assert.truthy(i, "missing, or out of order: " .. step .. "\n" .. err)
      at = i + #step
    end
    assert.equal(1, count(err, "FAILED"))
    assert.truthy(out:find("---- final solution ----", 1, true))
    assert.truthy(out:find("return self.m2 / (self.n - 1)", 1, true))
    assert.is_nil(out:find("return self.m2 / self.n\n", 1, true))
  end)

  it("has a mock that refuses an unknown session, naming it", function()
    local server = mock.start()
    local ok, e = pcall(function()
      local res = server:request{ headers = { ["x-mock-session"] = "no_such_session" },
                                  body = { model = "m", messages = { { role = "user", content = "hi" } } } }
      assert.equal(400, res.status)
      assert.truthy(res.body:find("no_such_session", 1, true))
    end)
    server:stop()
    assert(ok, e)
  end)

  it("talks to Anthropic when ANTHROPIC_API_KEY is the key it has", function()
    local server = mock.start()
    local ok, e = pcall(function()
      local _, err, code = mock.sh("env -u OPENAI_API_KEY ANTHROPIC_API_KEY=sk-ant-demo ANTHROPIC_BASE_URL="
        .. server.base .. " OWL_MODEL=claude-test sh examples/demo.sh")
      -- the mock without a session echoes prompts: no code to pass the check
      assert.equal(3, code, err)
      assert.truthy(err:find("REAL API: anthropic", 1, true), err)
      assert.is_nil(err:find("MOCK MODE", 1, true))
      assert.is_nil(err:find("sk-ant-demo", 1, true))
      local reqs = server:requests()
      assert.equal("/v1/messages", reqs[1].path)
      assert.equal("sk-ant-demo", reqs[1].headers["x-api-key"])
    end)
    server:stop()
    assert(ok, e)
  end)
end)
