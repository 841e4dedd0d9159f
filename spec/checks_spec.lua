-- spec/checks_spec.lua: owl.checks. Each syntax checker on good and bad
-- code; the command check's time limit (a sleeping command and its child
-- killed), its output cap, its environment (no API key), its temporary
-- folder (removed), its stdin (end of file at once) and that it never
-- blocks owl's loop; language detection and coding()'s outcomes.
local owl = require("owl")
local checks = require("owl.checks")
local mock = require("support.mock")

local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local FLAVOR = type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")

local function exists(path)
  local ok = os.execute("test -e " .. mock.shell_quote(path))
  return ok == true or ok == 0
end

describe("owl.checks.syntax", function()
  local cases = {
    lua = { "local function f(x) return x + 1 end\nreturn f\n", "local function f(x) return x + end\n", "solution.lua:1:" },
    python = { "def f(x):\n    return x + 1\n", "def f(x:\n    return x\n", "SyntaxError" },
    c = { "int f(int x) { return x + 1; }\n", "int f(int x) { return x + ; }\n", "error" },
    javascript = { "function f(x) { return x + 1; }\n", "function f(x) { return x + ; }\n", "SyntaxError" },
  }
  for lang, c in pairs(cases) do
    it("passes good " .. lang .. " and fails bad " .. lang .. " with the parser's message", function()
      local check = checks.syntax(lang)
      local ok, report = check(c[1])
      assert.is_true(ok, report)
      assert.equal(lang .. " syntax ok", report)
      ok, report = check(c[2])
      assert.is_false(ok)
      assert.truthy(report:find(c[3], 1, true), report)
    end)
  end

  it("never runs Lua it checks", function()
    assert.is_true((checks.syntax("lua")("error('ran')\nos.exit(9)")))
  end)

  it("skips a shebang line and refuses a binary chunk", function()
    assert.is_true((checks.syntax("lua")("#!/usr/bin/env lua\nprint(1)\n")))
    local ok, report = checks.syntax("lua")(string.dump(function() end))
    assert.is_false(ok)
    assert.truthy(report:find("binary chunk", 1, true))
  end)

  it("raises for an unknown language", function()
    assert.has_error(function() checks.syntax("cobol") end,
      "owl.checks.syntax: unknown language 'cobol' (lua, python, c or javascript)")
  end)
end)

