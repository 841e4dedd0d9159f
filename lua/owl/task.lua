-- owl.task: tasks and the driver that resumes them.
--
-- C never yields (LuaJIT and 5.1 have no lua_yieldk): the core reports
-- transfers that have news (new bytes of a stream, or the end), and this
-- module resumes whichever task waits for each. A task is a coroutine owl
-- created with spawn. Code running in one yields while its transfer is in
-- flight or while it sleeps; code running anywhere else (the main thread, a
-- coroutine owl did not start) drives the loops itself until it is done,
-- resuming every other task whose wait ends meanwhile. The same functions
-- therefore block in a script and yield in a task.
--
-- On Lua 5.1 a yield cannot cross pcall, and on no Lua can it cross a C
-- function such as table.sort: a call there raises an owl error saying so
-- before anything is awaited, and the task can go on.
local core = require("owl.core")
local errors = require("owl.errors")

local M = {}

local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end

local WAIT = {} -- what a task yields to the driver; anything else is misuse
local MAIN = {} -- the waiter recorded for a transfer awaited outside any task

local by_coroutine = setmetatable({}, { __mode = "k" }) -- coroutine -> task

-- transfer -> { who = task or MAIN, loop = loop, news = bool } for every
-- awaited transfer. A task also records the one transfer it waits for
-- (task.waiting_for): a wake-up for any other (a wait left behind by a
-- yield that failed) is ignored, never taken for the end of the current one.
local waiting = {}
local finished = setmetatable({}, { __mode = "k" }) -- done before anyone waited
local woken = setmetatable({}, { __mode = "k" })    -- news for a MAIN waiter
local loop_waits = {} -- loop -> number of transfers awaited on it
local ready = {}      -- tasks to resume, in order

-- Host mode: set once a host drives owl (owl.step, owl.uv). A task that
-- then fails with nobody to tell (no waiter, no on_done, no parent) goes
-- to the error handler. deadline (core.now() seconds) is set while
-- owl.step runs: past it, no more tasks are resumed or started.
local hosted = false
local deadline = nil
-- Each check of the deadline also measures the unit of work since the
-- last check (a resume, a spawn, the stretch between two checkpoints): a
-- step overruns its deadline by at most one unit, so the largest unit of
-- a step is what the next steps' reserve must cover (owl.step).
local unit_mark, unit_max = 0, 0
local function over_budget()
  if deadline == nil then return false end
  local now = core.now()
  if now - unit_mark > unit_max then unit_max = now - unit_mark end
  unit_mark = now
  return now >= deadline
end

-- The default handler: a failed task's error and traceback on stderr.
local function report_to_stderr(err, task)
  if task then
    io.stderr:write("owl: a task failed and nobody waited for it: ", task.traceback or tostring(err), "\n")
  else
    io.stderr:write("owl: ", tostring(err), "\n")
  end
end
local on_error = report_to_stderr

-- Timers (owl.sleep), kept sorted by deadline: { at = seconds, task = task
-- or MAIN, fired = bool }. A run has a handful: a sorted array is enough.
local timers = {}

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

-- A handler must not break the driver: what it raises goes to on_error.
local function call_handler(fn, task)
  local ok, err = pcall(fn, task)
  if not ok then
    local ok2, err2 = pcall(on_error, err, task)
    if not ok2 then report_to_stderr(err2, task) end
  end
end

