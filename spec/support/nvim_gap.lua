-- luacheck: globals vim
-- spec/support/nvim_gap.lua: run inside `nvim --headless -u NONE` (see
-- spec/nvim_spec.lua). Drives a flow of OWL_WORKERS workers through
-- owl.uv on Neovim's own libuv loop while a 10 ms vim.loop timer ticks, and
-- writes "workers outputs max_gap_ms wall_s [max_owl_callback_ms wall, cpu]"
-- (or "error ...") to OWL_OUT,
-- then quits Neovim.
local root = assert(os.getenv("OWL_ROOT"), "OWL_ROOT")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/jit/?.so;" .. package.cpath
local uv = vim.uv or vim.loop
local out = assert(os.getenv("OWL_OUT"), "OWL_OUT")
local function finish(line)
  local f = assert(io.open(out, "w"))
  f:write(line, "\n")
  f:close()
  vim.schedule(function() vim.cmd("qa!") end)
end
local ok, err = pcall(function()
  local owl = require("owl")
  local core = require("owl.core")
  local n = tonumber(os.getenv("OWL_WORKERS") or "50")
  local client = owl.client{ base_url = os.getenv("OWL_BASE_URL"), model = "gpt-test", api_key = "sk-mock",
    max_retries = 0, headers = { ["x-mock-subtasks"] = tostring(n) } }
  local handle = require("owl.uv").attach(uv)
  -- the longest single stretch inside owl (one libuv callback of owl.uv),
  -- in wall-clock and CPU time: what bounds the editor's stall, apart from
  -- the machine's own preemption
  local cb_wall, cb_cpu = 0, 0
  for _, name in ipairs({ "pump", "on_ready", "on_timer" }) do
    local f = handle[name]
    handle[name] = function(...)
      local w0, c0 = core.now(), os.clock()
      f(...)
      cb_wall = math.max(cb_wall, (core.now() - w0) * 1000)
      cb_cpu = math.max(cb_cpu, (os.clock() - c0) * 1000)
    end
  end
  local last, gap = nil, 0
  local tick = uv.new_timer()
  tick:start(10, 10, function()
    local now = core.now()
    if last then gap = math.max(gap, (now - last) * 1000) end
    last = now
  end)
  local started = core.now()
  if os.getenv("OWL_MODE") == "idle" then
    -- the noise floor: the same timer for 2 s with no work at all
    local stop = uv.new_timer()
    stop:start(2000, 0, function()
      stop:close()
      tick:stop()
      tick:close()
      handle:detach()
      finish(string.format("0 0 %.1f %.2f", gap, core.now() - started))
    end)
    return
  end
  if os.getenv("OWL_MODE") == "curl" then
    -- the way Neovim plugins call HTTP today (plenary.curl): one curl
    -- process per request, its output read through a pipe
    local left = n
    local body = '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}'
    for _ = 1, n do
      local stdout = uv.new_pipe(false)
      local proc
      proc = uv.spawn("curl", { args = { "-sS", "-H", "Content-Type: application/json", "-d", body,
        os.getenv("OWL_BASE_URL") .. "/chat/completions" }, stdio = { nil, stdout, nil } }, function()
        proc:close()
        left = left - 1
        if left == 0 then
          tick:stop()
          tick:close()
          handle:detach()
          finish(string.format("%d %d %.1f %.2f", n, n, gap, core.now() - started))
        end
      end)
      stdout:read_start(function(_, data) if not data then stdout:close() end end)
    end
    return
  end
  owl.spawn(owl.run, client, "Write a tokenizer for arithmetic", { max_workers = n, max_subtasks = n })
    :on_done(function(task)
      local result, rerr = task:wait()
      tick:stop()
      tick:close()
      handle:detach()
      if not result then return finish("error " .. tostring(rerr)) end
      finish(string.format("%d %d %.1f %.2f %.1f %.1f", n, #result.outputs, gap, core.now() - started, cb_wall, cb_cpu))
    end)
end)
if not ok then finish("error " .. tostring(err)) end