describe("owl.checks.command", function()
  it("passes on exit 0 and fails on any other status, with the output in the report", function()
    local ok, report = checks.command{ command = "cat solution.txt" }("hello")
    assert.is_true(ok)
    assert.truthy(report:find("hello", 1, true))
    ok, report = checks.command{ command = "echo broken >&2; exit 4" }("x")
    assert.is_false(ok)
    assert.truthy(report:find("exited with status 4", 1, true))
    assert.truthy(report:find("broken", 1, true))
  end)

  it("writes the solution to `file` with `files` beside it", function()
    local ok, report = checks.command{ command = "cat a/in.txt main.py", file = "main.py",
                                       files = { ["a/in.txt"] = "data-" } }("code")
    assert.is_true(ok, report)
    assert.truthy(report:find("data-code", 1, true))
  end)

  it("kills a command and its children at the time limit", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local started = os.time()
    local ok, report = checks.command{
      command = "sleep 30 & echo $! > " .. dir .. "/child; sleep 30", timeout = 0.5 }("x")
    assert.is_false(ok)
    assert.truthy(report:find("killed at the time limit of 0.5 s", 1, true), report)
    assert.is_true(os.time() - started < 5)
    local f = assert(io.open(dir .. "/child"))
    local child = tonumber(f:read("*a"))
    f:close()
    os.execute("rm -rf " .. dir)
    assert.is_number(child)
    assert.is_true(mock.wait_until(2, function() return not mock.alive(child) end), "the child survived")
  end)

  it("keeps the first max_output bytes, says it cut them, and lets the command finish", function()
    local r = checks.process.run{ command = "head -c 300000 /dev/zero | tr '\\0' a; echo end >&2", max_output = 1000 }
    assert.equal(0, r.status)
    assert.is_true(r.cut)
    assert.equal(string.rep("a", 1000), r.output)
    local ok, report = checks.command{ command = "head -c 300000 /dev/zero | tr '\\0' a", max_output = 1000 }("x")
    assert.is_true(ok)
    assert.truthy(report:find("[output cut at 1000 bytes]", 1, true))
    assert.is_nil(report:find(string.rep("a", 1001), 1, true))
  end)

  it("gives the command an environment without any API key, token or secret", function()
    local script = "package.cpath = 'build/" .. FLAVOR .. "/?.so;' .. package.cpath "
      .. "local r = require('owl.checks').process.run{ command = 'env' } io.write(r.output)"
    -- values long and odd enough that no other variable holds them by
    -- chance (regression: "p1" was found inside an unrelated value on jit)
    local p = assert(io.popen("env -u LD_PRELOAD OPENAI_API_KEY=sk-open-Vq81 ANTHROPIC_API_KEY=sk-ant-Wz52 "
      .. "GROQ_API_KEY=gk-Xr73 GITHUB_TOKEN=gh-Ys94 my_secret_value=sv-Zt15 DB_PASSWORD=pw-Qu36 OWL_KEEP_ME=kept "
      .. LUA .. " -e \"" .. script .. "\""))
    local env = p:read("*a")
    p:close()
    assert.truthy(env:find("OWL_KEEP_ME=kept", 1, true), env)
    assert.truthy(env:find("PATH=", 1, true))
    for _, v in ipairs({ "sk-open-Vq81", "sk-ant-Wz52", "gk-Xr73", "gh-Ys94", "sv-Zt15", "pw-Qu36", "API_KEY=",
                         "TOKEN=", "my_secret_value=", "DB_PASSWORD=" }) do
      assert.is_nil(env:find(v, 1, true), v .. " reached the command")
    end
  end)

  it("runs in a fresh temporary folder that is removed afterwards", function()
    local r1 = checks.process.run{ command = "pwd; ls -A" , files = { ["solution.txt"] = "x" } }
    local r2 = checks.process.run{ command = "pwd" }
    local dir1, listing = r1.output:match("^([^\n]+)\n(.*)$")
    assert.equal("solution.txt", listing:match("^%s*(.-)%s*$"))
    assert.are_not.equal(dir1, r2.output:match("^[^\n]+"))
    assert.is_false(exists(dir1))
    assert.is_false(exists((dir1:gsub("/work$", ""))))
  end)

  it("gives the command an stdin that ends at once", function()
    local started = os.time()
    local r = checks.process.run{ command = "cat; echo read-done", timeout = 10 }
    assert.equal(0, r.status)
    assert.equal("read-done\n", r.output)
    assert.is_true(os.time() - started < 5)
  end)

  it("does not block owl's loop: other tasks run while the command does", function()
    local ticks, stop = 0, false
    local ticker = owl.spawn(function()
      while not stop do
        owl.sleep(0.02)
        ticks = ticks + 1
      end
    end)
    local ok = checks.command{ command = "sleep 0.6" }("x")
    stop = true
    ticker:wait()
    assert.is_true(ok)
    assert.is_true(ticks >= 10, "only " .. ticks .. " ticks")
    -- and inside a task, the task yields while it waits
    local t = owl.spawn(function() return checks.command{ command = "sleep 0.3; echo in-task" }("x") end)
    assert.is_false(t:done())
    local ok2, report = t:wait()
    assert.is_true(ok2)
    assert.truthy(report:find("in-task", 1, true))
  end)

  it("kills the command when its task is cancelled", function()
    local pid_file = os.tmpname()
    local t = owl.spawn(function()
      return checks.command{ command = "echo $$ > " .. pid_file .. "; exec sleep 30" }("x")
    end)
    assert.is_true(mock.wait_until(5, function()
      local f = io.open(pid_file)
      local pid = f and tonumber(f:read("*a"))
      if f then f:close() end
      return pid ~= nil
    end))
    local started = os.time()
    t:cancel()
    local _, err = t:wait()
    assert.equal("cancelled", err.kind)
    assert.is_true(os.time() - started < 3)
    local f = assert(io.open(pid_file))
    local pid = tonumber(f:read("*a"))
    f:close()
    os.remove(pid_file)
    assert.is_true(mock.wait_until(2, function() return not mock.alive(pid) end), "the command survived")
  end)

  it("refuses bad options when the check is made", function()
    assert.has_error(function() checks.command{} end,
      "owl.checks.command: command must be a non-empty string (a sh command line)")
    assert.has_error(function() checks.command{ command = "true", timeout = 0 } end,
      "owl.checks.command: timeout must be a number of seconds above 0, got 0")
    assert.has_error(function() checks.command{ command = "true", max_output = 0.5 } end,
      "owl.checks.command: max_output must be a positive integer, got 0.5")
    assert.has_error(function() checks.command{ command = "true", shell = "bash" } end,
      "owl.checks.command: unknown option 'shell'")
    assert.has_error(function() checks.command{ command = "true", files = { ["../x"] = "y" } }("z") end)
  end)
end)

