-- owl.cli.progress: what `owl run` shows on stderr while the flow runs, and
-- the usage at its end. Three modes:
--
--   live   on a terminal: the plan, then a region of lines (one per worker,
--          or a one-line bar when they do not fit the screen) redrawn in
--          place with cursor movement, never a screen clear, at most
--          1 / INTERVAL times a second; a ticker task advances the clock
--          between events; at the end a usage table;
--   plain  anywhere else (a file, a pipe, a log): one line per thing that
--          happened and a one-line usage summary;
--   quiet  nothing.
--
-- Every piece of untrusted text (the objective, subtask names, errors from
-- a server or a model) is made printable (text.printable) before it is
-- written, in every mode; the only escape sequences on the terminal are the
-- reporter's own.
local core = require("owl.core")
local task = require("owl.task")
local text = require("owl.text")

local M = {}

-- Seconds between two redraws at least (20 a second at most); the ticker
-- wakes as often, and draws only when the picture has changed.
M.INTERVAL = 0.05

-- The size of a terminal whose size nothing says.
M.DEFAULT_COLUMNS, M.DEFAULT_LINES = 80, 24

-- Sequences of the live mode: cursor up N lines (to the region's first
-- line), erase to the end of the line, erase below the cursor, and
-- autowrap off and on around the region (a line the terminal finds wider
-- than we do is cut, not wrapped, so the count of lines stays true).
local function up(n) return "\r\27[" .. n .. "A" end
local ERASE_LINE, ERASE_BELOW = "\27[K", "\27[J"
local WRAP_OFF, WRAP_ON = "\27[?7l", "\27[?7h"

-- Untrusted text as one printable line, cut at max bytes.
local function shown(v, max)
  return text.printable(text.cap(tostring(v), max or 400))
end

-- The byte length of the first `cols` characters of s (UTF-8: a
-- continuation byte takes no column), or nil when s has no more than that.
local function prefix_len(s, cols)
  local seen = 0
  for i = 1, #s do
    local b = s:byte(i)
    if b < 0x80 or b >= 0xC0 then
      seen = seen + 1
      if seen > cols then return i - 1 end
    end
  end
  return nil
end

local function width_of(s)
  local n = 0
  for i = 1, #s do
    local b = s:byte(i)
    if b < 0x80 or b >= 0xC0 then n = n + 1 end
  end
  return n
end

-- s cut to at most width columns, "..." marking a cut.
local function fit(s, width)
  if #s <= width or not prefix_len(s, width) then return s end
  return s:sub(1, prefix_len(s, width - 3)) .. "..."
end

-- s cut or padded with spaces to exactly width columns.
local function pad(s, width)
  local cut = prefix_len(s, width)
  if cut then return s:sub(1, cut) end
  return s .. string.rep(" ", width - width_of(s))
end

local function secs(t) return string.format("%.1f s", t) end
local function count(n) return string.format("%.0f", tonumber(n) or 0) end

-- M.terminal_size([getenv]) -> columns, lines: COLUMNS and LINES from the
-- environment (a shell sets them but seldom exports them), else 80x24.
function M.terminal_size(getenv)
  getenv = getenv or os.getenv
  local function read(name, default, least)
    local v = getenv(name)
    local n = type(v) == "string" and v:find("^%d+$") and tonumber(v)
    if not n or n < 1 or n > 100000 then return default end
    return math.max(n, least)
  end
  return read("COLUMNS", M.DEFAULT_COLUMNS, 20), read("LINES", M.DEFAULT_LINES, 3)
end

-- ------------------------------------------------------------------ usage

local ROLES = { "orchestrator", "workers", "aggregator", "total" }
local FIELDS = { "calls", "input_tokens", "cached_input_tokens", "output_tokens" }
local HEADS = { "calls", "input", "cached", "output" }

