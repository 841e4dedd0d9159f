-- examples/game_loop.lua: owl inside a fixed 60 Hz frame loop, as a game
-- engine embedding Lua would run it. Each frame calls owl.step(1) once
-- (one millisecond of owl work at most: socket actions, task resumes,
-- transfer starts; the rest waits for the next frame) while a flow of
-- OWL_WORKERS workers (default 1000) runs; the frame then "renders" by
-- sleeping out the rest of its 16.7 ms. At the end it prints the time
-- spent inside owl per frame: p50, p99 and the worst, in wall-clock and
-- in CPU time (a busy machine preempts the process: wall minus CPU is
-- time the process was not running).
--
-- Lua's garbage collector runs where memory is allocated, so by default
-- its steps land inside owl.step. With OWL_GC=host the frame loop owns the
-- collector, as engines often do: it stops the automatic one and runs one
-- step a frame after owl's slot, and that step is reported on its own.
--
--   OWL_BASE_URL=http://127.0.0.1:PORT/v1 [OWL_GC=host] lua examples/game_loop.lua
-- (examples/game_loop.sh starts the mock server and does that.)
local owl = require("owl")
local core = require("owl.core")

local workers = tonumber(os.getenv("OWL_WORKERS") or "1000")
local base_url = os.getenv("OWL_BASE_URL") or error("set OWL_BASE_URL (examples/game_loop.sh starts the mock)")
local client = owl.client{
  base_url = base_url, model = "gpt-test", api_key = "sk-mock",
  headers = { ["x-mock-subtasks"] = tostring(workers) }, -- the mock's plan size
}

local gc_host = os.getenv("OWL_GC") == "host"
if gc_host then collectgarbage("stop") end

local FRAME = 1 / 60
local run = owl.spawn(owl.run, client, "Write a tokenizer for arithmetic",
  { max_workers = workers, max_subtasks = workers })

local wall, cpu, gc = {}, {}, {}
local started = core.now()
local next_frame = started
while not run:done() do
  local t0, c0 = core.now(), os.clock()
  owl.step(1)
  wall[#wall + 1] = (core.now() - t0) * 1000
  cpu[#cpu + 1] = (os.clock() - c0) * 1000
  if gc_host then
    local g0 = os.clock()
    collectgarbage("step", 0)
    gc[#gc + 1] = (os.clock() - g0) * 1000
  end
  next_frame = next_frame + FRAME
  local rest = next_frame - core.now()
  if rest > 0 then core.sleep(rest) else next_frame = core.now() end -- a late frame is dropped, not caught up
end
local result, err = run:wait()
if not result then error("the flow failed: " .. tostring(err)) end

local function pct(xs, p)
  local s = {}
  for i = 1, #xs do s[i] = xs[i] end
  table.sort(s)
  return s[math.min(#s, math.floor(#s * p) + 1)]
end
print(string.format("%s: %d workers, %d outputs, %d frames in %.2f s", _VERSION .. (jit and " (" .. jit.version .. ")" or ""),
  workers, #result.outputs, #wall, core.now() - started))
local function over(xs, ms)
  local n = 0
  for i = 1, #xs do if xs[i] > ms then n = n + 1 end end
  return n
end
print(string.format("ms inside owl per frame  wall: p50 %.3f  p99 %.3f  max %.3f  (%d over 1 ms)",
  pct(wall, 0.5), pct(wall, 0.99), pct(wall, 1), over(wall, 1)))
print(string.format("                         cpu:  p50 %.3f  p99 %.3f  max %.3f  (%d over 1 ms)",
  pct(cpu, 0.5), pct(cpu, 0.99), pct(cpu, 1), over(cpu, 1)))
if gc_host then
  print(string.format("ms in the host's GC step cpu:  p50 %.3f  p99 %.3f  max %.3f", pct(gc, 0.5), pct(gc, 0.99), pct(gc, 1)))
end
