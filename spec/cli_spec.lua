-- spec/cli_spec.lua: owl.cli. parse on good and bad command lines; main with
-- fake streams and a stand-in for require("owl"), so the exit codes, the
-- progress lines and the output are checked without a server.
local cli = require("owl.cli")
local errors = require("owl.errors")

local function sink()
  local parts = {}
  return {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
      return self
    end,
    text = function() return table.concat(parts) end,
  }
end

-- A stand-in for stdin: read(n) gives the next n bytes, then nil.
local function source(s)
  local pos = 1
  return { read = function(_, n)
    assert(type(n) == "number", "the CLI reads stdin in pieces")
    if pos > #s then return nil end
    local piece = s:sub(pos, pos + n - 1)
    pos = pos + n
    return piece
  end }
end

describe("owl.cli", function()
  describe("parse", function()
    it("joins the words after run into the problem", function()
      local o = assert(cli.parse({ "run", "write", "a", "JSON", "parser" }))
      assert.are.equal("run", o.command)
      assert.are.equal("write a JSON parser", o.problem)
      assert.is_false(o.json)
      assert.is_false(o.stdin)
      assert.is_nil(o.model)
      assert.is_nil(o.base_url)
      assert.is_nil(o.max_workers)
      assert.are.same({}, o.headers)
    end)

    it("reads every flag, before or after the words, in both spellings", function()
      local o = assert(cli.parse({ "run", "--model", "gpt-4o-mini", "build", "--json", "a cli",
        "--base-url=http://127.0.0.1:9/v1", "--header", "X-Team: owl", "--header=X-Trace:  1 2 ",
        "--max-workers", "4", "--max-retries=0" }))
      assert.are.equal(0, o.max_retries)
      assert.are.equal("gpt-4o-mini", o.model)
      assert.are.equal("http://127.0.0.1:9/v1", o.base_url)
      assert.are.same({ ["X-Team"] = "owl", ["X-Trace"] = "1 2" }, o.headers)
      assert.are.equal(4, o.max_workers)
      if math.type then assert.are.equal("integer", math.type(o.max_workers)) end
      assert.is_true(o.json)
      assert.are.equal("build a cli", o.problem)
    end)

    it("reads --provider and --structured", function()
      local o = assert(cli.parse({ "run", "--provider", "anthropic", "--structured=tool", "p" }))
      assert.are.equal("anthropic", o.provider)
      assert.are.equal("tool", o.structured)
      assert.is_nil(assert(cli.parse({ "run", "p" })).provider)
    end)

    it("picks anthropic only when its key is the only one set, unless --provider says", function()
      local function env(t) return function(name) return t[name] end end
      assert.are.equal("openai", cli.provider({}, env{}))
      assert.are.equal("anthropic", cli.provider({}, env{ ANTHROPIC_API_KEY = "sk-ant" }))
      assert.are.equal("anthropic", cli.provider({}, env{ OPENAI_API_KEY = "", ANTHROPIC_API_KEY = "sk-ant" }))
      assert.are.equal("openai", cli.provider({}, env{ OPENAI_API_KEY = "sk", ANTHROPIC_API_KEY = "sk-ant" }))
      assert.are.equal("openai", cli.provider({}, env{ ANTHROPIC_API_KEY = "" }))
      assert.are.equal("openai", cli.provider({ provider = "openai" }, env{ ANTHROPIC_API_KEY = "sk-ant" }))
      assert.are.equal("anthropic", cli.provider({ provider = "anthropic" }, env{ OPENAI_API_KEY = "sk" }))
    end)

    it("reads --quiet, --stream and --provider", function()
      local o = assert(cli.parse({ "run", "--quiet", "--provider", "openai", "p", "--stream" }))
      assert.is_true(o.quiet)
      assert.is_true(o.stream)
      assert.are.equal("openai", o.provider)
      local plain = assert(cli.parse({ "run", "p" }))
      assert.is_false(plain.quiet)
      assert.is_false(plain.stream)
      assert.is_nil(plain.provider)
      assert.is_nil(cli.parse({ "run", "--provider=other", "p" })) -- only the providers owl has
    end)

    it("keeps a header value that holds a colon", function()
      local o = assert(cli.parse({ "run", "--header", "X-Url: http://a:1/b", "p" }))
      assert.are.equal("http://a:1/b", o.headers["X-Url"])
    end)

    it("takes - as the problem on stdin", function()
      local o = assert(cli.parse({ "run", "--json", "-" }))
      assert.is_true(o.stdin)
      assert.is_nil(o.problem)
    end)

    it("treats everything after -- as the problem", function()
      local o = assert(cli.parse({ "run", "--", "explain", "--json", "and", "-v" }))
      assert.are.equal("explain --json and -v", o.problem)
      assert.is_false(o.json)
    end)

    it("gives help without a command", function()
      assert.is_true(assert(cli.parse({ "--help" })).help)
      assert.is_true(assert(cli.parse({ "run", "-h" })).help)
    end)

    local bad = {
      { { "run", "--verbose", "p" }, "unknown flag --verbose" },
      { { "run", "-v", "p" }, "unknown flag -v" },
      { { "run", "--json=yes", "p" }, "unknown flag --json=yes" },
      { { "run", "--quiet=no", "p" }, "unknown flag --quiet=no" },
      { { "run", "-q", "p" }, "unknown flag -q" },
      { { "run", "p", "--provider" }, "--provider needs a value" },
      { { "run", "p", "--model" }, "--model needs a value" },
      { { "run", "--model", "--json", "p" }, "--model needs a value" },
      { { "run", "--model=", "p" }, "--model needs a value" },
      { { "run", "--max-workers", "0", "p" }, "--max-workers needs an integer >= 1, got '0'" },
      { { "run", "--max-workers", "two", "p" }, "--max-workers needs an integer >= 1, got 'two'" },
      { { "run", "--max-workers", "2.5", "p" }, "--max-workers needs an integer >= 1, got '2.5'" },
      { { "run", "--max-workers=-1", "p" }, "--max-workers needs an integer >= 1, got '-1'" },
      { { "run", "--max-retries", "-1", "p" }, "--max-retries needs an integer from 0 to 100, got '-1'" },
      { { "run", "--max-retries", "101", "p" }, "--max-retries needs an integer from 0 to 100, got '101'" },
      { { "run", "--max-retries=1.5", "p" }, "--max-retries needs an integer from 0 to 100, got '1.5'" },
      { { "run", "--header", "X-No-Colon", "p" }, "malformed header 'X-No-Colon': expected 'Name: value'" },
      { { "run", "--header", ": v", "p" }, "malformed header ': v': expected 'Name: value'" },
      { { "run", "--header", "Two Words: v", "p" }, "malformed header 'Two Words: v': expected 'Name: value'" },
      { { "run", "--provider", "gemini", "p" }, "--provider must be openai or anthropic, got 'gemini'" },
      { { "run", "--structured", "json", "p" }, "--structured must be output_config or tool, got 'json'" },
      { { "run" }, "no problem given" },
      { { "run", "--json", "  " }, "no problem given" },
      { {}, "no command: use 'owl run PROBLEM'" },
      { { "--json" }, "no command: use 'owl run PROBLEM'" },
      { { "walk", "p" }, "unknown command 'walk'" },
    }
    for _, case in ipairs(bad) do
      it("rejects " .. table.concat(case[1], " ") .. " with: " .. case[2], function()
        local o, msg = cli.parse(case[1])
        assert.is_nil(o)
        assert.are.equal(case[2], msg)
      end)
    end

    it("raises on arguments that are not an array of strings", function()
      assert.has_error(function() cli.parse("run x") end)
      assert.has_error(function() cli.parse({ "run", 3 }) end)
    end)
  end)

  describe("main", function()
    local saved
    local calls

    -- A stand-in for require("owl") that records what the CLI asked for.
    local function fake_owl(run)
      calls = {}
      package.loaded["owl"] = {
        client = function(opts)
          calls.client = opts
          return { fake_client = true }
        end,
        run = function(client, problem, opts)
          calls.run = { client = client, problem = problem, opts = opts }
          return run(opts)
        end,
      }
    end

    local function ok_run(opts)
      opts.on_event("plan", { objective = "a tool", subtasks = { { name = "parse" }, { name = "emit" } } })
      opts.on_event("worker_done", { index = 2, name = "emit", ok = true })
      opts.on_event("worker_done", { index = 1, name = "parse", ok = false, err = errors.new("timeout", "too slow") })
      opts.on_event("something_new", {})
      opts.on_event("aggregate_start", {})
      return { objective = "a tool", subtasks = { { name = "parse", description = "d" } }, outputs = {},
               final = "print('done')", usage = { total = { input_tokens = 1, output_tokens = 2 } } }
    end

    before_each(function() saved = package.loaded["owl"] end)
    after_each(function() package.loaded["owl"] = saved end)

    it("prints the usage on stderr and returns 2 for bad flags", function()
      fake_owl(function() error("must not run") end)
      local out, err = sink(), sink()
      assert.are.equal(2, cli.main({ "run", "--nope", "x" }, out, err))
      assert.are.equal("", out.text())
      assert.truthy(err.text():find("owl: unknown flag --nope", 1, true))
      assert.truthy(err.text():find("usage: owl run", 1, true))
      assert.is_nil(calls.run)
    end)

    it("prints the usage on stdout and returns 0 for --help", function()
      local out, err = sink(), sink()
      assert.are.equal(0, cli.main({ "--help" }, out, err))
      assert.truthy(out.text():find("usage: owl run", 1, true))
      assert.are.equal("", err.text())
    end)

    it("builds the client, runs the flow, shows progress and prints the final result", function()
      fake_owl(ok_run)
      local out, err = sink(), sink()
      local code = cli.main({ "run", "--model", "m1", "--base-url", "http://127.0.0.1:1/v1",
        "--header", "X-A: b", "--max-workers", "3", "make", "a", "tool" }, out, err)
      assert.are.equal(0, code)
      assert.are.same({ provider = cli.provider({}), base_url = "http://127.0.0.1:1/v1", model = "m1",
                        headers = { ["X-A"] = "b" } }, calls.client)
      assert.are.equal("make a tool", calls.run.problem)
      assert.is_true(calls.run.client.fake_client)
      assert.are.equal(3, calls.run.opts.max_workers)
      assert.are.equal("print('done')\n", out.text())
      local progress, usage = err.text():match("^(.*\n)(owl: usage: [^\n]*\n)$")
      assert.are.equal(table.concat({
        "owl: plan: a tool\n",
        "owl:   1. parse\n",
        "owl:   2. emit\n",
        "owl: [2/2] emit done\n",
        "owl: [1/2] parse failed: owl: timeout error: too slow\n",
        "owl: aggregating\n",
      }), progress)
      assert.matches("^owl: usage: 0 calls, 1 input tokens %(0 cached%), 2 output tokens; wall time %d+%.%d s\n$", usage)
    end)

    it("builds an anthropic client with its default model and the structured mode", function()
      fake_owl(ok_run)
      local code = cli.main({ "run", "--provider", "anthropic", "--structured", "tool", "p" }, sink(), sink())
      assert.are.equal(0, code)
      assert.are.equal("anthropic", calls.client.provider)
      assert.are.equal("tool", calls.client.structured)
      assert.are.equal(os.getenv("OWL_MODEL") or "claude-haiku-4-5", calls.client.model)
    end)

    it("returns 2 for --structured with the openai provider", function()
      fake_owl(function() error("must not run") end)
      local err = sink()
      assert.are.equal(2, cli.main({ "run", "--provider", "openai", "--structured", "tool", "p" }, sink(), err))
      assert.truthy(err.text():find("owl: --structured is for --provider anthropic", 1, true))
      assert.is_nil(calls.client)
    end)

    it("passes no headers table when no --header was given", function()
      fake_owl(ok_run)
      assert.are.equal(0, cli.main({ "run", "p" }, sink(), sink()))
      assert.is_nil(calls.client.headers)
      assert.is_nil(calls.run.opts.max_workers)
    end)

    it("reads the problem from stdin for -, without the newline that ends it", function()
      fake_owl(ok_run)
      assert.are.equal(0, cli.main({ "run", "-" }, sink(), sink(), source("from\nstdin\n")))
      assert.are.equal("from\nstdin", calls.run.problem)
      assert.are.equal(0, cli.main({ "run", "-" }, sink(), sink(), source("two\n\n")))
      assert.are.equal("two\n", calls.run.problem)
    end)

    it("returns 2 for an empty stdin", function()
      fake_owl(ok_run)
      local err = sink()
      assert.are.equal(2, cli.main({ "run", "-" }, sink(), err, source("")))
      assert.is_nil(calls.run)
      assert.truthy(err.text():find("no problem on stdin", 1, true))
    end)

    it("prints the error and returns 1 when the run fails", function()
      fake_owl(function()
        return nil, errors.new("worker", "1 of 2 workers failed", { subtask = "parse" })
      end)
      local out, err = sink(), sink()
      assert.are.equal(1, cli.main({ "run", "p" }, out, err))
      assert.are.equal("", out.text())
      assert.are.equal("owl: worker error in subtask 'parse': 1 of 2 workers failed\n", err.text())
    end)

    it("reports a raised error as a message and returns 1", function()
      package.loaded["owl"] = {
        client = function() error("owl.client: no model given", 0) end,
        run = function() error("must not run") end,
      }
      local err = sink()
      assert.are.equal(1, cli.main({ "run", "p" }, sink(), err))
      assert.are.equal("owl: owl.client: no model given\n", err.text())
    end)

    it("prints the whole result as JSON with --json, empty lists as arrays", function()
      local json = require("owl.json")
      fake_owl(ok_run)
      local out = sink()
      assert.are.equal(0, cli.main({ "run", "--json", "p" }, out, sink()))
      local text = out.text()
      assert.are.equal("\n", text:sub(-1))
      local decoded = assert(json.decode(text))
      assert.are.equal("print('done')", decoded.final)
      assert.are.equal("a tool", decoded.objective)
      assert.are.equal("parse", decoded.subtasks[1].name)
      assert.are.equal(2, decoded.usage.total.output_tokens)
      assert.is_true(json.is_array(decoded.outputs))
      assert.truthy(text:find('"outputs":%s*%[%]'))
    end)

    it("passes --provider to the client", function()
      fake_owl(ok_run)
      assert.are.equal(0, cli.main({ "run", "--provider", "openai", "p" }, sink(), sink()))
      assert.are.equal("openai", calls.client.provider)
    end)

    it("passes --stream to owl.run with either provider, and refuses it with one that cannot stream", function()
      for _, provider in ipairs({ "openai", "anthropic" }) do
        fake_owl(ok_run)
        assert.are.equal(0, cli.main({ "run", "--provider", provider, "--stream", "p" }, sink(), sink()))
        assert.is_true(calls.run.opts.stream)
        assert.are.equal(provider, calls.client.provider)
      end
      fake_owl(ok_run)
      assert.are.equal(0, cli.main({ "run", "p" }, sink(), sink()))
      assert.is_nil(calls.run.opts.stream)
      -- a provider module without stream_reader (as anthropic's was) is
      -- refused before anything is paid for
      local real = package.loaded["owl.providers.anthropic"]
      package.loaded["owl.providers.anthropic"] = {}
      fake_owl(function() error("must not run") end)
      local out, err = sink(), sink()
      local ok, code = pcall(cli.main, { "run", "--provider", "anthropic", "--stream", "p" }, out, err)
      package.loaded["owl.providers.anthropic"] = real
      assert.is_true(ok, code)
      assert.are.equal(2, code)
      assert.are.equal("owl: --stream is not supported with --provider anthropic yet\n", err.text())
      assert.are.equal("", out.text())
      assert.is_nil(calls.client)
    end)

    it("writes nothing on stderr with --quiet but the error", function()
      fake_owl(ok_run)
      local out, err = sink(), sink()
      assert.are.equal(0, cli.main({ "run", "--quiet", "p" }, out, err))
      assert.are.equal("", err.text())
      assert.are.equal("print('done')\n", out.text())
      fake_owl(function(opts)
        opts.on_event("plan", { objective = "o", subtasks = { { name = "a" } } })
        return nil, errors.new("worker", "1 of 1 workers failed", { partial = { usage = { total = {} } } })
      end)
      err = sink()
      assert.are.equal(1, cli.main({ "run", "--quiet", "p" }, sink(), err))
      assert.are.equal("owl: worker error: 1 of 1 workers failed\n", err.text())
    end)

    it("prints what did finish and the error as JSON after a failure with --json, and returns 1", function()
      local json = require("owl.json")
      fake_owl(function()
        local cause = errors.new("http", "down", { status = 500, provider_type = "server_error" })
        local err = errors.new("worker", "1 of 2 workers failed", { subtask = "emit", cause = cause,
                                                                   errors = { cause } })
        err.partial = { objective = "a tool", subtasks = { { name = "parse" }, { name = "emit" } },
                        outputs = { "code", false }, usage = { total = { calls = 3 } } }
        err.itself = err -- a cycle is left out, not followed
        err.callback = function() end
        return nil, err
      end)
      local out, err = sink(), sink()
      assert.are.equal(1, cli.main({ "run", "--json", "p" }, out, err))
      local got = assert(json.decode(out.text()))
      assert.are.same({ "code", false }, { got.outputs[1], got.outputs[2] })
      assert.are.equal(2, #got.outputs)
      assert.are.equal("a tool", got.objective)
      assert.are.equal(3, got.usage.total.calls)
      assert.are.same({ kind = "worker", message = "1 of 2 workers failed", subtask = "emit",
        cause = { kind = "http", message = "down", status = 500, provider_type = "server_error" },
        errors = { { kind = "http", message = "down", status = 500, provider_type = "server_error" } } }, got.error)
      assert.truthy(err.text():find("owl: worker error in subtask 'emit': 1 of 2 workers failed\n$"), err.text())
    end)

    it("prints the error as JSON with empty outputs when the run failed before a plan, with --json", function()
      local json = require("owl.json")
      fake_owl(function() return nil, errors.new("timeout", "too slow") end)
      local out = sink()
      assert.are.equal(1, cli.main({ "run", "--json", "p" }, out, sink()))
      assert.truthy(out.text():find('"outputs":%s*%[%]'), out.text())
      assert.are.same({ kind = "timeout", message = "too slow" }, assert(json.decode(out.text())).error)
    end)

    it("does not add a newline the final result already has", function()
      fake_owl(function() return { final = "x\n", subtasks = {}, outputs = {} } end)
      local out = sink()
      assert.are.equal(0, cli.main({ "run", "p" }, out, sink()))
      assert.are.equal("x\n", out.text())
    end)
  end)

  describe("bin/owl", function()
    local lua = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("Lua (%d+%.%d+)"))

    local function run(cmd)
      local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
      local s = p:read("*a")
      p:close()
      return s
    end

    it("runs the checkout's CLI from any directory", function()
      local root = run("pwd"):match("^(.-)\n")
      local s = run("cd / && " .. lua .. " '" .. root .. "/bin/owl' --help")
      assert.truthy(s:find("usage: owl run", 1, true), s)
      assert.truthy(s:find("rc=0", 1, true), s)
      local s2 = run(lua .. " bin/owl run --max-workers 0 p")
      assert.truthy(s2:find("owl: --max-workers needs an integer >= 1", 1, true), s2)
      assert.truthy(s2:find("rc=2", 1, true), s2)
    end)
  end)
end)