local function wake_waiters(task)
  local unheard = #task.waiters == 0 and task.on_done_fns == nil
  for _, w in ipairs(task.waiters) do ready[#ready + 1] = w end
  task.waiters = {}
  local fns = task.on_done_fns
  task.on_done_fns = nil
  if fns then
    for i = 1, #fns do call_handler(fns[i], task) end
  end
  if unheard and hosted and task.status == "failed" and not task.cancelled and task.parent == nil then
    call_handler(function(t) return on_error(t.error, t) end, task)
  end
end

-- Resumes one task and records how it ended, if it did.
local resumes = 0 -- how many so far: owl.step tells whether it moved a task
local function resume(task)
  resumes = resumes + 1
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
    wake_waiters(task)
  elseif not r[1] or r[2] ~= WAIT then
    -- A task that yields on its own would be resumed by owl at a time it
    -- does not expect: refuse it loudly rather than corrupt it.
    task.status = "failed"
    task.error = "owl.task: a task yielded outside owl (use owl.spawn tasks only for owl waits)"
    wake_waiters(task)
  end
end

-- Resumes every ready task that can be resumed now, in order. A task that
-- is not suspended (it is up the stack of the code driving now) is kept for
-- a later flush. Resumed tasks may make more tasks ready, or flush again
-- themselves: each pass takes the queue as it stands.
-- Under owl.step's budget it stops once the deadline has passed and keeps
-- the rest, in order, for the next step.
flush = function(first_free)
  local deferred = {}
  while #ready > 0 do
    local batch = ready
    ready = {}
    for i = 1, #batch do
      local task = batch[i]
      if not first_free and over_budget() then
        for j = i, #batch do deferred[#deferred + 1] = batch[j] end
        for j = 1, #ready do deferred[#deferred + 1] = ready[j] end
        ready = {}
        break
      end
      if coroutine.status(task.co) == "suspended" then
        first_free = nil
        resume(task)
      else
        deferred[#deferred + 1] = task
      end
    end
  end
  for i = 1, #deferred do ready[#ready + 1] = deferred[i] end
end

-- owl.spawn(fn, ...): starts fn in a new task, runs it until it first waits,
-- and returns the task. A task spawned inside another is its child: it is
-- cancelled with it.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("owl.spawn: expected a function, got " .. type(fn), 2) end
  local args = pack(...)
  local parent = M.current()
  local task = setmetatable({ status = "running", waiters = {}, children = {}, parent = parent }, Task)
  task.co = coroutine.create(function() return fn(unpack(args, 1, args.n)) end)
  by_coroutine[task.co] = task
  if parent then
    parent.children[#parent.children + 1] = task
    task.cancelled = parent.cancelled
  end
  if over_budget() then
    -- owl.step's budget is spent (a fan-out of a thousand spawns): the
    -- task starts at a later step
    ready[#ready + 1] = task
    return task
  end
  resume(task)
  flush()
  return task
end

-- ------------------------------------------------------------------ timers

local function add_timer(at, who)
  local timer = { at = at, who = who }
  local i = #timers
  while i > 0 and timers[i].at > at do i = i - 1 end
  table.insert(timers, i + 1, timer)
  return timer
end

local function remove_timer(timer)
  for i = 1, #timers do
    if timers[i] == timer then
      table.remove(timers, i)
      return
    end
  end
end

-- Fires every timer that is due: its task becomes ready.
local function fire_timers()
  local now = core.now()
  while timers[1] and timers[1].at <= now do
    local timer = table.remove(timers, 1)
    timer.fired = true
    if timer.who ~= MAIN then
      timer.who.sleeping = nil
      ready[#ready + 1] = timer.who
    end
  end
end

-- Milliseconds until the next timer is due (0 when one is), or nil for none.
function M.next_timer_ms()
  if not timers[1] then return nil end
  return math.max(0, math.ceil((timers[1].at - core.now()) * 1000))
end

-- M.pending() -> { waits, timers, ready, tasks }: what owl's task layer
-- still holds: transfers a task (or a blocking caller) waits for, owl.sleep
-- timers, tasks ready to resume, and tasks not ended that something can
-- still reach (a dropped one that nothing can resume is collected and not
-- counted). All 0 when nothing is left to do: a host loop, or a spec
-- proving nothing leaked.
function M.pending()
  local waits = 0
  for _ in pairs(waiting) do waits = waits + 1 end
  local tasks, seen = 0, {}
  for _, task in pairs(by_coroutine) do
    if task.status == "running" and not seen[task] then
      seen[task] = true
      tasks = tasks + 1
    end
  end
  return { waits = waits, timers = #timers, ready = #ready, tasks = tasks }
end

-- ------------------------------------------------------------------ delivery

-- Hands one reported transfer to whoever waits for it: a finished one ends
-- the wait; news of a running one (a stream's bytes) ends only a wait that
-- asked for news.
local function deliver(t)
  local done = t:state() == "done"
  local w = waiting[t]
  if w == nil then
    if done then finished[t] = true end
    return
  end
  if not done and not w.news then return end
  waiting[t] = nil
  local n = loop_waits[w.loop] - 1
  loop_waits[w.loop] = n > 0 and n or nil
  if w.who == MAIN then
    if done then finished[t] = true else woken[t] = true end
  elseif w.who.waiting_for == t then
    w.who.waiting_for = nil
    ready[#ready + 1] = w.who
  end
  -- else: a stale wait (its yield failed and the task went on); dropped
end

-- Hands transfers that a loop reported to their waiters, and fires due
-- timers. A host loop that drives loop:action() itself passes its results
-- here (and what loop:close() returns), and calls it with an empty array
-- when owl.next_timer_ms() has passed.
function M.dispatch(_, reported)
  for i = 1, #reported do deliver(reported[i]) end
  fire_timers()
  flush()
end

-- A loop closed under its waiters: the core has marked their transfers
-- cancelled; wake every waiter so it reads that, and forget the loop.
local function release_closed(loop)
  local mine = {}
  for t, w in pairs(waiting) do
    if w.loop == loop then mine[#mine + 1] = t end
  end
  for i = 1, #mine do
    local w = waiting[mine[i]]
    w.news = true -- a closed loop's transfer will never report again
    deliver(mine[i])
  end
  loop_waits[loop] = nil
  fire_timers()
  flush()
end

-- The wait for one driver turn: timeout_ms, shortened to the next timer.
local function turn_ms(timeout_ms)
  local t = M.next_timer_ms()
  if t and (timeout_ms < 0 or t < timeout_ms) then return t end
  return timeout_ms
end

-- ------------------------------------------------------------------ hosts

-- Every loop owl has awaited a transfer on (weak: a dropped loop goes).
local known_loops = setmetatable({}, { __mode = "k" })

-- The loops a host should drive now: open ones with a waiter or pending
-- work.
function M.loops()
  local out = {}
  for loop in pairs(known_loops) do
    if loop:is_closed() then
      if loop_waits[loop] then out[#out + 1] = loop end
    elseif loop_waits[loop] then
      out[#out + 1] = loop
    else
      local q, r = loop:pending()
      if q + r > 0 then out[#out + 1] = loop end
    end
  end
  return out
end

-- Whether tasks wait to be resumed (a budget left them for later).
function M.has_ready()
  return #ready > 0
end

function M.set_hosted()
  hosted = true
end

-- owl.on_task_error(fn): fn(err, task) is called for a task that failed
-- while a host drives owl and that nobody hears of (no waiter, no on_done,
-- no parent). nil restores the default, which writes to stderr. Returns
-- the previous handler.
function M.on_task_error(fn)
  if fn ~= nil and type(fn) ~= "function" then
    error("owl.on_task_error: expected a function or nil, got " .. type(fn), 2)
  end
  local old = on_error
  on_error = fn or report_to_stderr
  return old
end

-- Sends err (and the task, if any) to the error handler: for hosts whose
-- callbacks have nobody to return an error to.
function M.report_error(err, task)
  call_handler(function(t) return on_error(err, t) end, task)
end

-- Hands reported transfers to their waiters without resuming anyone: a
-- host's socket callback does this, and resumes later within its budget.
function M.deliver(reported)
  for i = 1, #reported do deliver(reported[i]) end
end

-- Resumes ready tasks and fires due timers until budget_ms has passed; the
-- rest waits for the next call. For hosts (owl.uv).
function M.resume_ready(budget_ms)
  hosted = true
  local outer = deadline
  deadline = core.now() + budget_ms / 1000
  fire_timers()
  local ok, err = pcall(flush)
  deadline = outer
  if not ok then error(err, 0) end
end

-- owl.step(budget_ms): one non-blocking turn over every loop owl drives:
-- acts on ready sockets, resumes tasks, fires timers and starts queued
-- transfers until budget_ms has passed (at least one thing moves); the
-- rest waits for the next call. For a host's frame loop.
--
-- The loops go first, with at most half the budget: their turn (a poll
-- over every socket, at least one socket acted on and one queued transfer
-- started, so that transfers never starve) costs what it costs, and is
-- known once done. Tasks then get what is left, less a reserve for the
-- overrun: a task runs to its next wait or checkpoint, past the deadline
-- by up to one unit of work (what runs between two checks of the
-- deadline). The reserve is learnt: the largest recent unit (one that no
-- reserve could absorb left out), decaying, at least a tenth of the
-- budget and at most half of it. Learning the overrun itself, as before,
-- saw only the part of a unit past the deadline, by chance small or large:
-- the unit is what the next deadline must leave room for. A step that could
-- resume no ready task makes the next one resume one whatever it costs,
-- so that tasks never starve either.
local IO_SHARE = 0.5        -- of the budget, at most, for the loops' socket actions
local RESERVE_MIN = 0.1     -- of the budget, the least kept for the overrun
local RESERVE_MAX = 0.5     -- of the budget, the most
local RESERVE_DECAY = 0.95  -- per step: an old unit weighs less
local overrun = 0           -- seconds: the decaying largest unit, the overrun to expect
local starved = false

function M.host_step(budget_ms)
  if type(budget_ms) ~= "number" or not (budget_ms >= 0 and budget_ms <= 86400000) then
    error("owl.step: budget_ms must be a number from 0 to 86400000, got " .. tostring(budget_ms), 2)
  end
  hosted = true
  local start = core.now()
  local budget = budget_ms / 1000
  local stop = start + budget
  local outer = deadline
  -- the whole budget meanwhile: a closed loop's waiters, released below,
  -- are resumed within it too
  deadline = stop
  local ok, err = pcall(function()
    local loops = M.loops()
    fire_timers()
    for i = 1, #loops do
      local loop = loops[i]
      if loop:is_closed() then
        release_closed(loop)
      else
        local left = math.min(stop - core.now(), IO_SHARE * budget) * 1000
        M.deliver(loop:step(0, left > 0 and left or 0))
      end
    end
    fire_timers()
    local reserve = math.min(math.max(overrun, RESERVE_MIN * budget), RESERVE_MAX * budget)
    deadline = stop - reserve
    local waiting_tasks = #ready > 0
    local before = resumes
    unit_mark, unit_max = core.now(), 0
    flush(starved)
    local moved = resumes > before
    starved = waiting_tasks and not moved
    if moved then
      over_budget() -- the last unit, when the queue ran dry before the deadline
      -- a unit longer than the most a reserve may be (a big body encoded)
      -- would only starve the steps after it: left out
      overrun = overrun * RESERVE_DECAY
      if unit_max > overrun and unit_max <= RESERVE_MAX * budget then overrun = unit_max end
    end
  end)
  deadline = outer
  if not ok then error(err, 0) end
end

-- One turn of the driver: wait at most timeout_ms on loop, then resume.
function M.step(loop, timeout_ms)
  if loop:is_closed() then return release_closed(loop) end
  M.dispatch(loop, loop:step(turn_ms(timeout_ms)))
end

-- Only timers are pending: sleep until the next is due, then fire it.
local function idle_step()
  core.sleep((M.next_timer_ms() or 0) / 1000)
  fire_timers()
  flush()
end

-- ------------------------------------------------------------------ waiting

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

-- task.checkpoint(): a place where a long piece of Lua work (a thousand
-- subtasks validated, spawned or rendered) may pause. While a host's
-- budget runs (owl.step, owl.uv) and is spent, the running task yields and
-- goes back to the ready queue, resumed by a later step: no frame waits for
-- the whole of it. Anywhere else (no budget, no task, no yield possible
-- here) it returns at once, and costs one comparison when no host drives.
function M.checkpoint()
  if not over_budget() then return end
  local task = M.current()
  if task == nil or not yieldable() then return end
  ready[#ready + 1] = task
  coroutine.yield(WAIT)
end

local CANNOT_YIELD = "owl: cannot wait for a call here: this task is inside pcall or a C function, "
  .. "and a yield cannot cross it on " .. (IS_JIT and "LuaJIT" or _VERSION)
  .. ". Use the nil, err returns instead of pcall: owl's calls do not raise on failure"
  .. " (or owl.pcall, which owl can wait inside)."

-- Drives every loop that has a waiter, and the timers, until done() is
-- true. Blocking: for code outside any task.
local function drive_until(done)
  while not done() do
    fire_timers()
    flush()
    if done() then break end
    local loops, n = {}, 0
    for loop in pairs(loop_waits) do n = n + 1; loops[n] = loop end
    if n == 0 then
      if not timers[1] then
        error("owl.task: deadlock: waiting for a task that waits for nothing owl drives", 3)
      end
      idle_step()
    else
      -- One loop (the usual case): block in it. Several: take turns.
      for i = 1, n do M.step(loops[i], n == 1 and -1 or 10) end -- a closed one releases its waiters
    end
  end
end

-- M.await(loop, t [, news]): waits until transfer t (started on loop) has
-- finished, or, with news, until it has news (a stream's new bytes) or has
-- finished. A cancelled task cancels t first: the wait then ends at once.
function M.await(loop, t, news)
  if finished[t] then
    finished[t] = nil
    return
  end
  local task = M.current()
  if task and not yieldable() then error(CANNOT_YIELD, 0) end
  if task and task.cancelled then t:cancel() end
  waiting[t] = { who = task or MAIN, loop = loop, news = news or false }
  loop_waits[loop] = (loop_waits[loop] or 0) + 1
  known_loops[loop] = true
  if task then
    task.waiting_for = t
    -- resumed only by deliver(t), or by a closed loop's release
    coroutine.yield(WAIT)
    return
  end
  drive_until(function() return finished[t] or woken[t] end)
  woken[t], finished[t] = nil, nil
end

-- owl.sleep(seconds): a timer, never a busy wait. Yields in a task; blocks
-- (driving every loop meanwhile) outside one. A cancelled task does not
-- sleep; cancelling a sleeping one wakes it.
function M.sleep(seconds)
  if type(seconds) ~= "number" or not (seconds >= 0 and seconds <= 1e9) then
    error("owl.sleep: seconds must be a number from 0 to 1e9, got " .. tostring(seconds), 2)
  end
  local task = M.current()
  if task and not yieldable() then error(CANNOT_YIELD, 0) end
  if task and task.cancelled then return end
  local timer = add_timer(core.now() + seconds, task or MAIN)
  if task then
    task.sleeping = timer
    coroutine.yield(WAIT)
    return
  end
  drive_until(function() return timer.fired end)
end

-- owl.pcall(fn, ...): pcall that owl can wait inside, on every Lua. In a
-- task, fn runs in a coroutine of its own that counts as the same task:
-- when fn waits (owl yields to the driver), the yield is passed up, and fn
-- is resumed when the driver resumes the task. Outside a task, plain pcall.
-- A yield that is not owl's fails the call (owl cannot resume it rightly).
function M.pcall(fn, ...)
  local task = M.current()
  if not task then return pcall(fn, ...) end
  if not yieldable() then error(CANNOT_YIELD, 0) end
  local co = coroutine.create(fn)
  by_coroutine[co] = task
  local r = pack(coroutine.resume(co, ...))
  while coroutine.status(co) == "suspended" do
    if r[2] ~= WAIT then
      by_coroutine[co] = nil
      return false, "owl.pcall: the function yielded outside owl (only owl's waits can pass through)"
    end
    coroutine.yield(WAIT)
    r = pack(coroutine.resume(co))
  end
  by_coroutine[co] = nil
  if r[1] then return true, unpack(r, 2, r.n) end
  return false, r[2]
end

-- ------------------------------------------------------------------ tasks

local function cancelled_error()
  return errors.new("cancelled", "the task was cancelled")
end

-- task:wait(): fn's results, or nil and the value it raised, or nil and a
-- `cancelled` error when the task was cancelled before it ended.
function Task:wait()
  if self.status == "running" then
    local me = M.current()
    if me == self then error("owl.task: a task cannot wait for itself", 2) end
    if me then
      if not yieldable() then error(CANNOT_YIELD, 0) end
      self.waiters[#self.waiters + 1] = me
      coroutine.yield(WAIT)
    else
      local target = self
      drive_until(function() return target.status ~= "running" end)
    end
  end
  if self.cancelled then
    local err = cancelled_error()
    if self.status == "failed" then err.cause = self.error end
    return nil, err
  end
  if self.status == "failed" then return nil, self.error end
  return unpack(self.results, 1, self.results.n)
end

function Task:done()
  return self.status ~= "running"
end

-- task:on_done(fn): fn(task) runs once the task has ended (done, failed or
-- cancelled), at once if it already has; read the outcome with task:wait(),
-- which no longer waits then. What fn raises goes to owl.on_task_error.
function Task:on_done(fn)
  if type(fn) ~= "function" then error("task:on_done: expected a function, got " .. type(fn), 2) end
  if self.status ~= "running" then
    call_handler(fn, self)
  else
    local fns = self.on_done_fns or {}
    fns[#fns + 1] = fn
    self.on_done_fns = fns
  end
  return self
end

-- task:cancel(): ends the task's wait (its transfer fails `cancelled`, its
-- sleep ends), cancels every task it spawned, and makes every later wait in
-- it end at once; its own wait returns nil and a `cancelled` error. Returns
-- false when the task had already ended.
function Task:cancel()
  if self.status ~= "running" or self.cancelled then return self.status == "running" end
  self.cancelled = true
  for _, child in ipairs(self.children) do child:cancel() end
  if self.waiting_for then self.waiting_for:cancel() end
  if self.sleeping then
    remove_timer(self.sleeping)
    self.sleeping = nil
    ready[#ready + 1] = self
  end
  if self.acquiring then
    self.acquiring.semaphore:forget(self.acquiring)
    ready[#ready + 1] = self
  end
  -- the cancelled transfer is reported by its loop's next turn; a task
  -- that only waits for other tasks wakes when they end
  if M.current() == nil then flush() end
  return true
end

-- ------------------------------------------------------------------ semaphores

-- task.semaphore(n): at most n holders at once; the others wait their turn
-- in order. acquire yields in a task and blocks outside one; a cancelled
-- task's acquire returns false at once.
local Semaphore = {}
Semaphore.__index = Semaphore

function M.semaphore(n)
  if type(n) ~= "number" or not (n >= 1 and n <= 2^53 - 1) or n ~= math.floor(n) then
    error("owl.task: a semaphore needs a positive integer, got " .. tostring(n), 2)
  end
  return setmetatable({ free = n, queue = {} }, Semaphore)
end

function Semaphore:acquire()
  local task = M.current()
  -- checked first: a holder that then could not wait would keep its slot
  if task and not yieldable() then error(CANNOT_YIELD, 0) end
  if task and task.cancelled then return false end
  if self.free > 0 and #self.queue == 0 then
    self.free = self.free - 1
    return true
  end
  local entry = { task = task or MAIN, semaphore = self }
  self.queue[#self.queue + 1] = entry
  if not task then
    -- outside a task: drive the loops until a holder releases its slot
    drive_until(function() return entry.granted end)
    return true
  end
  task.acquiring = entry
  coroutine.yield(WAIT)
  task.acquiring = nil
  return entry.granted == true
end

-- A queued entry whose task was cancelled leaves the queue ungranted.
function Semaphore:forget(entry)
  for i = 1, #self.queue do
    if self.queue[i] == entry then
      table.remove(self.queue, i)
      return
    end
  end
end

function Semaphore:release()
  local entry = table.remove(self.queue, 1)
  if entry then
    entry.granted = true -- the slot passes straight to the next in line
    if entry.task ~= MAIN then
      ready[#ready + 1] = entry.task
      if M.current() == nil then flush() end
    end
  else
    self.free = self.free + 1
  end
end

return M