describe("owl.checks.coding", function()
  it("tells the language from the fence, a shebang or the code", function()
    assert.equal("python", checks.language("```python\nx = 1\n```"))
    assert.equal("javascript", checks.language("```js\nlet x = 1\n```"))
    assert.equal("lua", checks.language("#!/usr/bin/env lua\nprint(1)\n"))
    assert.equal("python", checks.language("#!/usr/bin/python3\nprint(1)\n"))
    assert.equal("lua", checks.language("local function f(x)\n  return x\nend\n\nreturn f\n"))
    assert.equal("python", checks.language("import sys\n\ndef main(argv):\n    return 0\n"))
    assert.equal("c", checks.language("#include <stdio.h>\n\nint main(void) {\n  return 0;\n}\n"))
    assert.equal("javascript", checks.language("const f = (x) => x + 1;\nmodule.exports = f;\n"))
    assert.is_nil(checks.language("A haiku about the sea.\nWaves fold into foam."))
    assert.is_nil(checks.language(""))
  end)

  it("knows which code carries its own tests", function()
    assert.is_true(checks.has_tests("lua", "assert(f(1) == 2)"))
    assert.is_false(checks.has_tests("lua", "return { f = f }"))
    assert.is_true(checks.has_tests("python", "def f():\n    pass\n\nassert f() is None\n"))
    assert.is_true(checks.has_tests("python", "if __name__ == '__main__':\n    main()\n"))
    assert.is_false(checks.has_tests("python", "def f():\n    return 'assert'\n"))
    assert.is_true(checks.has_tests("javascript", "console.assert(f() === 1);"))
    assert.is_true(checks.has_tests("c", "#include <assert.h>\nint main(void) { assert(1); }"))
    assert.is_false(checks.has_tests("c", "int f(void) { assert(1); }"))
  end)

  it("checks the syntax and does not run the tests unless asked", function()
    local code = "local x = 1\nassert(x == 2, 'x is not 2')\n"
    local ok, report = checks.coding()(code)
    assert.is_true(ok)
    assert.truthy(report:find("not run", 1, true))
    ok, report = checks.coding{ run = true }(code)
    assert.is_false(ok)
    assert.truthy(report:find("x is not 2", 1, true), report)
    ok, report = checks.coding{ run = true }("local x = 2\nassert(x == 2)\nprint('tests ok')\n")
    assert.is_true(ok)
    assert.truthy(report:find("tests ok", 1, true))
  end)

  it("runs Python, JavaScript and C tests", function()
    local py = "def add(a, b):\n    return a + b\n\nassert add(1, 2) == 4, 'add is wrong'\n"
    local ok, report = checks.coding{ run = true }(py)
    assert.is_false(ok)
    assert.truthy(report:find("add is wrong", 1, true), report)
    ok = checks.coding{ run = true }("const add = (a, b) => a + b;\nconsole.assert(add(1, 2) === 3);\n"
      .. "require('assert').strictEqual(add(2, 2), 4);\n")
    assert.is_true(ok)
    ok, report = checks.coding{ run = true }("#include <assert.h>\nint add(int a, int b) { return a - b; }\n"
      .. "int main(void) { assert(add(1, 2) == 3); return 0; }\n")
    assert.is_false(ok)
    assert.truthy(report:find("Assertion", 1, true), report)
  end)

  it("fails a syntax error before running anything, and code it cannot place", function()
    local ok, report = checks.coding{ run = true }("local function f(\nassert(false)\n")
    assert.is_false(ok)
    assert.truthy(report:find("lua syntax error", 1, true))
    ok, report = checks.coding{ run = true }("Just some words.")
    assert.is_false(ok)
    assert.truthy(report:find("cannot tell the language", 1, true))
    ok = checks.coding{ lang = "python" }("x = 1\n")
    assert.is_true(ok)
  end)

  it("refuses bad options", function()
    assert.has_error(function() checks.coding{ run = "yes" } end, "owl.checks.coding: run must be a boolean, got string")
    assert.has_error(function() checks.coding{ lang = "cobol" } end,
      "owl.checks.coding: lang must be lua, python, c or javascript, got cobol")
    assert.has_error(function() checks.coding{ lua = "lua; rm -rf /" } end)
  end)
end)
