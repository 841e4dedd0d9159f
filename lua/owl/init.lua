-- owl: the orchestrator-workers pattern for LLMs, on a C core.
--
--   local owl = require("owl")
--   local client = owl.client{ model = "gpt-4o-mini" }
--   local result, err = owl.run(client, "Write a tokenizer for arithmetic")
--
-- This file only gathers the public names; each concern has its module.
-- owl.core comes first, through the loader that names a build for another
-- Lua instead of failing on one of its symbols.
require("owl.core_loader").load()
local client = require("owl.client")
local task = require("owl.task")
local flow = require("owl.flow")
local tool = require("owl.tool")
local agent = require("owl.agent")

local owl = {
  -- the release this is; rockspec/owl-<version>-1.rockspec installs it
  version = "0.2.0",
  client = client.new,
  run = flow.run,
  tool = tool.new,
  agent = agent.run,
  spawn = task.spawn,
  sleep = task.sleep,
  pcall = task.pcall,
  semaphore = task.semaphore,
  -- milliseconds until owl's next timer (owl.sleep) is due, or nil: a host
  -- loop that drives owl.loop() itself calls owl.dispatch(loop, {}) then
  next_timer_ms = task.next_timer_ms,
  -- { waits, timers, ready, tasks }: what the task layer still holds (all 0
  -- when owl has nothing left to do)
  pending = task.pending,
  -- The loop shared by clients that do not ask for their own. A host loop
  -- (vim.uv, a game's frame tick) may drive it with loop:sockets(),
  -- loop:timeout() and loop:action(), handing what action() returns to
  -- owl.dispatch(loop, completed).
  loop = client.default_loop,
  dispatch = task.dispatch,
  -- owl.step(budget_ms): one non-blocking turn for a host's frame loop
  -- (docs/api.md "Driving owl from a host")
  step = task.host_step,
  -- owl.checkpoint(): where a long loop in a task may pause while a
  -- host's step budget is spent (owl.task.checkpoint)
  checkpoint = task.checkpoint,
  -- owl.on_task_error(fn): who hears of a task that failed while a host
  -- drives owl and nobody waited for it (default: stderr)
  on_task_error = task.on_task_error,
  json = require("owl.json"),
  schema = require("owl.schema"),
  prompts = require("owl.prompts"),
  errors = require("owl.errors"),
  plan_schema = flow.plan_schema,
  -- the stages of owl.run, for flows of one's own: flow.context, flow.plan,
  -- flow.work, flow.replan, flow.aggregate, flow.plan_schema,
  -- flow.dag_plan_schema
  flow = flow,
  -- ready-made checks for owl.run's `check` option
  checks = require("owl.checks"),
}

return owl
