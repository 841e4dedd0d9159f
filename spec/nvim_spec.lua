-- Real headless Neovim (Debian's neovim: LuaJIT, vim.loop) drives owl
-- through owl.uv on its own libuv loop (issue 10 §2): flows of 50, 200 and
-- 1000 workers against the mock finish while a 10 ms vim.loop timer keeps
-- ticking. The largest gap of that timer is printed (bench/RESULTS.md has
-- the table); the bound asserted here is loose, because the suite shares
-- the machine: the issue's goals (20 ms at 200, 30 ms at 1000) are the
-- benchmark's to show, while a gap of a quarter second is the stall
-- owl.uv exists to prevent (a blocking driver stalls for the whole run).
-- Needs build/jit (make build-all).
local mock = require("support.mock")

local have_nvim = mock.run("command -v nvim >/dev/null")

describe("owl in headless Neovim", function()
  if not have_nvim then
    pending("nvim is not installed (Debian: neovim)")
    return
  end
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  local function run_nvim(workers)
    local out = os.tmpname()
    local ok, code, log = mock.run(table.concat({
      "OWL_ROOT=" .. mock.shell_quote(mock.root),
      "OWL_OUT=" .. mock.shell_quote(out),
      "OWL_WORKERS=" .. workers,
      "OWL_BASE_URL=" .. mock.shell_quote(server.url),
      "timeout 120 nvim --headless -u NONE -i NONE -n",
      "-c " .. mock.shell_quote("luafile " .. mock.root .. "/spec/support/nvim_gap.lua"),
    }, " "))
    local f = io.open(out, "r")
    local line = f and f:read("*l")
    if f then f:close() end
    os.remove(out)
    assert(ok, "nvim exited " .. tostring(code) .. ": " .. tostring(log))
    return assert(line, "nvim wrote nothing: " .. tostring(log))
  end

  it("examples/nvim: :Owl streams a run into a scratch buffer with a line per worker", function()
    local ok, code, log = mock.run(table.concat({
      "cd /tmp && OWL_BASE_URL=" .. mock.shell_quote(server.url),
      "timeout 60 nvim --headless -u NONE -i NONE -n",
      "--cmd " .. mock.shell_quote("set rtp+=" .. mock.root .. "," .. mock.root .. "/examples/nvim"),
      "--cmd " .. mock.shell_quote("lua package.cpath = '" .. mock.root .. "/build/jit/?.so;' .. package.cpath"),
      "--cmd 'runtime! plugin/owl_example.lua'",
      "-c 'Owl Write a tokenizer'",
      "-c 'lua vim.wait(20000, function() return vim.g.owl_example_done end, 20)'",
      "-c 'lua io.stdout:write(table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), \"\\n\"), \"\\n\")'",
      "-c 'qa!'",
    }, " "))
    assert(ok, "nvim exited " .. tostring(code) .. ": " .. tostring(log))
    assert.matches("^owl: done: Write a tokenizer\n", log)
    assert.matches("\n  %[x%] part_1\n  %[x%] part_2\n  %[x%] part_3\n", log)
    assert.matches("Snippets, one per subtask", log) -- the mock's final answer echoes its prompt
  end)

  for _, workers in ipairs({ 50, 200, 1000 }) do
    it("runs a " .. workers .. "-worker flow without stalling the editor's timers", function()
      local line = run_nvim(workers)
      local n, outputs, gap = line:match("^(%d+) (%d+) ([%d.]+) ")
      assert(n, line)
      assert.equal(workers, tonumber(outputs))
      io.stderr:write(string.format("\n[nvim] %d workers: largest 10 ms timer gap %s ms\n", workers, gap))
      assert.is_true(tonumber(gap) < 250, "the 10 ms timer stalled " .. gap .. " ms")
    end)
  end
end)
