-- spec/cli_check_spec.lua: bin/owl run --check against the mock. A
-- solution whose tests pass after a repair exits 0; one whose tests still
-- fail after every repair exits 3 with the code on stdout and the check's
-- report on stderr; without --check nothing is run.
local mock = require("support.mock")
local cli = require("support.cli")
local json = require("owl.json")

-- Runs bin/owl with args; returns stdout, stderr, exit code.
local function owl(args) return cli.owl(args, "OPENAI_API_KEY=sk-cli-check") end

-- An OpenAI chat completion whose answer is text.
local function answer(text)
  return { body = { id = "chatcmpl-x", object = "chat.completion", created = 1, model = "m",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 1, completion_tokens = 1, total_tokens = 2 } } }
end

local BROKEN = "```lua\nlocal function add(a, b) return a - b end\nassert(add(1, 2) == 3, 'add(1, 2) is not 3')\n```"

describe("bin/owl run --check", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("exits 0 with the repaired code when its tests pass after a repair", function()
    local out, err, code = owl({ "run", "--check", "--base-url", server.url,
                                 "--header", "x-mock-session: coding_demo", "Write", "stats" })
    assert.equal(0, code, err)
    assert.truthy(out:find("return self.m2 / (self.n - 1)", 1, true))
    assert.truthy(err:find("owl: check 1 failed: lua syntax ok; its tests: `lua solution.lua` exited with status 1", 1, true), err)
    assert.truthy(err:find("owl: repairing (1)", 1, true))
    assert.truthy(err:find("owl: check 2 passed", 1, true))
  end)

  it("exits 3 with the code on stdout and the report on stderr when the check still fails", function()
    server:script({ {}, {}, answer(BROKEN), answer(BROKEN), answer(BROKEN) })
    local out, err, code = owl({ "run", "--check", "--base-url", server.url, "--header", "x-mock-subtasks: 1",
                                 "Write", "add" })
    assert.equal(3, code, err)
    assert.equal("local function add(a, b) return a - b end\nassert(add(1, 2) == 3, 'add(1, 2) is not 3')\n", out)
    assert.truthy(err:find("owl: the solution's check still fails after 2 repairs; its report:", 1, true), err)
    assert.truthy(err:find("add(1, 2) is not 3", 1, true))
    assert.equal(5, #server:requests())
  end)

  it("exits 3 with --json too, the result holding every check", function()
    server:script({ {}, {}, answer(BROKEN), answer(BROKEN), answer(BROKEN) })
    local out, err, code = owl({ "run", "--check", "--json", "--base-url", server.url,
                                 "--header", "x-mock-subtasks: 1", "Write", "add" })
    assert.equal(3, code, err)
    local r = assert(json.decode(out))
    assert.is_false(r.verified)
    assert.equal(3, #r.checks)
    assert.is_false(r.checks[3].ok)
    assert.truthy(r.checks[3].report:find("add(1, 2) is not 3", 1, true))
  end)

  it("runs no check without --check", function()
    server:script({ {}, {}, answer(BROKEN) })
    local out, err, code = owl({ "run", "--base-url", server.url, "--header", "x-mock-subtasks: 1", "Write", "add" })
    assert.equal(0, code, err)
    assert.truthy(out:find("add(1, 2) is not 3", 1, true))
    assert.is_nil(err:find("check", 1, true))
    assert.equal(3, #server:requests())
  end)

  it("documents --check and exit status 3 in --help", function()
    local out, _, code = owl({ "--help" })
    assert.equal(0, code)
    assert.truthy(out:find("--check", 1, true))
    assert.truthy(out:find("3 with --check", 1, true))
  end)
end)
