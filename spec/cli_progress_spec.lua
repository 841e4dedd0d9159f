-- spec/cli_progress_spec.lua: the progress `owl run` shows on stderr. The
-- reporter (owl.cli.progress) is fed synthetic events, streaming ones
-- included, and what it writes is played on a small terminal
-- (support.screen); then bin/owl itself runs on a pseudo-terminal (util-linux
-- `script`) against the mock, and off a terminal, and the specs check what a
-- person would see: the plan, a line per worker reaching "done" or
-- "failed", the count, the bar, the usage table, and only owl's own escape
-- sequences on the terminal, never a screen clear.
local progress = require("owl.cli.progress")
local errors = require("owl.errors")
local owl = require("owl")
local core = require("owl.core")
local json = require("owl.json")
local mock = require("support.mock")
local screen = require("support.screen")

local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local KEY = "sk-progress-SECRET-0000"
local q = mock.shell_quote

local function has(s, needle) return s:find(needle, 1, true) ~= nil end

-- A stand-in for stderr that keeps each write apart: a live frame is one write.
local function sink()
  local writes = {}
  return {
    writes = writes,
    write = function(self, ...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      writes[#writes + 1] = table.concat(parts)
      return self
    end,
    text = function() return table.concat(writes) end,
  }
end

-- A clock the spec moves by hand: far enough between events that no draw
-- is held back, unless a spec wants it to be.
local function hand_clock()
  local c = { now = 100 }
  c.fn = function() return c.now end
  c.tick = function(dt) c.now = c.now + (dt or 1) end
  return c
end

local function subtasks(n)
  local list = {}
  for i = 1, n do list[i] = { name = "part_" .. i, description = "d" } end
  return list
end

-- Bytes a terminal acts on that owl never sends: a screen or scrollback
-- clear, the cursor home, a full reset.
local CLEARS = { "\27[2J", "\27[3J", "\27[H", "\27c" }

local function assert_no_clears(raw)
  for _, seq in ipairs(CLEARS) do
    assert.is_false(has(raw, seq), "a screen clear " .. seq:gsub("\27", "ESC") .. " was sent")
  end
end

local function assert_only_own_sequences(scr)
  assert.are.same({}, scr.unknown, "escape sequences or controls owl does not send reached the terminal")
end

local function cursor_ups(scr)
  local n = 0
  for seq, k in pairs(scr.sequences) do
    if seq:find("^\27%[%d+A$") then n = n + k end
  end
  return n
end

describe("owl.cli.progress", function()
  describe("live, fed synthetic events", function()
    local clock, out, r

    local function live(columns, lines)
      clock, out = hand_clock(), sink()
      r = progress.new(out, "live", { columns = columns or 80, lines = lines or 24, clock = clock.fn })
      return r
    end

    local function event(name, data)
      clock.tick()
      r.on_event(name, data or {})
    end

    local function shown(columns, lines)
      return screen.new(columns or 80, lines or 24, { onlcr = true }):feed(out.text())
    end

    it("shows the plan, a line per worker from waiting to streaming to done, the count and the time", function()
      live()
      event("plan", { objective = "a CSV parser", subtasks = subtasks(3) })
      local scr = shown()
      assert.are.same({
        "owl: plan: a CSV parser",
        "  1. part_1  waiting",
        "  2. part_2  waiting",
        "  3. part_3  waiting",
        "owl: 0/3 workers finished, 1.0 s",
      }, scr:visible())

      event("worker_start", { index = 1, name = "part_1" })
      event("worker_start", { index = 2, name = "part_2" })
      event("worker_delta", { index = 2, name = "part_2", delta = { type = "text", text = "x" }, deltas = 1 })
      event("worker_delta", { index = 2, name = "part_2", delta = { type = "text", text = "y" }, deltas = 42 })
      event("worker_done", { index = 1, name = "part_1", ok = true, duration = 2.31 })
      scr = shown()
      assert.are.same({
        "owl: plan: a CSV parser",
        "  1. part_1  done in 2.3 s",
        "  2. part_2  streaming, 42 tokens",
        "  3. part_3  waiting",
        "owl: 1/3 workers finished, 6.0 s",
      }, scr:visible())
      assert_only_own_sequences(scr)
      assert.truthy(cursor_ups(scr) > 0)
      assert_no_clears(out.text())
    end)

    it("shows a worker in flight before its first token with its own time", function()
      live()
      event("plan", { objective = "o", subtasks = subtasks(1) })
      event("worker_start", { index = 1, name = "part_1" })
      clock.tick(2.5)
      r:draw(false)
      assert.are.equal("  1. part_1  working, 2.5 s", shown():visible()[2])
    end)

    it("shows the aggregator streaming, then done, and leaves the last frame on the screen", function()
      live()
      event("plan", { objective = "o", subtasks = subtasks(2) })
      for i = 1, 2 do
        event("worker_start", { index = i, name = "part_" .. i })
        event("worker_done", { index = i, name = "part_" .. i, ok = true, duration = 1 })
      end
      event("aggregate_start")
      assert.are.equal("owl: 2/2 workers finished, aggregating, 6.0 s", shown():visible()[4])
      event("aggregate_delta", { delta = { type = "text", text = "z" }, deltas = 7 })
      assert.are.equal("owl: 2/2 workers finished, aggregating, streaming 7 tokens, 7.0 s", shown():visible()[4])
      event("done", { usage = {} })
      clock.tick()
      r:stop(true)
      local scr = shown()
      assert.are.equal("owl: 2/2 workers finished, done in 9.0 s", scr:visible()[4])
      assert.are.equal(4, #scr:visible())
    end)

    it("says why a worker failed, escaped and cut to the terminal's width", function()
      live(90, 24)
      event("plan", { objective = "o", subtasks = { { name = "a\27[2Jb\r", description = "d" } } })
      local err = errors.new("http", "down \27]0;pwned\7 " .. string.rep("x", 500), { status = 500 })
      event("worker_start", { index = 1 })
      event("worker_done", { index = 1, ok = false, err = err })
      local scr = shown(90, 24)
      local line = scr:visible()[2]
      assert.truthy(line:find("^  1%. a\\x1b%[2Jb\\x0d  failed: owl: http error 500: down \\x1b%]0;pwned\\x07 x+%.%.%.$"),
        line)
      assert.are.equal(89, #line)
      assert.are.equal("owl: 1/1 workers finished (1 failed), 3.0 s", scr:visible()[3])
      assert_only_own_sequences(scr)
    end)

    it("cuts every line to the width, counting UTF-8 characters, not bytes", function()
      live(20, 24)
      event("plan", { objective = "o", subtasks = { { name = "h\195\169llo w\195\182rld of names", description = "d" } } })
      local rows = shown(20, 24):visible()
      for _, row in ipairs(rows) do
        local chars = select(2, row:gsub("[^\128-\191]", ""))
        assert.truthy(chars <= 19, row)
      end
      assert.truthy(rows[2]:find("h\195\169llo w\195\182rld", 1, true), rows[2])
    end)

    it("draws a one-line bar instead of worker lines when they do not fit, with the failures above it", function()
      live(80, 10)
      event("plan", { objective = "many parts", subtasks = subtasks(30) })
      for i = 1, 12 do
        event("worker_start", { index = i, name = "part_" .. i })
        if i == 4 then
          event("worker_done", { index = i, name = "part_4", ok = false, err = errors.new("timeout", "too slow") })
        else
          event("worker_done", { index = i, name = "part_" .. i, ok = true, duration = 1 })
        end
      end
      event("worker_start", { index = 13, name = "part_13" })
      event("worker_delta", { index = 13, name = "part_13", deltas = 3 })
      local scr = shown(80, 10)
      local text = scr:text()
      assert.truthy(has(text, "owl: plan: many parts"), text)
      assert.truthy(has(text, "owl:   30. part_30"), text)
      assert.truthy(has(text, "owl: [4/30] part_4 failed: owl: timeout error: too slow"), text)
      local rows = scr:visible()
      -- 79 columns: a bar of 19, 12/30 of it filled
      assert.are.equal("owl: [#######............] 12/30 workers finished (1 failed), 1 working, 27.0 s", rows[#rows])
      assert.is_nil(text:find("part_13  streaming", 1, true))
      -- the region is one line: every redraw goes up one line, no more
      for seq in pairs(scr.sequences) do
        if seq:find("A$") then assert.are.equal("\27[1A", seq) end
      end
      assert_only_own_sequences(scr)
    end)

    it("shows the planning time before the plan, and a run that failed there", function()
      live()
      r:start()
      clock.tick(1.5)
      r:draw(false)
      assert.are.same({ "owl: planning, 1.5 s" }, shown():visible())
      r:stop(false)
      assert.are.same({ "owl: failed after 1.5 s" }, shown():visible())
    end)

    it("holds back redraws less than INTERVAL apart, and draws the held change later", function()
      live()
      event("plan", { objective = "o", subtasks = subtasks(1) })
      local frames = #out.writes
      event("worker_start", { index = 1, name = "part_1" })
      assert.are.equal(frames + 1, #out.writes)
      for k = 1, 100 do
        clock.tick(progress.INTERVAL / 10)
        r.on_event("worker_delta", { index = 1, deltas = k })
      end
      -- 100 events over 10 intervals: at most 10 frames
      local drawn = #out.writes - frames - 1
      assert.truthy(drawn <= 10 and drawn >= 9, drawn .. " frames")
      clock.tick(progress.INTERVAL)
      r:draw(false)
      assert.are.equal("  1. part_1  streaming, 100 tokens", shown():visible()[2])
      -- nothing new: no frame
      local before = #out.writes
      r:draw(true)
      assert.are.equal(before, #out.writes)
    end)

    it("ignores events about workers it does not know, and odd data", function()
      live()
      r.on_event("worker_done", { index = 3, ok = true })
      r.on_event("plan", { objective = "o", subtasks = "not a list" })
      r.on_event("worker_delta", { index = 9, deltas = 2 })
      r.on_event("something_new", nil)
      assert_only_own_sequences(shown())
    end)
  end)

  describe("throttle, on the real clock", function()
    local function count_frames(drive)
      local out = sink()
      local r = progress.new(out, "live", { columns = 80, lines = 24 })
      r:start()
      r.on_event("plan", { objective = "o", subtasks = subtasks(2) })
      r.on_event("worker_start", { index = 1, name = "part_1" })
      local first = #out.writes
      local started = core.now()
      drive(r)
      local elapsed = core.now() - started
      local frames = #out.writes - first
      r:stop(true)
      return frames, elapsed, out
    end

    it("draws at most about 20 frames a second under a flood of events that lets the ticker run", function()
      local frames, elapsed = count_frames(function(r)
        local k, stop = 0, core.now() + 1
        while core.now() < stop do
          for _ = 1, 50 do
            k = k + 1
            r.on_event("worker_delta", { index = 1, deltas = k })
          end
          owl.sleep(0.001)
        end
      end)
      assert.truthy(frames <= 20 * elapsed + 2, frames .. " frames in " .. elapsed .. " s")
      -- and it does redraw all along, not once at the end (loose: a busy machine is slower)
      assert.truthy(frames >= 5 * elapsed, "only " .. frames .. " frames in " .. elapsed .. " s")
    end)

    it("draws at most about 20 frames a second under events in a tight loop that never yields", function()
      local frames, elapsed = count_frames(function(r)
        local k, stop = 0, core.now() + 0.5
        while core.now() < stop do
          k = k + 1
          r.on_event("worker_delta", { index = 1, deltas = k })
        end
      end)
      assert.truthy(frames <= 20 * elapsed + 2, frames .. " frames in " .. elapsed .. " s")
      assert.truthy(frames >= 3, "only " .. frames .. " frames in " .. elapsed .. " s")
    end)

    it("advances the elapsed time between events through its ticker, and the ticker ends with the run", function()
      local frames, _, out = count_frames(function() owl.sleep(0.4) end)
      assert.truthy(frames >= 3 and frames <= 9, frames .. " frames")
      local before = #out.writes
      owl.sleep(0.2)
      assert.are.equal(before, #out.writes, "the ticker drew after stop")
      assert.is_nil(owl.next_timer_ms(), "the ticker left a timer behind")
    end)
  end)

  describe("plain and usage", function()
    it("writes one line per outcome, and the usage summary", function()
      local out = sink()
      local r = progress.new(out, "plain", { clock = function() return 0 end })
      r.on_event("plan", { objective = "o\27[2J", subtasks = subtasks(2) })
      r.on_event("worker_start", { index = 1, name = "part_1" })
      r.on_event("worker_delta", { index = 1, deltas = 1 })
      r.on_event("worker_done", { index = 1, name = "part_1", ok = true, duration = 0.26 })
      r.on_event("worker_done", { index = 2, name = "part_2", ok = false, err = errors.new("timeout", "slow") })
      r.on_event("aggregate_start", {})
      r.on_event("aggregate_delta", { deltas = 1 })
      r:summary({ total = { calls = 4, input_tokens = 40, output_tokens = 20, cached_input_tokens = 8 } })
      assert.are.equal(table.concat({
        "owl: plan: o\\x1b[2J\n",
        "owl:   1. part_1\n",
        "owl:   2. part_2\n",
        "owl: [1/2] part_1 done in 0.3 s\n",
        "owl: [2/2] part_2 failed: owl: timeout error: slow\n",
        "owl: aggregating\n",
        "owl: usage: 4 calls, 40 input tokens (8 cached), 20 output tokens; wall time 0.0 s\n",
      }), out.text())
    end)

    it("writes nothing when quiet", function()
      local out = sink()
      local r = progress.new(out, "quiet")
      r:start()
      r.on_event("plan", { objective = "o", subtasks = subtasks(1) })
      r:stop(true)
      r:summary({})
      assert.are.equal("", out.text())
    end)

    it("lays out calls, input, cached and output tokens per role and in total, and the wall time", function()
      local usage = {
        orchestrator = { calls = 1, input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 },
        workers = { calls = 30, input_tokens = 123456, output_tokens = 150, cached_input_tokens = 64 },
        aggregator = { calls = 1, input_tokens = 10, output_tokens = 5, cached_input_tokens = 0 },
        total = { calls = 32, input_tokens = 123476, output_tokens = 160, cached_input_tokens = 64 },
      }
      assert.are.same({
        "owl: usage      calls   input  cached  output",
        "  orchestrator      1      10       0       5",
        "  workers          30  123456      64     150",
        "  aggregator        1      10       0       5",
        "  total            32  123476      64     160",
        "owl: wall time 12.3 s",
      }, progress.usage_table(usage, 12.34))
    end)

    it("reads the terminal's size from COLUMNS and LINES, else 80x24", function()
      local function env(t) return function(k) return t[k] end end
      assert.are.same({ 120, 40 }, { progress.terminal_size(env{ COLUMNS = "120", LINES = "40" }) })
      assert.are.same({ 80, 24 }, { progress.terminal_size(env{}) })
      assert.are.same({ 80, 24 }, { progress.terminal_size(env{ COLUMNS = "wide", LINES = "-3" }) })
      assert.are.same({ 20, 3 }, { progress.terminal_size(env{ COLUMNS = "5", LINES = "1" }) })
    end)

    it("refuses a mode it does not know", function()
      assert.has_error(function() progress.new(sink(), "loud") end)
    end)
  end)
end)

describe("bin/owl's progress", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    os.remove(path)
    return s
  end

  -- The command line of bin/owl with args and o.env ({ NAME = value }).
  local function command(args, o)
    local env = { "env", "-u", "OWL_TIMEOUT", "-u", "OWL_MODEL", "OPENAI_API_KEY=" .. q(KEY),
                  "OPENAI_BASE_URL=" .. q(server.url) }
    for name, value in pairs(o.env or {}) do env[#env + 1] = name .. "=" .. q(value) end
    local cmd = table.concat(env, " ") .. " " .. LUA .. " bin/owl"
    for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
    return cmd
  end

  local function exit_of(cmd)
    local p = assert(io.popen("unset LD_PRELOAD; " .. cmd .. "; echo \"exit=$?\"", "r"))
    local status = p:read("*a")
    p:close()
    return tonumber(status:match("exit=(%d+)"))
  end

  -- bin/owl on a pseudo-terminal: `script` gives it one for stdin and
  -- stderr (its typescript file is /dev/null; what reached the terminal is
  -- script's own stdout), stdout goes to a file. Returns { tty (the bytes
  -- the terminal got), screen (them played on a terminal of that size),
  -- out, code }.
  local function on_pty(args, o)
    o = o or {}
    local columns, lines = o.columns or 100, o.lines or 24
    o.env = o.env or {}
    o.env.COLUMNS, o.env.LINES, o.env.TERM = tostring(columns), tostring(lines), o.term or "xterm"
    local out_file, tty_file = os.tmpname(), os.tmpname()
    local inner = command(args, o) .. " >" .. q(out_file)
    local code = exit_of("SHELL=/bin/sh timeout 60 script -q -e -c " .. q(inner) .. " /dev/null </dev/null >"
      .. q(tty_file))
    local r = { code = code, out = slurp(out_file), tty = slurp(tty_file) }
    r.screen = screen.new(columns, lines):feed(r.tty)
    r.text = r.screen:text()
    return r
  end

  -- bin/owl off a terminal: stdout and stderr go to files.
  local function off_pty(args, o)
    local out_file, err_file = os.tmpname(), os.tmpname()
    local code = exit_of("timeout 60 " .. command(args, o or {}) .. " >" .. q(out_file) .. " 2>" .. q(err_file)
      .. " </dev/null")
    return { code = code, out = slurp(out_file), err = slurp(err_file) }
  end

  -- The row of the usage table for a role, as numbers.
  local function usage_row(text, role)
    local a, b, c, d = text:match("\n  " .. role .. " +(%d+) +(%d+) +(%d+) +(%d+)\n")
    return { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
  end

  it("draws the plan, a line per worker reaching done, 3/3, and the usage table with the mock's numbers", function()
    local r = on_pty({ "run", "--max-workers", "1", "--header", "x-mock-latency-ms: 150", "Write", "a", "parser" })
    assert.are.equal(0, r.code, r.tty)
    local text = r.text
    assert.truthy(has(text, "owl: plan: Mock plan for: Write a parser"), text)
    for i = 1, 3 do
      assert.truthy(text:find("\n  " .. i .. ". part_" .. i .. "  done in %d+%.%d s\n"), text)
    end
    assert.truthy(text:find("\nowl: 3/3 workers finished, done in %d+%.%d s\n"), text)
    -- it was watched on its way: waiting, then working, with a count below 3
    assert.truthy(has(r.tty, "  3. part_3  waiting"), r.tty)
    assert.truthy(has(r.tty, "  1. part_1  working, "), r.tty)
    assert.truthy(has(r.tty, "owl: 1/3 workers finished"), r.tty)
    -- 10 input and 5 output tokens per call, in the mock
    assert.are.same({ 1, 10, 0, 5 }, usage_row(text, "orchestrator"))
    assert.are.same({ 3, 30, 0, 15 }, usage_row(text, "workers"))
    assert.are.same({ 1, 10, 0, 5 }, usage_row(text, "aggregator"))
    assert.are.same({ 5, 50, 0, 25 }, usage_row(text, "total"))
    assert.truthy(text:find("\nowl: wall time %d+%.%d s$"), text)
    -- redrawn in place: the cursor goes up over the region, nothing clears the screen
    assert.truthy(r.screen.sequences["\27[4A"], r.tty)
    assert_no_clears(r.tty)
    assert_only_own_sequences(r.screen)
    -- each worker has one line on the screen however often it was redrawn
    local _, lines_of_part_1 = text:gsub("\n  1%. part_1 ", "")
    assert.are.equal(1, lines_of_part_1)
    -- stdout is the answer, untouched by the progress
    assert.truthy(has(r.out, "Part 1 of 3 of the problem."), r.out)
    assert.is_false(has(r.out, "\27"))
  end)

  it("draws a one-line bar when the workers do not fit the screen", function()
    local r = on_pty({ "run", "--max-workers", "5", "--header", "x-mock-subtasks: 30",
                       "--header", "x-mock-latency-ms: 100", "p" }, { columns = 100, lines = 10 })
    assert.are.equal(0, r.code, r.tty)
    local text = r.text
    assert.truthy(has(text, "owl:   30. part_30"), text)
    local rows = r.screen:visible()
    local last_frame = rows[#rows - 6]
    assert.truthy(last_frame:find("^owl: %[" .. string.rep("#", 24) .. "%] 30/30 workers finished, done in %d+%.%d s$"),
      table.concat(rows, "\n"))
    -- on its way: a bar partly filled and a count below 30
    assert.truthy(r.tty:find("owl: %[#*%.+%] %d+/30 workers finished, %d+ working, "), r.tty)
    assert.is_nil(text:find("part_%d+  done in"), text)
    for seq in pairs(r.screen.sequences) do
      if seq:find("A$") then assert.are.equal("\27[1A", seq) end
    end
    assert.are.same({ 30, 300, 0, 150 }, usage_row(text, "workers"))
    assert_no_clears(r.tty)
    assert_only_own_sequences(r.screen)
  end)

  it("shows why a worker failed, then the usage and the error", function()
    server:script{ {}, {}, { status = 500, body = { error = { message = "the model is down" } } }, {} }
    local r = on_pty({ "run", "--max-retries", "0", "--max-workers", "1", "p" }, { columns = 140 })
    assert.are.equal(1, r.code, r.tty)
    local text = r.text
    assert.truthy(has(text, "\n  1. part_1  done in "), text)
    assert.truthy(has(text, "\n  2. part_2  failed: owl: http error 500: the model is down\n"), text)
    assert.truthy(has(text, "\n  3. part_3  done in "), text)
    assert.truthy(text:find("\nowl: 3/3 workers finished %(1 failed%), failed after %d+%.%d s\n"), text)
    -- the failed call is counted, with no tokens
    assert.are.same({ 3, 20, 0, 10 }, usage_row(text, "workers"))
    assert.truthy(text:find("\nowl: worker error in subtask 'part_2': 1 of 3 workers failed; first: [^\n]+$"), text)
    assert.are.equal("", r.out)
    assert.is_false(has(r.tty, KEY))
  end)

  it("keeps a hostile plan and error escaped on the terminal", function()
    local plan = { objective = "build \27]0;pwned\7 it \27[2J", subtasks = {
      { name = "a\27[2Jb\r", description = "d" }, { name = "c\194\155" .. "31md", description = "d" } } }
    local function reply(content)
      return { body = { id = "c", object = "chat.completion", model = "m", choices = { {
        index = 0, finish_reason = "stop", message = { role = "assistant", content = content } } } } }
    end
    server:script{ reply(mock.json_encode(plan)), {},
                   { status = 500, body = { error = { message = "down \27[2J\27]0;pwned\7" } } } }
    local r = on_pty({ "run", "--max-retries", "0", "--max-workers", "1", "p" })
    assert.are.equal(1, r.code, r.tty)
    assert_only_own_sequences(r.screen)
    assert_no_clears(r.tty)
    local text = r.text
    assert.truthy(has(text, "owl: plan: build \\x1b]0;pwned\\x07 it \\x1b[2J"), text)
    assert.truthy(has(text, "  1. a\\x1b[2Jb\\x0d  done in"), text)
    assert.truthy(has(text, "  2. c\\u009b31md    failed: owl: http error 500: down \\x1b[2J\\x1b]0;pwned\\x07"), text)
  end)

  it("prints plain lines on a terminal that cannot move its cursor (TERM=dumb)", function()
    local r = on_pty({ "run", "p" }, { term = "dumb" })
    assert.are.equal(0, r.code, r.tty)
    assert.is_false(has(r.tty, "\27"))
    assert.truthy(has(r.text, "owl: [1/3] part_1 done in"), r.text)
  end)

  it("writes nothing on the terminal with --quiet", function()
    local r = on_pty({ "run", "--quiet", "p" })
    assert.are.equal(0, r.code)
    assert.are.equal("", r.tty)
    assert.truthy(has(r.out, "Part 3 of 3"), r.out)
  end)

  describe("off a terminal", function()
    it("writes plain lines: the plan, one per worker, aggregating, the usage", function()
      local r = off_pty({ "run", "--max-workers", "1", "p" })
      assert.are.equal(0, r.code, r.err)
      local lines = {}
      for line in r.err:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal("owl: plan: Mock plan for: p", lines[1])
      assert.are.same({ "owl:   1. part_1", "owl:   2. part_2", "owl:   3. part_3" }, { lines[2], lines[3], lines[4] })
      for i = 1, 3 do
        assert.truthy(lines[4 + i]:find("^owl: %[" .. i .. "/3%] part_" .. i .. " done in %d+%.%d s$"), lines[4 + i])
      end
      assert.are.equal("owl: aggregating", lines[8])
      assert.truthy(lines[9]:find("^owl: usage: 5 calls, 50 input tokens %(0 cached%), 25 output tokens; wall time %d+%.%d s$"),
        lines[9])
      assert.are.equal(9, #lines)
      assert.is_false(has(r.err, "\27"))
    end)

    it("writes only the error with --quiet", function()
      local ok = off_pty({ "run", "--quiet", "p" })
      assert.are.equal(0, ok.code, ok.err)
      assert.are.equal("", ok.err)
      server:script{ {}, {}, { status = 500, body = { error = { message = "down" } } }, {} }
      local failed = off_pty({ "run", "--max-retries", "0", "--quiet", "--max-workers", "1", "p" })
      assert.are.equal(1, failed.code)
      assert.truthy(failed.err:find("^owl: worker error in subtask 'part_2': [^\n]*\n$"), failed.err)
    end)

    it("prints what did finish with the error as JSON after a failure, with --json", function()
      server:script{ {}, {}, { status = 500, body = { error = { message = "down " .. KEY } } }, {} }
      local r = off_pty({ "run", "--max-retries", "0", "--json", "--max-workers", "1", "p" })
      assert.are.equal(1, r.code, r.err)
      assert.is_false(has(r.out .. r.err, KEY))
      local got = assert(json.decode(r.out))
      assert.are.equal("Mock plan for: p", got.objective)
      assert.are.equal(3, #got.subtasks)
      assert.are.equal(3, #got.outputs)
      assert.truthy(has(got.outputs[1], "Part 1 of 3"))
      assert.is_false(got.outputs[2])
      assert.truthy(has(got.outputs[3], "Part 3 of 3"))
      assert.is_nil(got.final)
      assert.are.equal(5 - 1, got.usage.total.calls)
      assert.are.equal("worker", got.error.kind)
      assert.are.equal("part_2", got.error.subtask)
      assert.are.equal("http", got.error.cause.kind)
      assert.are.equal(500, got.error.cause.status)
      assert.truthy(has(got.error.cause.message, "down [redacted]"), got.error.cause.message)
      assert.are.equal(1, #got.error.errors)
      assert.is_nil(got.error.partial)
      assert.truthy(has(r.err, "worker error"), r.err)
    end)
  end)
end)
