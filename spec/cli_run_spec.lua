-- bin/owl as a process, under the Lua running the specs, against the mock:
-- stdout carries the final code (or the whole result as JSON), stderr the
-- progress, and the exit code says how it went.
local mock = require("support.mock")
local cli = require("support.cli")
local json = require("owl.json")

-- Runs bin/owl with args and env's NAME=value words after the OpenAI
-- test key; returns stdout, stderr, exit code.
local function owl(args, env) return cli.owl(args, "OPENAI_API_KEY=sk-cli-test " .. (env or "")) end

describe("bin/owl", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  it("prints the final code on stdout and progress on stderr", function()
    local out, err, code = owl({ "run", "--base-url", server.url, "--header", "x-mock-subtasks: 2",
                                 "Write", "a", "parser" })
    assert.equal(0, code, err)
    assert.truthy(out:find("Part 1 of 2 of the problem.", 1, true))
    assert.truthy(out:find("Part 2 of 2 of the problem.", 1, true))
    assert.is_nil(out:find("^```"))
    assert.truthy(err:find("part_1", 1, true))
    local sent = mock.json_decode(server:requests()[1].body)
    assert.equal("Write a parser", sent.messages[#sent.messages].content)
    assert.equal("gpt-4o-mini", sent.model)
  end)

  it("prints the whole result as JSON with --json", function()
    local out, err, code = owl({ "run", "--json", "--model", "m1", "--max-workers", "1", "--base-url", server.url,
                                 "--header", "x-mock-subtasks: 3", "p" })
    assert.equal(0, code, err)
    local r = assert(json.decode(out))
    assert.equal(3, #r.subtasks)
    assert.equal(3, #r.outputs)
    assert.equal(5, r.usage.total.calls)
    assert.is_string(r.final)
  end)

  it("exits 1 with the error on stderr when the run fails", function()
    local out, err, code = owl({ "run", "--base-url", server.url, "--header", "x-mock-fault: 500", "p" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("http error 500", 1, true))
    assert.is_nil(err:find("sk-cli-test", 1, true))
  end)

  for _, structured in ipairs({ "output_config", "tool", "tool --stream", "output_config --stream" }) do
    it("runs against Anthropic's Messages API with --provider anthropic --structured " .. structured, function()
      server:reset()
      local args = { "run", "--provider", "anthropic", "--structured" }
      for word in structured:gmatch("%S+") do args[#args + 1] = word end
      for _, a in ipairs({ "--base-url", server.base, "--header", "x-mock-subtasks: 2", "Write", "a", "parser" }) do
        args[#args + 1] = a
      end
      local stream = structured:find("--stream", 1, true) ~= nil
      structured = structured:match("^%S+")
      local out, err, code = owl(args, "ANTHROPIC_API_KEY=sk-ant-cli-test")
      assert.equal(0, code, err)
      assert.truthy(out:find("Part 2 of 2 of the problem.", 1, true))
      local reqs = server:requests()
      assert.equal(4, #reqs)
      for _, req in ipairs(reqs) do assert.equal(stream or nil, mock.json_decode(req.body).stream) end
      local first = mock.json_decode(reqs[1].body)
      assert.equal("/v1/messages", reqs[1].path)
      assert.equal("sk-ant-cli-test", reqs[1].headers["x-api-key"])
      assert.equal("2023-06-01", reqs[1].headers["anthropic-version"])
      assert.is_nil(reqs[1].headers.authorization)
      assert.equal("claude-haiku-4-5", first.model)
      assert.equal("Write a parser", first.messages[1].content)
      if structured == "tool" then
        assert.same({ type = "tool", name = "plan" }, first.tool_choice)
      else
        assert.equal("json_schema", first.output_config.format.type)
      end
    end)
  end

  it("picks anthropic when ANTHROPIC_API_KEY is the only key, and never shows it", function()
    server:reset()
    local out, err, code = owl({ "run", "--base-url", server.base, "--header", "x-mock-fault: 500", "p" },
                               "OPENAI_API_KEY= ANTHROPIC_API_KEY=sk-ant-only-key")
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("http error 500", 1, true))
    assert.is_nil(err:find("sk-ant-only-key", 1, true))
    local req = server:requests()[1]
    assert.equal("/v1/messages", req.path)
    assert.equal("sk-ant-only-key", req.headers["x-api-key"])
  end)

  it("exits 2 with the usage on bad flags", function()
    local _, err, code = owl({ "run", "--max-workers", "zero", "p" })
    assert.equal(2, code)
    assert.truthy(err:find("usage: owl run", 1, true))
    local _, err2, code2 = owl({ "fly" })
    assert.equal(2, code2)
    assert.truthy(err2:find("usage", 1, true))
  end)
end)
