-- owl_example: the code behind examples/nvim/plugin/owl_example.lua.
-- :Owl <problem> runs owl's orchestrator-workers flow on Neovim's own
-- loop (owl.nvim), streaming into a scratch buffer: one progress line per
-- worker, then the final answer as it arrives. :OwlStop cancels the run.
--
-- The client: OWL_BASE_URL (owl's mock, or any OpenAI-compatible server)
-- or OpenAI with OPENAI_API_KEY; OWL_MODEL picks the model.
-- luacheck: globals vim
local owl = require("owl")
local onvim = require("owl.nvim")

local M = {}

local job -- the run in progress, if any

local function client()
  return owl.client{
    base_url = os.getenv("OWL_BASE_URL"),
    api_key = os.getenv("OPENAI_API_KEY") or (os.getenv("OWL_BASE_URL") and "sk-mock") or nil,
    model = os.getenv("OWL_MODEL") or "gpt-4o-mini",
  }
end

-- The scratch buffer, in a split of its own.
local function scratch(problem)
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  pcall(vim.api.nvim_buf_set_name, buf, "owl://" .. problem:sub(1, 40))
  return buf
end

function M.run(problem)
  if job and not job:done() then
    vim.notify("owl: a run is in progress (:OwlStop ends it)", vim.log.levels.WARN)
    return
  end
  local buf = scratch(problem)
  local state = { header = { "owl: " .. problem, "" }, workers = {}, names = {}, answer = "" }
  local function render()
    if not vim.api.nvim_buf_is_valid(buf) then return end
    local lines = {}
    for _, l in ipairs(state.header) do lines[#lines + 1] = l end
    for i, name in ipairs(state.names) do
      lines[#lines + 1] = string.format("  [%s] %s", state.workers[i] or " ", name)
    end
    if state.answer ~= "" or state.final then
      lines[#lines + 1] = ""
      for l in ((state.final or state.answer) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    end
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  end
  local redraw = onvim.throttle(render, 50) -- a stream's deltas come far faster than a screen needs
  job = onvim.run(client(), problem, {
    stream = true,
    on_event = function(name, data)
      if name == "plan" then
        state.header[2] = "objective: " .. tostring(data.objective)
        for i, st in ipairs(data.subtasks) do state.names[i] = st.name end
      elseif name == "worker_start" then
        state.workers[data.index] = "~"
      elseif name == "worker_done" then
        state.workers[data.index] = data.ok and "x" or "!"
      elseif name == "aggregate_delta" and data.delta.type == "text" then
        -- a tree aggregation streams each level: show the latest one
        if data.level ~= state.level then state.level, state.answer = data.level, "" end
        state.answer = state.answer .. data.delta.text
      end
      redraw()
    end,
    on_done = function(result, err)
      if result then
        state.final = result.final
        state.header[1] = "owl: done: " .. problem
      else
        state.header[1] = "owl: " .. (err and err.kind == "cancelled" and "stopped" or "failed: " .. tostring(err))
      end
      render()
      vim.g.owl_example_done = true
    end,
  })
end

function M.stop()
  if job and job:cancel() then vim.notify("owl: stopping the run") end
end

return M
