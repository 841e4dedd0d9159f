-- owl.uv: drives owl from a libuv loop: Neovim's vim.uv (vim.loop before
-- 0.10) or luv. The host keeps running its own loop; owl only adds
--
--   * one poll handle per socket libcurl wants watched, kept in step with
--     loop:changes() (never a diff of the whole set),
--   * one timer, armed for libcurl's next timeout or owl's next timer, or
--     for "now" while work is left over from a turn,
--   * one prepare handle (unreferenced: it never keeps the loop alive) that
--     runs before libuv blocks: it resumes ready tasks, starts queued
--     transfers and re-arms the timer, within a budget.
--
-- Budgets keep the host responsive: each turn of the host's loop spends at
-- most about budget_ms resuming tasks and starting transfers, and about
-- budget_ms more acting on ready sockets. What is left waits for the next
-- turn (poll handles are level-triggered, so a skipped socket reports
-- again), and the timer is armed at 0 so that next turn comes at once.
local task = require("owl.task")
local client = require("owl.client")
local core = require("owl.core")

local M = {}

M.DEFAULT_BUDGET_MS = 3

local Handle = {}
Handle.__index = Handle
Handle.__name = "owl.uv handle"

local function check_uv(uv)
  if type(uv) ~= "table" or type(uv.new_timer) ~= "function" or type(uv.new_prepare) ~= "function"
      or type(uv.new_socket_poll or uv.new_poll) ~= "function" then
    error("owl.uv.attach: expected a libuv binding (vim.uv, vim.loop or require('luv')), got "
      .. type(uv), 3)
  end
end

-- Reports an error raised inside a libuv callback: libuv has no caller to
-- return it to, so it goes where a failed task's error goes.
local function report(err)
  task.report_error("owl.uv: " .. tostring(err))
end

-- The watchers of one owl loop: fd -> poll handle.
local function watch(self, loop)
  local w = self.loops[loop]
  if w then return w end
  w = {}
  self.loops[loop] = w
  -- what happened before we looked is in the snapshot; changes start now
  loop:changes()
  for fd, ev in pairs(loop:sockets()) do
    if ev ~= "" then self:poll(loop, w, fd, ev) end
  end
  return w
end

function Handle:poll(loop, w, fd, ev)
  local p = w[fd]
  if p == nil then
    p = (self.uv.new_socket_poll or self.uv.new_poll)(fd)
    w[fd] = p
  end
  local handle = self
  p:start(ev, function(err, events)
    handle:on_ready(loop, fd, err and "e" or events)
  end)
end

local function drop(w, fd)
  local p = w[fd]
  if p == nil then return end -- a remove for a socket we never watched
  w[fd] = nil
  p:stop()
  if not p:is_closing() then p:close() end
end

-- Applies the loop's socket changes to the poll handles.
function Handle:sync(loop)
  local w = self.loops[loop]
  if loop:is_closed() then
    for fd in pairs(w) do drop(w, fd) end
    self.loops[loop] = nil
    return
  end
  local changes = loop:changes()
  for i = 1, #changes do
    local c = changes[i]
    if c[2] == "remove" then drop(w, c[1]) else self:poll(loop, w, c[1], c[2]) end
  end
end

-- A socket is ready: let libcurl act on it, unless this turn's budget for
-- sockets is spent (then it reports again next turn).
function Handle:on_ready(loop, fd, events)
  if self.detached or loop:is_closed() then return end
  local now = core.now()
  if self.io_deadline == nil then
    self.io_deadline = now + self.budget / 1000
  elseif now >= self.io_deadline then
    self.left_over = true
    return
  end
  local ok, err = pcall(function()
    task.deliver(loop:action(fd, events))
    self:sync(loop)
  end)
  if not ok then report(err) end
end

-- libcurl's timer is due on a loop: act on it.
function Handle:on_timer()
  if self.detached then return end
  local ok, err = pcall(function()
    for loop in pairs(self.loops) do
      if not loop:is_closed() and loop:timeout() == 0 then
        task.deliver(loop:action(-1))
        self:sync(loop)
      end
    end
  end)
  if not ok then report(err) end
end

-- Once a turn, before libuv blocks: resume what is ready, start queued
-- transfers, watch what libcurl now wants and arm the timer.
function Handle:pump()
  if self.detached then return end
  local ok, err = pcall(function()
    local start = core.now()
    local deadline = start + self.budget / 1000
    self.io_deadline = nil
    local left_over = self.left_over
    self.left_over = false
    task.resume_ready(self.budget)
    local loops = task.loops()
    for i = 1, #loops do watch(self, loops[i]) end
    for loop in pairs(self.loops) do
      if loop:is_closed() then
        task.step(loop, 0) -- wakes its waiters with a cancelled error
      else
        local left = (deadline - core.now()) * 1000
        local reported, more = loop:feed(left > 0 and left or 0)
        task.deliver(reported)
        if more or #reported > 0 then left_over = true end
      end
      self:sync(loop)
    end
    if task.has_ready() then left_over = true end
    self:arm(left_over)
  end)
  if not ok then report(err) end
end

function Handle:arm(now)
  local due = now and 0 or task.next_timer_ms()
  for loop in pairs(self.loops) do
    local t = loop:timeout()
    if t >= 0 and (due == nil or t < due) then due = t end
  end
  if due == nil then
    self.timer:stop()
  else
    self.timer:start(due, 0, function() self:on_timer() end)
  end
end

-- handle:detach(): stops driving owl and closes every libuv handle owl.uv
-- made. Transfers in flight stay on their loops, for another driver.
function Handle:detach()
  if self.detached then return end
  self.detached = true
  for _, w in pairs(self.loops) do
    for fd in pairs(w) do drop(w, fd) end
  end
  self.loops = {}
  for _, h in ipairs({ self.timer, self.prepare }) do
    h:stop()
    if not h:is_closing() then h:close() end
  end
end

-- owl.uv.attach(uv [, opts]) -> handle: drives every owl loop from uv's
-- loop. opts.budget_ms (default 3): the time owl may take per turn of the
-- host loop, for tasks and transfer starts, and as much for sockets.
function M.attach(uv, opts)
  check_uv(uv)
  opts = opts or {}
  if type(opts) ~= "table" then error("owl.uv.attach: opts must be a table, got " .. type(opts), 2) end
  local budget = opts.budget_ms == nil and M.DEFAULT_BUDGET_MS or opts.budget_ms
  if type(budget) ~= "number" or not (budget > 0 and budget <= 1000) then
    error("owl.uv.attach: budget_ms must be a number above 0 and at most 1000, got " .. tostring(budget), 2)
  end
  task.set_hosted()
  local self = setmetatable({ uv = uv, budget = budget, loops = {}, left_over = false }, Handle)
  watch(self, client.default_loop())
  self.timer = uv.new_timer()
  self.prepare = uv.new_prepare()
  self.prepare:start(function() self:pump() end)
  if self.prepare.unref then self.prepare:unref() elseif uv.unref then uv.unref(self.prepare) end
  self:pump()
  return self
end

return M
