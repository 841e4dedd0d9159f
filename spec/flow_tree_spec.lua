-- spec/flow_tree_spec.lua: outputs larger than the aggregator's window
-- (issue 8, §5): past max_aggregate_tokens the outputs are merged in a
-- tree, groups that fit merged in parallel, then the merged results, until
-- one remains; result.tree records the levels.
local owl = require("owl")
local mock = require("support.mock")
local F = require("support.flow")

describe("tree aggregation", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("merges 1000 outputs of 2 KB under a budget that needs three levels", function()
    -- every answer (worker or merge) is 2 KB: about 512 estimated tokens,
    -- so 15 fit 8000 tokens: 1000 -> 67 groups -> 5 groups -> 1
    local c = F.client(server, "openai", { ["x-mock-subtasks"] = "1000", ["x-mock-reply-bytes"] = "2048" })
    local levels = {}
    local result, err = owl.run(c, "p", { max_subtasks = 1000, max_aggregate_tokens = 8000,
      on_event = function(name, data) if name == "aggregate_level" then levels[#levels + 1] = data end end })
    assert.is_nil(err)
    assert.equal(1000, #result.outputs)
    assert.equal(3, #result.tree)
    assert.same({ 1000, 67, 5 }, { result.tree[1].inputs, result.tree[2].inputs, result.tree[3].inputs })
    assert.same({ 67, 5, 1 }, { #result.tree[1].groups, #result.tree[2].groups, #result.tree[3].groups })
    assert.same({ first = 1, last = 15 }, result.tree[1].groups[1])
    assert.same({ first = 991, last = 1000 }, result.tree[1].groups[67])
    assert.same({ level = 2, inputs = 67, groups = 5 }, { level = levels[2].level, inputs = levels[2].inputs, groups = levels[2].groups })
    assert.equal(3, #levels)
    assert.equal(67 + 5 + 1, result.usage.aggregator.calls)
    assert.equal(1 + 1000 + 73, server:stats().total)
    -- no aggregator call was sent more than its window (8000 tokens of 4 bytes, and the prompt's words)
    local merges = 0
    for _, r in ipairs(F.requests(server)) do
      if r.user:find("Snippets, one per subtask", 1, true) then
        merges = merges + 1
        assert.truthy(#r.user < 8000 * 4 + 1000, #r.user)
      end
    end
    assert.equal(73, merges)
    assert.is_string(result.final)
  end)

  for _, provider in ipairs(F.providers) do
    it("merges the groups of a level in parallel, streaming, on " .. provider, function()
      -- 8 outputs of 2 KB, 1100 tokens a group: 8 -> 4 -> 2 -> 1. The
      -- barrier, re-armed after the workers, holds the first level's calls
      -- until all four are in flight at once.
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "8", ["x-mock-reply-bytes"] = "2048",
                                             ["x-mock-barrier"] = "4", ["x-mock-barrier-timeout-ms"] = "5000" })
      local ctx = owl.flow.context(c, "p", { max_aggregate_tokens = { ["gpt-test"] = 1100, ["claude-test"] = 1100 },
                                             stream = true })
      local plan = assert(owl.flow.plan(ctx))
      assert(owl.flow.work(ctx, plan))
      server:reset()
      local final, tree = owl.flow.aggregate(ctx)
      assert.is_string(final, tostring(tree))
      assert.same({ 4, 2, 1 }, { #tree[1].groups, #tree[2].groups, #tree[3].groups })
      assert.equal(4, server:stats().max_in_flight)
      assert.equal(7, server:stats().total)
    end)
  end

  it("takes the budget for the aggregator's model, else the default", function()
    local c = F.client(server, "openai", { ["x-mock-subtasks"] = "4", ["x-mock-reply-bytes"] = "2048" })
    local result = assert(owl.run(c, "p", { max_aggregate_tokens = { ["other-model"] = 600 } }))
    assert.equal(1, #result.tree)
    assert.same({ { first = 1, last = 4 } }, result.tree[1].groups)
    server:reset()
    result = assert(owl.run(c, "p", { max_aggregate_tokens = { ["other-model"] = 600 },
                                      models = { aggregator = "other-model" } }))
    assert.same({ 2, 1 }, { #result.tree[1].groups, #result.tree[2].groups })
  end)

  it("a group that fails fails the run, keeping every output and the tree so far", function()
    local c = F.client(server, "openai", { ["x-mock-subtasks"] = "4", ["x-mock-reply-bytes"] = "2048" })
    server:script{ {}, {}, {}, {}, {}, { fault = "500" } }
    local result, err = owl.run(c, "p", { max_aggregate_tokens = 1100, max_workers = 1 })
    assert.is_nil(result)
    assert.equal("http", err.kind)
    assert.equal(4, #err.partial.outputs)
    for i = 1, 4 do assert.is_string(err.partial.outputs[i]) end
    assert.equal(1, #err.partial.tree)
    assert.equal(2, #err.partial.tree[1].groups)
  end)
end)
