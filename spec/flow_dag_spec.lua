-- spec/flow_dag_spec.lua: subtasks that depend on others (issue 8, §4):
-- owl.flow.dag_plan_schema, workers started once what they depend on is
-- done and given its outputs, independent ones in parallel, a plan with an
-- unknown name or a cycle refused before any worker, and a failed
-- dependency failing its dependents unrun. On both providers.
local owl = require("owl")
local mock = require("support.mock")
local F = require("support.flow")

local json = require("owl.json")

-- A scripted plan, as JSON text (the harness's encoder writes {} for []).
local function plan(subtasks)
  return { json = json.encode({ objective = "Build a b c d", subtasks = subtasks }) }
end
local function st(name, deps)
  return { name = name, description = "Write " .. name .. ".", depends_on = json.array(deps) }
end

for _, provider in ipairs(F.providers) do
  describe("owl.run with depends_on on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    it("asks for depends_on with owl.flow.dag_plan_schema", function()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "2" })
      local result = assert(owl.run(c, "p", { schema = owl.flow.dag_plan_schema }))
      local s = F.schema_of(F.requests(server)[1].body)
      assert.same({ "name", "description", "depends_on" }, s.properties.subtasks.items.required)
      assert.equal("array", s.properties.subtasks.items.properties.depends_on.type)
      assert.equal(2, #result.outputs) -- the mock's plan gets depends_on [] for its schema
    end)

    it("starts a worker once its dependencies are done, with their outputs, and independent ones at once", function()
      -- a and b run together (the barrier holds the first two worker calls
      -- until both are in flight); c needs both, d needs c
      local c = F.client(server, provider, { ["x-mock-barrier"] = "2", ["x-mock-barrier-timeout-ms"] = "5000" })
      server:script{ plan{ st("d", { "c" }), st("c", { "a", "b" }), st("a", {}), st("b", {}) } }
      local events = {}
      local result, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema,
        on_event = function(name, data) if name == "worker_start" then events[#events + 1] = data.name end end })
      assert.is_nil(err)
      assert.same({ "a", "b", "c", "d" }, events)
      assert.same({ "d", "c", "a", "b" }, { result.subtasks[1].name, result.subtasks[2].name,
                                            result.subtasks[3].name, result.subtasks[4].name })
      local reqs = F.requests(server)
      local ra = F.worker(reqs, "a")
      local rc = F.worker(reqs, "c")
      local rd = F.worker(reqs, "d")
      assert.is_nil(ra.user:find("depends on are done", 1, true))
      -- c's prompt holds a's and b's whole outputs; d's holds c's
      assert.truthy(rc.user:find("depends on are done; their results:\n\n### a\n" .. result.outputs[3], 1, true))
      assert.truthy(rc.user:find("### b\n" .. result.outputs[4], 1, true))
      assert.truthy(rd.user:find("### c\n" .. result.outputs[2], 1, true))
      -- depends_on is a plan field like any other: a prompt could use it
      assert.equal(6, server:stats().total) -- plan, four workers, aggregator
    end)

    it("runs a chain under max_workers = 1 without waiting on itself", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("z", { "y" }), st("y", { "x" }), st("x", {}) } }
      local result = assert(owl.run(c, "p", { schema = owl.flow.dag_plan_schema, max_workers = 1 }))
      assert.equal(3, #result.outputs)
      assert.equal(1, server:stats().max_in_flight)
    end)

    it("refuses a plan naming an unknown subtask, before any worker, naming both", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("a", { "nope" }), st("b", {}) } }
      local result, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema, max_replans = 0 })
      assert.is_nil(result)
      assert.equal("invalid", err.kind)
      assert.matches("'a' depends on 'nope'", err.message, 1, true)
      assert.equal(1, server:stats().total)
    end)

    it("refuses a plan whose dependencies form a cycle, naming it", function()
      local c = F.client(server, provider)
      server:script{ plan{ st("a", { "c" }), st("b", { "a" }), st("c", { "b" }), st("free", {}) } }
      local _, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema, max_replans = 0 })
      assert.equal("invalid", err.kind)
      assert.equal("the plan's dependencies form a cycle: a -> c -> b -> a", err.message)
      assert.same({ "a", "c", "b", "a" }, err.cycle)
      assert.equal(1, server:stats().total)
      -- a subtask that depends on itself is a cycle too; repeated names are refused
      server:reset()
      server:script{ plan{ st("a", { "a" }) } }
      _, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema, max_replans = 0 })
      assert.equal("the plan's dependencies form a cycle: a -> a", err.message)
      server:script{ plan{ st("a", {}), st("a", { "a" }) } }
      _, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema, max_replans = 0 })
      assert.matches("two subtasks are named 'a'", err.message, 1, true)
    end)

    it("fails the dependents of a failed worker without calling them", function()
      local c = F.client(server, provider)
      -- the plan, then a gets a 500 (the first worker call: a and b start in plan order)
      server:script{ plan{ st("a", {}), st("b", {}), st("c", { "a" }), st("d", { "c", "b" }) }, { fault = "500" } }
      local result, err = owl.run(c, "p", { schema = owl.flow.dag_plan_schema })
      assert.is_nil(result)
      assert.equal("worker", err.kind)
      assert.equal("a", err.subtask)
      assert.equal(3, #err.errors)
      assert.equal("http", err.errors[1].kind)
      assert.equal("not run: it depends on 'a', which failed", err.errors[2].message)
      assert.equal("c", err.errors[2].subtask)
      assert.equal("not run: it depends on 'c', which failed", err.errors[3].message)
      assert.same({ false, err.partial.outputs[2], false, false }, err.partial.outputs)
      assert.truthy(err.partial.outputs[2]:find("Your subtask: b", 1, true))
      assert.equal(3, server:stats().total) -- plan, a, b: never c, d or the aggregator
    end)
  end)
end

describe("owl.flow.dag.resolve", function()
  local dag = require("owl.flow.dag")

  it("runs a plan without dependencies in its order, with shared read-only empty lists", function()
    local subtasks = {}
    for i = 1, 300 do subtasks[i] = { name = "same", description = "d" } end -- names may repeat then
    local order, deps, outside = dag.resolve(subtasks)
    assert.equal(300, #order)
    for i = 1, 300 do
      assert.equal(i, order[i])
      assert.equal(0, #deps[i])
      assert.equal(0, #outside[i])
    end
    assert.has_error(function() deps[1][1] = 2 end, "owl.flow.dag: a resolved list is read-only")
  end)

  it("still refuses a depends_on that is no array, in a plan without dependencies", function()
    local order, err = dag.resolve({ { name = "a", description = "d", depends_on = "b" },
                                      { name = "b", description = "d" } })
    assert.is_nil(order)
    assert.equal("invalid", err.kind)
    assert.matches("subtask 'a': depends_on must be an array of subtask names, got string", err.message, 1, true)
  end)
end)
