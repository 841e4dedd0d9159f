-- spec/flow_journal_spec.lua: resumable runs (issue 9, §4). owl.run's
-- `journal` writes each answered call as a fsynced JSON line; a run given
-- the same journal reuses every answer whose request hash it holds and
-- makes only the missing calls. Proven at the mock: a run killed with
-- SIGKILL in a child process and resumed sends no journalled request
-- again. Also core.sha256, core.append_line, a torn last line, the hash's
-- stability, no key in the file, and bin/owl run --journal.
local owl = require("owl")
local mock = require("support.mock")
local F = require("support.flow")
local core = require("owl.core")
local json = require("owl.json")
local journal = require("owl.flow.journal")

local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
-- the plain build: under check-mem the child runs without the memory tools
local BUILD = "build/" .. (type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+"))

local read = require("support.files").read_if

local function lines_of(path)
  local out = {}
  for line in (read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function temp()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- A request body the mock logged, in one canonical form (keys sorted), so
-- two processes' bodies compare whatever order their tables had.
local function canonical(body)
  return mock.json_encode(mock.json_decode(body))
end

describe("core.sha256 and core.append_line", function()
  it("hashes a string or its pieces as SHA-256", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.sha256(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.sha256("abc"))
    local s = string.rep("a", 1000)
    assert.equal("41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3", core.sha256(s))
    assert.equal(core.sha256(s), core.sha256({ s:sub(1, 3), s:sub(4, 70), "", s:sub(71) }))
    assert.has_error(function() core.sha256({ "a", 1 }) end, "owl.core: sha256: piece 2 is a number, not a string")
  end)

  it("appends one line and its newline, or says why it cannot", function()
    local p = temp()
    assert.is_true(core.append_line(p, "one"))
    assert.is_true(core.append_line(p, ""))
    assert.is_true(core.append_line(p, "three"))
    assert.equal("one\n\nthree\n", read(p))
    os.remove(p)
    local ok, err = core.append_line("/nonexistent-owl-dir/j.jsonl", "x")
    assert.is_nil(ok)
    assert.equal("/nonexistent-owl-dir/j.jsonl: No such file or directory", err)
    assert.has_error(function() core.append_line(p, "a\nb") end)
  end)
end)

describe("the journal's request hash", function()
  local base = { model = "m", messages = { { role = "user", content = "hi" } },
                 structured = { name = "plan", schema = { type = "object", properties = { a = { type = "string" } } } } }

  it("is stable across key order and ignores what does not reach the model", function()
    local other = { structured = { schema = { properties = { a = { type = "string" } }, type = "object" }, name = "plan" },
                    messages = { { content = "hi", role = "user", raw = { anything = 1 } } }, model = "m",
                    stream = true, max_retries = 3 }
    assert.equal(journal.hash(base), journal.hash(other))
    assert.matches("^%x+$", journal.hash(base))
    assert.equal(64, #journal.hash(base))
  end)

  it("changes with the model, a message, the schema or the tools", function()
    local h = journal.hash(base)
    assert.not_equal(h, journal.hash({ model = "n", messages = base.messages, structured = base.structured }))
    assert.not_equal(h, journal.hash({ model = "m", messages = { { role = "user", content = "hi!" } },
                                       structured = base.structured }))
    assert.not_equal(h, journal.hash({ model = "m", messages = base.messages }))
    local t = owl.tool{ name = "t", description = "d", handler = function() end }
    assert.not_equal(h, journal.hash({ model = "m", messages = base.messages, structured = base.structured, tools = { t } }))
  end)

  it("reads a rope as the string it stands for", function()
    assert.equal(journal.hash({ messages = { { role = "user", content = "abcdef" } } }),
                 journal.hash({ messages = { { role = "user", content = json.rope({ "ab", "cd", "ef" }) } } }))
  end)
end)

for _, provider in ipairs(F.providers) do
  describe("owl.run with a journal on " .. provider, function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)
    before_each(function() server:reset() end)

    it("writes every answered call, and a second run makes none", function()
      local path = temp()
      local c = F.client(server, provider, { ["x-secret-token"] = "tok-journal-123" })
      local first = assert(owl.run(c, "Write a set.", { journal = path }))
      assert.equal(5, server:stats().total)
      local lines = lines_of(path)
      assert.equal(5, #lines)
      local roles = {}
      for i, line in ipairs(lines) do
        local e = assert(json.decode(line))
        assert.equal(1, e.v)
        assert.matches("^" .. string.rep("%x", 64) .. "$", e.hash)
        assert.is_nil(e.response.raw)
        assert.is_string(e.response.text)
        roles[i] = e.role
        if e.role == "workers" then
          assert.equal(first.subtasks[e.index].name, e.name)
        end
      end
      assert.same({ "orchestrator", "workers", "workers", "workers", "aggregator" }, roles)
      -- no key and no credential header in the file
      local text = read(path)
      assert.is_nil(text:find("sk-flow", 1, true))
      assert.is_nil(text:find("tok-journal-123", 1, true))

      server:reset()
      local again = assert(owl.run(c, "Write a set.", { journal = path }))
      assert.equal(0, server:stats().total)
      assert.equal(5, again.reused)
      assert.equal(first.final, again.final)
      assert.same(first.outputs, again.outputs)
      assert.equal(0, again.usage.total.calls)
      assert.equal(5, #lines_of(path))
      os.remove(path)
    end)

    it("makes only the calls it does not hold", function()
      local path = temp()
      local c = F.client(server, provider)
      assert(owl.run(c, "p", { journal = path }))
      -- drop a worker's line and the aggregator's
      local lines = lines_of(path)
      local f = io.open(path, "wb")
      f:write(lines[1], "\n", lines[2], "\n", lines[4], "\n")
      f:close()
      server:reset()
      local result = assert(owl.run(c, "p", { journal = path }))
      assert.equal(2, server:stats().total) -- the dropped worker, the aggregator
      assert.equal(3, result.reused)
      assert.equal(5, #lines_of(path))
      -- another problem is another plan request: nothing matches
      server:reset()
      assert(owl.run(c, "q", { journal = path }))
      assert.equal(5, server:stats().total)
      os.remove(path)
    end)

    it("ignores a torn last line with a warning, and rewrites the file without it", function()
      local path = temp()
      local c = F.client(server, provider)
      assert(owl.run(c, "p", { journal = path }))
      local f = io.open(path, "ab")
      f:write('{"v":1,"role":"workers","hash":"ab')
      f:close()
      server:reset()
      local warnings = {}
      local result = assert(owl.run(c, "p", { journal = path, on_event = function(name, d)
        if name == "warning" then warnings[#warnings + 1] = d.message end
      end }))
      assert.equal(0, server:stats().total)
      assert.equal(5, result.reused)
      assert.equal(1, #warnings)
      assert.matches("the journal's last line %(%d+ bytes, line 6%) is torn", warnings[1])
      for _, line in ipairs(lines_of(path)) do assert(json.decode(line)) end
      assert.equal("\n", read(path):sub(-1))
      os.remove(path)
    end)

    it("a journal that cannot be written fails before any call", function()
      local c = F.client(server, provider)
      local _, err = owl.run(c, "p", { journal = "/nonexistent-owl-dir/run.jsonl" })
      assert.equal("invalid", err.kind)
      assert.matches("cannot open the journal", err.message, 1, true)
      assert.equal(0, server:stats().total)
      assert.has_error(function() owl.run(c, "p", { journal = "" }) end)
    end)

    it("a run killed with SIGKILL and resumed sends no journalled request again", function()
      local path = temp()
      local script = os.tmpname()
      local o = provider == "anthropic"
        and string.format("provider = 'anthropic', base_url = %q, model = 'claude-test'", server.base)
        or string.format("base_url = %q, model = 'gpt-test'", server.url)
      local f = io.open(script, "w")
      f:write(string.format([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = %q .. "/?.so;" .. package.cpath
local owl = require("owl")
local c = owl.client{ %s, api_key = "sk-flow", max_retries = 0,
  headers = { ["x-mock-subtasks"] = "4", ["x-mock-latency-ms"] = "300" } }
owl.run(c, "Write a deque.", { journal = %q, max_workers = 1 })
]], BUILD, o, path))
      f:close()
      local _, _, pid = mock.run("env -u LD_PRELOAD " .. LUA .. " " .. script .. " >/dev/null 2>&1 & echo $!")
      pid = assert(tonumber(pid:match("%d+")))
      -- the plan and two workers answered: kill it while the third is in flight
      assert.is_true(mock.wait_until(20, function() return #lines_of(path) >= 3 end), "the child wrote no journal")
      mock.run("kill -9 " .. pid)
      assert.is_true(mock.wait_until(5, function() return not mock.alive(pid) end))
      local journalled = #lines_of(path)
      assert.is_true(journalled >= 3 and journalled < 6, "killed after " .. journalled .. " calls")
      local before = server:requests()
      local answered = {}
      for i = 1, journalled do answered[canonical(before[i].body)] = true end

      server:reset()
      local c = F.client(server, provider, { ["x-mock-subtasks"] = "4" })
      local result = assert(owl.run(c, "Write a deque.", { journal = path, max_workers = 1 }))
      assert.equal(journalled, result.reused)
      local after = server:requests()
      assert.equal(6 - journalled, #after)
      for _, req in ipairs(after) do
        assert.is_nil(answered[canonical(req.body)], "a journalled request was sent again")
      end
      assert.equal(4, #result.outputs)
      assert.equal(6, #lines_of(path))
      os.remove(path)
      os.remove(script)
    end)
  end)
end

describe("a custom flow's context", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  it("journals the stages' calls, and refuses the limits only owl.run has", function()
    local path = temp()
    local c = F.client(server, "openai")
    local ctx = owl.flow.context(c, "p", { journal = path })
    local plan = assert(owl.flow.plan(ctx))
    assert(owl.flow.work(ctx, plan))
    assert.equal(4, #lines_of(path))
    server:reset()
    ctx = owl.flow.context(c, "p", { journal = path })
    plan = assert(owl.flow.plan(ctx))
    assert(owl.flow.work(ctx, plan))
    assert.equal(0, server:stats().total)
    assert.has_error(function() owl.flow.context(c, "p", { deadline = 5 }) end,
      "owl.flow.context: option 'deadline' is owl.run's only")
    assert.has_error(function() owl.flow.context(c, "p", { journal = "/nonexistent-owl-dir/j" }) end)
    os.remove(path)
  end)
end)

describe("bin/owl run --journal", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  local function owl_cli(args)
    local err = os.tmpname()
    local cmd = "env -u LD_PRELOAD OPENAI_API_KEY=sk-cli-journal " .. LUA .. " bin/owl"
    for _, a in ipairs(args) do cmd = cmd .. " " .. mock.shell_quote(a) end
    local p = assert(io.popen(cmd .. " 2>" .. err .. "; echo \"exit=$?\""))
    local out = p:read("*a")
    p:close()
    local stderr = read(err)
    os.remove(err)
    return out, stderr, tonumber(out:match("exit=(%d+)\n$"))
  end

  it("reuses the journal's answers, and warns of a torn line on stderr", function()
    local path = temp()
    local _, err, code = owl_cli({ "run", "--base-url", server.url, "--journal", path, "p" })
    assert.equal(0, code, err)
    server:reset()
    local f = io.open(path, "ab")
    f:write('{"v":1,"ro')
    f:close()
    local out
    out, err, code = owl_cli({ "run", "--base-url", server.url, "--journal", path, "p" })
    assert.equal(0, code, err)
    assert.truthy(out:find("Part 1 of 3", 1, true))
    assert.equal(0, server:stats().total)
    assert.truthy(err:find("owl: warning: the journal's last line", 1, true))
    assert.is_nil(read(path):find("sk-cli-journal", 1, true))
    os.remove(path)
  end)
end)
