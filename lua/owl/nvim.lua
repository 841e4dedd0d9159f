-- owl.nvim: owl in Neovim, on top of owl.uv.
--
--   local onvim = require("owl.nvim")
--   local job = onvim.run(client, problem, {
--     on_event = function(name, data) ... end, -- runs via vim.schedule
--     on_done = function(result, err) ... end, -- likewise
--   })
--   job:cancel()
--
-- owl runs on Neovim's own libuv loop (owl.uv), so the editor never
-- blocks. Callbacks that may touch the editor run through vim.schedule:
-- owl's own callbacks run inside libuv callbacks, where most of the API
-- (buffers, windows, vim.fn) is off limits. M.throttle coalesces frequent
-- updates (a stream's deltas) into at most one per interval.
-- luacheck: globals vim
local owl = require("owl")
local owl_uv = require("owl.uv")

local M = {}

local handle -- the owl.uv handle, made on first use

-- M.attach([opts]): drives owl from Neovim's loop (once; later calls return
-- the same handle). opts as owl.uv.attach's.
function M.attach(opts)
  if handle == nil or handle.detached then
    handle = owl_uv.attach(vim.uv or vim.loop, opts)
  end
  return handle
end

-- M.detach(): stops driving owl (transfers in flight wait on their loops).
function M.detach()
  if handle then handle:detach() end
  handle = nil
end

-- M.throttle(fn, ms) -> f: f(...) calls fn(...) through vim.schedule at most
-- once every ms milliseconds (default 50); calls in between are merged: the
-- last arguments win, and a trailing call always comes, so the final state
-- is never lost.
function M.throttle(fn, ms)
  ms = ms or 50
  local uv = vim.uv or vim.loop
  local timer, pending_args, last = nil, nil, -math.huge
  local unpack = table.unpack or unpack
  local function fire()
    local args = pending_args
    pending_args = nil
    last = uv.now()
    vim.schedule(function() fn(unpack(args, 1, args.n)) end)
  end
  return function(...)
    pending_args = { n = select("#", ...), ... }
    local wait = last + ms - uv.now()
    if wait <= 0 then
      fire()
    elseif timer == nil then
      timer = uv.new_timer()
      timer:start(wait, 0, function()
        timer:close()
        timer = nil
        if pending_args then fire() end
      end)
    end
  end
end

local Job = {}
Job.__index = Job

-- job:cancel(): ends the run (its calls, its retry waits): on_done then
-- gets nil and a `cancelled` error. False when it had already ended.
function Job:cancel()
  return self.task:cancel()
end

function Job:done()
  return self.task:done()
end

-- M.run(client, problem [, opts]) -> job: owl.run as a job. opts are
-- owl.run's, with on_event (called through vim.schedule) and on_done
-- (result, err), likewise. A run that fails with no on_done is reported
-- by owl.on_task_error (stderr by default: :messages in Neovim).
function M.run(client, problem, opts)
  M.attach()
  local run_opts = {}
  for k, v in pairs(opts or {}) do run_opts[k] = v end
  local on_done, on_event = run_opts.on_done, run_opts.on_event
  run_opts.on_done = nil
  if on_event then
    run_opts.on_event = function(name, data)
      vim.schedule(function() on_event(name, data) end)
    end
  end
  local job = setmetatable({}, Job)
  job.task = owl.spawn(owl.run, client, problem, run_opts)
  if on_done then
    job.task:on_done(function(task)
      local result, err = task:wait()
      vim.schedule(function() on_done(result, err) end)
    end)
  end
  return job
end

return M
