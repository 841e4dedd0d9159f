-- spec/prompts_spec.lua: owl.prompts, the default templates and how they are
-- rendered into strings and into pieces for a rope.
local prompts = require("owl.prompts")

describe("owl.prompts", function()
  describe("defaults", function()
    it("has the three templates with system and user text", function()
      for _, name in ipairs({ "orchestrator", "worker", "aggregator" }) do
        assert.is_string(prompts[name].system)
        assert.is_string(prompts[name].user)
        assert.is_true(#prompts[name].system > 40)
      end
      assert.are.equal("{problem}", prompts.orchestrator.user)
      assert.are.equal("### {name}\n{output}\n\n", prompts.aggregator.section)
    end)

    it("asks the orchestrator for JSON with objective and subtasks", function()
      local s = prompts.orchestrator.system
      assert.truthy(s:find("JSON", 1, true))
      assert.truthy(s:find("objective", 1, true))
      assert.truthy(s:find("subtasks", 1, true))
    end)

    it("uses exactly the documented placeholders", function()
      local function names(t)
        local seen = {}
        for n in t:gmatch("{([%a_][%w_]*)}") do seen[#seen + 1] = n end
        table.sort(seen)
        return seen
      end
      assert.are.same({ "dependencies", "description", "earlier", "name", "objective", "problem" },
        names(prompts.worker.user))
      assert.are.same({ "sections" }, names(prompts.worker.dependencies))
      assert.are.same({ "sections" }, names(prompts.worker.earlier))
      assert.are.same({ "name", "output" }, names(prompts.worker.section))
      assert.are.same({ "max_rounds", "objective", "problem", "results", "round" }, names(prompts.replan.user))
      assert.are.same({ "description", "name", "output" }, names(prompts.replan.section))
      assert.are.same({}, names(prompts.replan.system))
      assert.are.same({ "objective", "outputs", "problem" }, names(prompts.aggregator.user))
      assert.are.same({ "name", "output" }, names(prompts.aggregator.section))
      assert.are.same({}, names(prompts.worker.system))
      assert.are.same({}, names(prompts.aggregator.system))
      assert.are.same({}, names(prompts.orchestrator.system))
    end)

    it("renders the worker's user prompt with every placeholder filled", function()
      local s = prompts.render(prompts.worker.user,
        { problem = "PROBLEM", objective = "OBJECTIVE", name = "NAME", description = "DESCRIPTION",
          dependencies = "", earlier = "" }, "worker")
      for _, w in ipairs({ "PROBLEM", "OBJECTIVE", "NAME", "DESCRIPTION" }) do
        assert.truthy(s:find(w, 1, true))
      end
      assert.is_nil(s:find("{", 1, true))
    end)
  end)

  describe("copy", function()
    it("returns a deep copy that can be edited without touching the defaults", function()
      local mine = prompts.copy()
      assert.are.same(prompts.worker, mine.worker)
      assert.are_not.equal(prompts.worker, mine.worker)
      mine.worker.system = "Write Lua only."
      mine.aggregator.section = "-- {name}\n{output}\n"
      assert.are_not.equal("Write Lua only.", prompts.worker.system)
      assert.are.equal("### {name}\n{output}\n\n", prompts.aggregator.section)
      assert.are_not.equal("Write Lua only.", prompts.copy().worker.system)
    end)

    it("gives the original defaults even after the module's templates were edited", function()
      local saved = prompts.orchestrator.user
      prompts.orchestrator.user = "edited {problem}"
      local fresh = prompts.copy()
      prompts.orchestrator.user = saved
      assert.are.equal("{problem}", fresh.orchestrator.user)
    end)
  end)

  describe("render", function()
    it("replaces placeholders with strings and numbers", function()
      assert.are.equal("a=x b=3 a=x", prompts.render("a={a} b={b} a={a}", { a = "x", b = 3 }))
    end)

    it("raises naming the label and the missing placeholder", function()
      assert.has_error(function() prompts.render("Hi {who} and {other}", { who = "me" }, "worker user") end,
        "owl.prompts: worker user needs {other}, which was not given")
      assert.has_error(function() prompts.render("{x}", nil, "t") end,
        "owl.prompts: t needs {x}, which was not given")
    end)

    it("points the error at the caller", function()
      local ok, err = pcall(prompts.render, "{x}", {}, "t")
      assert.is_false(ok)
      local _, err2 = pcall(function() prompts.render("{x}", {}, "t") end)
      assert.truthy(err2:find("prompts_spec.lua", 1, true), err2)
      assert.is_string(err)
    end)

    it("leaves braces that hold no identifier alone", function()
      local t = 'Answer like {"a": 1} or { x } or {1x} or {} or {{name}} for {name}'
      assert.are.equal('Answer like {"a": 1} or { x } or {1x} or {} or {N} for N', prompts.render(t, { name = "N" }))
    end)

    it("inserts values literally and never expands them again", function()
      local s = prompts.render("{a}|{b}", { a = "{b} %1 %%", b = "B" })
      assert.are.equal("{b} %1 %%|B", s)
    end)

    -- A plan field may be an array (depends_on) or a boolean: it was once
    -- reported as "not given"; now it is written out, a table as JSON.
    it("writes a table value as JSON, a boolean as its word and json.null as null", function()
      local json = require("owl.json")
      assert.are.equal('deps=["a","b"] n=2 ok=false none=null',
        prompts.render("deps={d} n={n} ok={ok} none={z}", { d = { "a", "b" }, n = 2, ok = false, z = json.null }))
      assert.are.equal('{"k":1}', prompts.render("{o}", { o = { k = 1 } }))
    end)

    it("raises on a value that cannot be prompt text, and on a template that is not a string", function()
      assert.has_error(function() prompts.render("{a}", { a = print }, "t") end,
        "owl.prompts: t: {a} must be a string, number, boolean or table, got function")
      assert.has_error(function() prompts.render("{a}", { a = { f = print } }, "t") end)
      assert.has_error(function() prompts.render(nil, {}, "t") end)
      assert.has_error(function() prompts.render("{a}", "a=1", "t") end)
    end)

    it("returns a template without placeholders as it is", function()
      assert.are.equal("plain text", prompts.render("plain text", {}))
      assert.are.equal("", prompts.render("", {}))
    end)
  end)

  describe("render_pieces", function()
    it("returns the literal text and each value as separate pieces, in order", function()
      assert.are.same({ "P: ", "the problem", "\n", "3" },
        prompts.render_pieces("P: {problem}\n{n}", { problem = "the problem", n = 3 }))
    end)

    it("splices a table value piece by piece", function()
      local big = string.rep("x", 1000)
      local pieces = prompts.render_pieces("head\n{outputs}tail", { outputs = { "### a\n", big, "\n\n" } })
      assert.are.same({ "head\n", "### a\n", big, "\n\n", "tail" }, pieces)
      -- the big value is a piece of its own: the same string, not joined with anything
      assert.are.equal(1000, #pieces[3])
    end)

    it("raises on a missing placeholder and on a piece that is not a string", function()
      assert.has_error(function() prompts.render_pieces("{outputs}", {}, "aggregator user") end,
        "owl.prompts: aggregator user needs {outputs}, which was not given")
      assert.has_error(function() prompts.render_pieces("{outputs}", { outputs = { "a", {} } }, "t") end)
    end)

    it("renders the default aggregator prompt around the sections", function()
      local outputs = prompts.sections(prompts.aggregator.section,
        { { name = "parser", output = "def parse(): pass" }, { name = "cli", output = "def main(): pass" } }, "section")
      local pieces = prompts.render_pieces(prompts.aggregator.user,
        { problem = "PROBLEM", objective = "OBJECTIVE", outputs = outputs }, "aggregator")
      local joined = table.concat(pieces)
      assert.truthy(joined:find("### parser\ndef parse(): pass\n\n### cli\ndef main(): pass\n\n", 1, true))
      assert.truthy(joined:find("PROBLEM", 1, true))
      local found = 0
      for _, p in ipairs(pieces) do
        if p == "def parse(): pass" or p == "def main(): pass" then found = found + 1 end
      end
      assert.are.equal(2, found)
    end)
  end)

  describe("compact", function()
    it("joins neighbouring short pieces into runs and keeps the text", function()
      local pieces = {}
      for i = 1, 1000 do pieces[i] = "piece " .. i .. "\n" end
      local runs = prompts.compact(pieces, 1024)
      assert.are.equal(table.concat(pieces), table.concat(runs))
      assert.is_true(#runs < 20, "expected about 10 runs, got " .. #runs)
      for i = 1, #runs - 1 do
        -- a run closes once it reaches run_bytes, so it ends within one piece past it
        assert.is_true(#runs[i] >= 1024 and #runs[i] < 1024 + 16, "run " .. i .. " is " .. #runs[i] .. " bytes")
      end
    end)

    it("keeps a long piece as it is, between the runs around it", function()
      local big = string.rep("y", 5000)
      local runs = prompts.compact({ "a", "b", big, "c" }, 1024)
      assert.are.same({ "ab", big, "c" }, runs)
      assert.are.equal(0, #prompts.compact({}))
    end)

    it("raises on a piece that is not a string, naming it", function()
      assert.has_error(function() prompts.compact({ "a", 3 }) end,
        "owl.prompts: compact: piece 2 is a number, not a string")
      assert.has_error(function() prompts.compact("text") end,
        "owl.prompts: compact expects an array of pieces, got string")
    end)
  end)

  describe("sections", function()
    it("repeats the template per item with each output as its own piece", function()
      local pieces = prompts.sections("### {name}\n{output}\n\n", {
        { name = "a", output = "code A" },
        { name = "b", output = "code B" },
      })
      assert.are.same({ "### ", "a", "\n", "code A", "\n\n", "### ", "b", "\n", "code B", "\n\n" }, pieces)
    end)

    it("gives nothing for no items", function()
      assert.are.same({}, prompts.sections("### {name}\n{output}\n\n", {}))
    end)

    it("does not expand placeholders inside an output", function()
      local pieces = prompts.sections("{output}|", { { output = "{name} stays" } })
      assert.are.same({ "{name} stays", "|" }, pieces)
    end)

    it("splices an output given as pieces", function()
      assert.are.same({ "[", "x", "y", "]" }, prompts.sections("[{output}]", { { output = { "x", "y" } } }))
    end)

    it("raises naming the missing field and the item", function()
      assert.has_error(function()
        prompts.sections("### {name}\n{output}", { { name = "a", output = "x" }, { name = "b" } }, "aggregator section")
      end, "owl.prompts: aggregator section needs {output}, which was not given (item 2)")
      assert.has_error(function() prompts.sections("{output}", "nope") end)
      assert.has_error(function() prompts.sections("{output}", { "nope" }) end)
    end)
  end)
end)
