-- spec/flow_output_spec.lua: owl.run's `output` option. Regression: the
-- flow reduced every answer to the code of its fences (made for the coding
-- use), so a data-analysis worker's or aggregator's Markdown lost the prose
-- around a fenced block without a word (found writing examples/analysis.lua).
local owl = require("owl")
local mock = require("support.mock")
local F = require("support.flow")

local ANSWER = "Revenue grew 12% in the north.\n\n```csv\nregion,revenue\nnorth,112\n```\n\nThe south fell behind."

for _, provider in ipairs(F.providers) do
  describe("owl.run output on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    local function run(opts)
      local plan = { json = { objective = "Report on sales.",
                              subtasks = { { name = "trends", description = "Find the trends." } } } }
      server:script{ plan, { text = ANSWER }, { text = ANSWER } }
      return owl.run(F.client(server, provider), "Report on the sales.", opts)
    end

    it("keeps answers whole with output = \"text\"", function()
      local result = assert(run{ output = "text" })
      assert.equal(ANSWER, result.outputs[1])
      assert.equal(ANSWER, result.final)
    end)

    it("keeps only the fenced code by default (output = \"code\")", function()
      for _, opts in ipairs({ {}, { output = "code" } }) do
        server:reset()
        local result = assert(run(opts))
        assert.equal("region,revenue\nnorth,112\n", result.outputs[1])
        assert.equal("region,revenue\nnorth,112\n", result.final)
      end
    end)
  end)
end

describe("owl.run output", function()
  it("must be \"code\" or \"text\"", function()
    local c = owl.client{ base_url = "http://127.0.0.1:9/v1", api_key = "k", model = "m" }
    assert.has_error(function() owl.run(c, "p", { output = "markdown" }) end,
      "owl.run: option 'output' must be \"code\" or \"text\", got \"markdown\"")
    assert.has_error(function() owl.run(c, "p", { output = true }) end,
      "owl.run: option 'output' must be a string, got boolean")
  end)
end)
