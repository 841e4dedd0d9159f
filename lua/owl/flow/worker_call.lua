-- owl.flow.worker_call: a worker that has tools. Its request runs through
-- owl.agent, each model call of the loop made as the flow makes its calls
-- (the run's response budget, the run's loop, its streaming), counted in
-- the run's worker usage; the loop's events reach the run's on_event as
-- worker_tool_start, worker_tool_done and worker_step. A worker without
-- tools stays one call (owl.flow.workers).
local errors = require("owl.errors")
local agent = require("owl.agent")
local tool = require("owl.tool")

local M = {}

local function is_count(v, min, max)
  return type(v) == "number" and v >= min and v <= max and v == math.floor(v)
end

-- M.check_options(opts, level): owl.run's tool options, checked before
-- any call is paid for (raises naming the option).
function M.check_options(opts, level)
  if opts.tools ~= nil then tool.list(opts.tools, "owl.run: option 'tools'", level + 1) end
  if opts.max_steps ~= nil and not is_count(opts.max_steps, 0, 1e6) then
    error("owl.run: option 'max_steps' must be an integer from 0 to 1000000, got " .. tostring(opts.max_steps),
      level + 1)
  end
  local b = opts.max_tool_result_bytes
  if b ~= nil and not is_count(b, 1, 2^53 - 1) then
    error("owl.run: option 'max_tool_result_bytes' must be a positive integer, got " .. tostring(b), level + 1)
  end
end

-- M.tools(ctx, subtask) -> the subtask's tools (nil or an empty list: none,
-- the worker is one call), or nil and an `invalid` error when tools_for
-- answered something that is not a list of owl.tool.
function M.tools(ctx, subtask)
  local opts = ctx.opts
  local tools = opts.tools
  if opts.tools_for then tools = opts.tools_for(subtask) end
  if tools == nil then return nil end
  local ok, why = pcall(tool.list, tools, "tools_for", 1)
  if not ok then
    return nil, errors.new("invalid", "tools_for for subtask '" .. tostring(subtask.name) .. "' returned no list of "
      .. "owl.tool: " .. tostring(why))
  end
  if #tools == 0 then return nil end
  return tools
end

-- Agent events as the run's: `name` is the subtask's (as in every worker_*
-- event), `tool` the tool's.
local RELAY = { tool_start = "worker_tool_start", tool_done = "worker_tool_done", step_done = "worker_step" }

-- M.run(ctx, index, subtask, request, tools, on_delta) -> the final
-- response (usage summed over the steps, `steps` the transcript), or nil
-- and an error (a model call's, err.partial holding the steps so far; or
-- the final answer's: refused, cut off, no text).
function M.run(ctx, index, subtask, request, tools, on_delta)
  local client = ctx.client
  local stream = ctx.opts.stream and { on_delta = ctx.opts.on_event and on_delta or nil } or nil
  local res, err = agent.run(client, request, {
    tools = tools,
    max_steps = ctx.opts.max_steps,
    max_tool_result_bytes = ctx.opts.max_tool_result_bytes,
    on_event = function(name, data)
      local relay = RELAY[name]
      if not relay then return end
      local d = {}
      for k, v in pairs(data) do d[k] = v end
      d.tool, d.name, d.index = data.name, subtask.name, index
      ctx:event(relay, d)
    end,
    -- each step is journalled (and taken from a journal) like any call
    -- of the run; the tools run again on a resumed run
    call = function(req)
      return ctx:journalled("workers", req, { name = subtask.name, index = index }, function()
        local spec = ctx:spec_of(req)
        local r, e = client:call(function(loop) return loop:request(spec) end, ctx.loop, req, stream,
          ctx.opts.max_retries)
        ctx:count("workers", r)
        return r, e
      end)
    end,
  })
  if not res then return nil, err end
  err = ctx:unusable(res, "the worker")
  if err then return nil, err end
  return res
end

return M
