-- owl.task: tasks and the driver that resumes them.
--
-- C never yields (LuaJIT and 5.1 have no lua_yieldk): the core reports
-- finished transfers, and this module resumes whichever task waits for each.
-- A task is a coroutine owl created with spawn. Code running in one yields
-- while its transfer is in flight; code running anywhere else (the main
-- thread, a coroutine owl did not start) drives the loop itself until its
-- transfer is done, resuming every other task whose transfer finishes
-- meanwhile. The same functions therefore block in a script and yield in a
-- task.
--
-- On Lua 5.1 a yield cannot cross pcall, and on no Lua can it cross a C
-- function such as table.sort: a call there raises an owl error saying so
-- before anything is awaited, and the task can go on.
local M = {}

local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end

local WAIT = {} -- what a task yields to the driver; anything else is misuse
local MAIN = {} -- the waiter recorded for a transfer awaited outside any task

local by_coroutine = setmetatable({}, { __mode = "k" }) -- coroutine -> task
-- transfer -> { who = task or MAIN, loop = loop } for every awaited transfer.
-- A task also records the one transfer it waits for (task.waiting_for): a
-- wake-up for any other (a wait left behind by a yield that failed) is
-- ignored, never taken for the end of the current one.
local waiting = {}
local finished = setmetatable({}, { __mode = "k" }) -- transfers done before anyone waited
local loop_waits = {} -- loop -> number of transfers awaited on it
local ready = {}      -- tasks to resume, in order

local Task = {}
Task.__index = Task
Task.__name = "owl.task"

function Task:__tostring()
  return "owl.task (" .. self.status .. ")"
end

-- The task running now, or nil outside owl's tasks.
function M.current()
  local co = coroutine.running()
  return co and by_coroutine[co] or nil
end

local flush