-- M.usage_table(usage, wall) -> lines: calls and tokens per role and in
-- total, right-aligned, and the wall time.
function M.usage_table(usage, wall)
  local rows, widths = {}, {}
  for c, head in ipairs(HEADS) do widths[c] = #head end
  for r, role in ipairs(ROLES) do
    local u = type(usage) == "table" and type(usage[role]) == "table" and usage[role] or {}
    rows[r] = {}
    for c, field in ipairs(FIELDS) do
      rows[r][c] = count(u[field])
      widths[c] = math.max(widths[c], #rows[r][c])
    end
  end
  local function line(label, cells)
    local parts = { pad(label, 14) }
    for c = 1, #cells do parts[#parts + 1] = string.rep(" ", widths[c] - #cells[c]) .. cells[c] end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local lines = { line("owl: usage", HEADS) }
  for r, role in ipairs(ROLES) do lines[#lines + 1] = line("  " .. role, rows[r]) end
  lines[#lines + 1] = "owl: wall time " .. secs(wall)
  return lines
end

-- One line: the total calls and tokens, and the wall time.
function M.usage_line(usage, wall)
  local t = type(usage) == "table" and type(usage.total) == "table" and usage.total or {}
  return "owl: usage: " .. count(t.calls) .. " calls, " .. count(t.input_tokens) .. " input tokens ("
    .. count(t.cached_input_tokens) .. " cached), " .. count(t.output_tokens) .. " output tokens; wall time "
    .. secs(wall)
end

-- One line for a finished check: passed, or failed with the first line of
-- its report (the whole report is in the result).
function M.check_line(data)
  local head = "check " .. tostring(data.attempt)
  if data.ok then return head .. " passed" end
  local why = data.err or (tostring(data.report or "")):match("^[^\n]*")
  return head .. " failed: " .. shown(why, 400)
end

-- A run's `warning` event (a torn journal line), in every mode.
function M.warning_line(data)
  return "owl: warning: " .. shown(data.message, 2000)
end

-- ------------------------------------------------------------------ plain

local Plain = {}
Plain.__index = Plain

function Plain:event(name, data)
  local out = self.out
  if name == "plan" then
    local subtasks = type(data.subtasks) == "table" and data.subtasks or {}
    self.total = #subtasks
    out:write("owl: plan: ", shown(data.objective, 2000), "\n")
    for i, s in ipairs(subtasks) do
      out:write("owl:   ", i, ". ", shown(type(s) == "table" and s.name or s, 200), "\n")
    end
  elseif name == "worker_done" then
    local head = "owl: [" .. tostring(data.index) .. "/" .. self.total .. "] " .. shown(data.name, 200)
    if data.ok then
      local took = type(data.duration) == "number" and (" in " .. secs(data.duration)) or ""
      out:write(head, " done", took, "\n")
    else
      out:write(head, " failed: ", shown(data.err, 2000), "\n")
    end
  elseif name == "aggregate_start" then
    out:write("owl: aggregating\n")
  elseif name == "check_done" then
    out:write("owl: ", M.check_line(data), "\n")
  elseif name == "repair_start" then
    out:write("owl: repairing (", tostring(data["repair"]), ")\n")
  elseif name == "warning" then
    out:write(M.warning_line(data), "\n")
  end
  -- deltas and the rest are for the terminal; a log needs the outcomes
end

function Plain:summary(usage)
  self.out:write(M.usage_line(usage, self.clock() - self.started), "\n")
end

-- ------------------------------------------------------------------ live

local Live = {}
Live.__index = Live

-- What a worker's line says about it.
function Live:state_of(w)
  if w.state == "waiting" then return "waiting" end
  if w.state == "working" then return "working, " .. secs(self.clock() - w.started) end
  if w.state == "streaming" then return "streaming, " .. count(w.deltas) .. " tokens" end
  if w.state == "done" then return "done in " .. secs(w.duration) end
  return "failed: " .. w.reason
end

-- The count of finished workers out of all, where the run is, the time.
function Live:status()
  local elapsed = secs(self.clock() - self.started)
  if self.phase == "done" then elapsed = "done in " .. elapsed end
  if self.phase == "failed" then elapsed = "failed after " .. elapsed end
  if not self.workers then
    return self.phase == "planning" and "planning, " .. elapsed or elapsed
  end
  local parts = { self.finished .. "/" .. #self.workers .. " workers finished" }
  if self.failed > 0 then parts[1] = parts[1] .. " (" .. self.failed .. " failed)" end
  if self.bar and self.running > 0 then parts[#parts + 1] = self.running .. " working" end
  if self.phase == "aggregating" then
    parts[#parts + 1] = self.agg_deltas > 0 and ("aggregating, streaming " .. count(self.agg_deltas) .. " tokens")
      or "aggregating"
  elseif self.phase == "checking" or self.phase == "repairing" then
    parts[#parts + 1] = self.phase
  end
  parts[#parts + 1] = elapsed
  return table.concat(parts, ", ")
end

-- The region's lines as they should look now.
function Live:region()
  local width = self.columns - 1 -- the last column makes some terminals wrap early
  if not self.workers then return { fit("owl: " .. self:status(), width) } end
  if self.bar then
    local n = #self.workers
    local size = math.max(10, math.min(30, math.floor(width / 4)))
    local filled = n > 0 and math.floor(size * self.finished / n) or size
    local bar = "[" .. string.rep("#", filled) .. string.rep(".", size - filled) .. "] "
    return { fit("owl: " .. bar .. self:status(), width) }
  end
  local lines = {}
  local digits = #tostring(#self.workers)
  for i, w in ipairs(self.workers) do
    local index = string.rep(" ", digits - #tostring(i)) .. i
    lines[i] = fit("  " .. index .. ". " .. pad(w.name, self.name_width) .. "  " .. self:state_of(w), width)
  end
  lines[#lines + 1] = fit("owl: " .. self:status(), width)
  return lines
end

-- Draws the region (and any permanent lines above it) unless the last
-- draw was less than INTERVAL ago, or force. One write per frame: a frame
-- is never split by another writer, and frames are easy to count.
function Live:draw(force)
  local now = self.clock()
  if not force and self.last_draw and now - self.last_draw < M.INTERVAL then return end
  local lines = self:region()
  local frame = table.concat(lines, "\n")
  if #self.pending == 0 and frame == self.last_frame then return end
  local out = {}
  if self.drawn > 0 then out[1] = up(self.drawn) end
  -- permanent lines take the region's place and scroll up with the text
  -- above it; they may wrap, the region below is drawn after them
  for _, line in ipairs(self.pending) do out[#out + 1] = line .. ERASE_LINE .. "\n" end
  out[#out + 1] = WRAP_OFF
  for _, line in ipairs(lines) do out[#out + 1] = line .. ERASE_LINE .. "\n" end
  out[#out + 1] = ERASE_BELOW .. WRAP_ON
  self.out:write(table.concat(out))
  self.pending, self.drawn, self.last_frame, self.last_draw = {}, #lines, frame, now
end

function Live:event(name, data)
  if name == "plan" then
    local subtasks = type(data.subtasks) == "table" and data.subtasks or {}
    local workers, widest = {}, 4
    for i, s in ipairs(subtasks) do
      local wname = shown(type(s) == "table" and s.name or s, 200)
      workers[i] = { name = wname, state = "waiting", deltas = 0 }
      widest = math.max(widest, width_of(wname))
    end
    self.workers, self.name_width = workers, math.min(widest, 24)
    -- the region holds a line per worker, the count below them and the
    -- line the cursor waits on; past the screen's height, one bar line
    self.bar = #workers + 2 > self.lines
    self.pending[#self.pending + 1] = "owl: plan: " .. shown(data.objective, 2000)
    if self.bar then
      for i, w in ipairs(workers) do self.pending[#self.pending + 1] = "owl:   " .. i .. ". " .. w.name end
    end
  elseif name == "worker_start" or name == "worker_delta" or name == "worker_done" then
    local w = self.workers and self.workers[data.index]
    if not w then return end
    if name == "worker_start" then
      w.state, w.started = "working", self.clock()
      self.running = self.running + 1
    elseif name == "worker_delta" then
      if w.state == "working" or w.state == "streaming" then
        w.state, w.deltas = "streaming", tonumber(data.deltas) or w.deltas + 1
      end
    elseif w.state ~= "done" and w.state ~= "failed" then
      if w.state == "working" or w.state == "streaming" then self.running = self.running - 1 end
      self.finished = self.finished + 1
      if data.ok then
        w.state, w.duration = "done", tonumber(data.duration) or 0
      else
        w.state, w.reason = "failed", shown(data.err, 400)
        self.failed = self.failed + 1
        if self.bar then
          self.pending[#self.pending + 1] = "owl: [" .. data.index .. "/" .. #self.workers .. "] " .. w.name
            .. " failed: " .. shown(data.err, 2000)
        end
      end
    end
  elseif name == "warning" then
    self.pending[#self.pending + 1] = M.warning_line(data)
  elseif name == "aggregate_start" then
    self.phase = "aggregating"
  elseif name == "aggregate_delta" then
    self.agg_deltas = tonumber(data.deltas) or self.agg_deltas + 1
  elseif name == "check_start" then
    self.phase = "checking"
  elseif name == "check_done" then
    self.pending[#self.pending + 1] = "owl: " .. M.check_line(data)
  elseif name == "repair_start" then
    self.phase = "repairing"
  elseif name == "done" then
    self.phase = "done"
  end
  self:draw(false)
end

-- The ticker: the elapsed time moves between events. It sleeps on owl's
-- timers, so the blocking driver of owl.run wakes it while it waits for
-- the network; it ends when stop cancels it.
function Live:start()
  self:draw(true)
  self.ticker = task.spawn(function()
    while not self.stopped do
      task.sleep(M.INTERVAL)
      if not self.stopped then self:draw(false) end
    end
  end)
end

function Live:stop(ok)
  self.stopped = true
  if self.ticker then
    self.ticker:cancel()
    -- a ticker that raised is a bug in this file: never swallowed
    if self.ticker.status == "failed" and not self.ticker.cancelled then error(self.ticker.error, 0) end
  end
  if self.phase ~= "done" then self.phase = ok and "done" or "failed" end
  self:draw(true)
end

function Live:summary(usage)
  self.out:write(table.concat(M.usage_table(usage, self.clock() - self.started), "\n"), "\n")
end

-- ------------------------------------------------------------------ reporter

-- M.new(out, mode [, o]) -> reporter, with:
--   reporter.on_event   the function for owl.run's on_event
--   reporter:start()    starts the ticker (live)
--   reporter:stop(ok)   stops it and draws the last frame
--   reporter:summary(usage)   the usage table (live) or line (plain)
-- mode: "live", "plain" or "quiet". o.columns, o.lines: the terminal's
-- size (live); o.clock: seconds, core.now by default.
function M.new(out, mode, o)
  o = o or {}
  local clock = o.clock or core.now
  local r
  if mode == "live" then
    r = setmetatable({ columns = o.columns or M.DEFAULT_COLUMNS, lines = o.lines or M.DEFAULT_LINES,
                       pending = {}, drawn = 0, finished = 0, failed = 0, running = 0, agg_deltas = 0,
                       phase = "planning" }, Live)
  elseif mode == "plain" then
    r = setmetatable({ total = 0 }, Plain)
  elseif mode == "quiet" then
    -- quiet keeps what the user must act on: errors, and warnings
    r = { event = function(self, name, data)
            if name == "warning" then self.out:write(M.warning_line(data), "\n") end
          end,
          summary = function() end }
  else
    error("owl.cli.progress: mode must be live, plain or quiet, got " .. tostring(mode), 2)
  end
  r.out, r.clock, r.started = out, clock, clock()
  r.start = r.start or function() end
  r.stop = r.stop or function() end
  r.on_event = function(name, data) r:event(name, type(data) == "table" and data or {}) end
  return r
end

return M