-- Resumes one task and records how it ended, if it did.
local function resume(task)
  local r = pack(coroutine.resume(task.co))
  if coroutine.status(task.co) == "dead" then
    if r[1] then
      task.status = "done"
      task.results = { n = r.n - 1, unpack(r, 2, r.n) }
    else
      task.status = "failed"
      task.error = r[2]
      task.traceback = debug.traceback(task.co, tostring(r[2]))
    end
    for _, w in ipairs(task.waiters) do ready[#ready + 1] = w end
    task.waiters = {}
  elseif not r[1] or r[2] ~= WAIT then
    -- A task that yields on its own would be resumed by owl at a time it
    -- does not expect: refuse it loudly rather than corrupt it.
    task.status = "failed"
    task.error = "owl.task: a task yielded outside owl (use owl.spawn tasks only for owl waits)"
    for _, w in ipairs(task.waiters) do ready[#ready + 1] = w end
    task.waiters = {}
  end
end

-- Resumes every ready task that can be resumed now, in order. A task that
-- is not suspended (it is up the stack of the code driving now) is kept for
-- a later flush. Resumed tasks may make more tasks ready, or flush again
-- themselves: each pass takes the queue as it stands.
flush = function()
  local deferred = {}
  while #ready > 0 do
    local batch = ready
    ready = {}
    for i = 1, #batch do
      local task = batch[i]
      if coroutine.status(task.co) == "suspended" then
        resume(task)
      else
        deferred[#deferred + 1] = task
      end
    end
  end
  for i = 1, #deferred do ready[#ready + 1] = deferred[i] end
end

-- owl.spawn(fn, ...): starts fn in a new task, runs it until it first waits,
-- and returns the task.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("owl.spawn: expected a function, got " .. type(fn), 2) end
  local args = pack(...)
  local task = setmetatable({ status = "running", waiters = {} }, Task)
  task.co = coroutine.create(function() return fn(unpack(args, 1, args.n)) end)
  by_coroutine[task.co] = task
  resume(task)
  flush()
  return task
end

-- Hands one finished transfer to whoever waits for it.
local function deliver(t)
  local w = waiting[t]
  if w == nil then
    finished[t] = true
    return
  end
  waiting[t] = nil
  local n = loop_waits[w.loop] - 1
  loop_waits[w.loop] = n > 0 and n or nil
  if w.who == MAIN then
    finished[t] = true
  elseif w.who.waiting_for == t then
    w.who.waiting_for = nil
    ready[#ready + 1] = w.who
  end
  -- else: a stale wait (its yield failed and the task went on); dropped
end

-- Hands transfers that a loop reported finished to their waiters. A host
-- loop that drives loop:action() itself passes its results here (and what
-- loop:close() returns).
function M.dispatch(_, completed)
  for i = 1, #completed do deliver(completed[i]) end
  flush()
end

-- A loop closed under its waiters: the core has marked their transfers
-- cancelled; wake every waiter so it reads that, and forget the loop.
local function release_closed(loop)
  local mine = {}
  for t, w in pairs(waiting) do
    if w.loop == loop then mine[#mine + 1] = t end
  end
  for i = 1, #mine do deliver(mine[i]) end
  loop_waits[loop] = nil
  flush()
end

-- One turn of the driver: wait at most timeout_ms on loop, then resume.
function M.step(loop, timeout_ms)
  if loop:is_closed() then return release_closed(loop) end
  M.dispatch(loop, loop:step(timeout_ms))
end

local IS_JIT = type(jit) == "table"

-- Whether the running task can yield here. Lua 5.3 and 5.4 say so. On 5.1
-- no yield crosses a C function (pcall, table.sort, a gsub callback); on
-- LuaJIT pcall and xpcall let it through but other C functions do not: the
-- stack tells.
local function yieldable()
  if coroutine.isyieldable then return coroutine.isyieldable() end
  local level = 3
  while true do
    local info = debug.getinfo(level, "Sf")
    if info == nil then return true end
    if info.what == "C" and not (IS_JIT and (info.func == pcall or info.func == xpcall)) then
      return false
    end
    level = level + 1
  end
end

local CANNOT_YIELD = "owl: cannot wait for a call here: this task is inside pcall or a C function, "
  .. "and a yield cannot cross it on " .. (IS_JIT and "LuaJIT" or _VERSION)
  .. ". Use the nil, err returns instead of pcall: owl's calls do not raise on failure."

-- Waits until transfer t (started on loop) has finished.
function M.await(loop, t)
  if finished[t] then
    finished[t] = nil
    return
  end
  local task = M.current()
  if task and not yieldable() then error(CANNOT_YIELD, 0) end
  waiting[t] = { who = task or MAIN, loop = loop }
  loop_waits[loop] = (loop_waits[loop] or 0) + 1
  if task then
    task.waiting_for = t
    -- resumed only by deliver(t), or by a closed loop's release
    coroutine.yield(WAIT)
    return
  end
  while not finished[t] do M.step(loop, -1) end
  finished[t] = nil
end

-- Drives every loop that has a waiter until done() is true. Blocking: for
-- code outside any task.
local function drive_until(done)
  while not done() do
    flush()
    if done() then break end
    local loops, n = {}, 0
    for loop in pairs(loop_waits) do n = n + 1; loops[n] = loop end
    if n == 0 then
      error("owl.task: deadlock: waiting for a task that waits for nothing owl drives", 3)
    end
    -- One loop (the usual case): block in it. Several: take turns.
    for i = 1, n do M.step(loops[i], n == 1 and -1 or 10) end -- a closed one releases its waiters
  end
end

-- task:wait(): fn's results, or nil and the value it raised.
function Task:wait()
  if self.status == "running" then
    local me = M.current()
    if me == self then error("owl.task: a task cannot wait for itself", 2) end
    if me then
      self.waiters[#self.waiters + 1] = me
      coroutine.yield(WAIT)
    else
      local target = self
      drive_until(function() return target.status ~= "running" end)
    end
  end
  if self.status == "failed" then return nil, self.error end
  return unpack(self.results, 1, self.results.n)
end

function Task:done()
  return self.status ~= "running"
end

return M
