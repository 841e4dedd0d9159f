-- owl.checks.command: the check that runs a command on the solution in a
-- fresh temporary folder (owl.checks.process), and the words its report is
-- made of. owl.checks.syntax and owl.checks.coding run their commands here.
local process = require("owl.checks.process")
local text = require("owl.text")

local M = {}

local function is_count(v)
  return type(v) == "number" and v >= 1 and v <= 2^53 - 1 and v == math.floor(v)
end

-- The options every running check shares, checked when the check is made:
-- a bad one raises then, never in the middle of a run.
function M.check_run_options(opts, who)
  if opts.timeout ~= nil and not (type(opts.timeout) == "number" and opts.timeout > 0 and opts.timeout <= 1e6) then
    error(who .. ": timeout must be a number of seconds above 0, got " .. tostring(opts.timeout), 3)
  end
  if opts.max_output ~= nil and not is_count(opts.max_output) then
    error(who .. ": max_output must be a positive integer, got " .. tostring(opts.max_output), 3)
  end
end

-- What a finished command says about itself, in words: the first line
-- names the command and how it ended, the output follows.
function M.describe(command, r, timeout)
  local head
  if r.timed_out then
    head = string.format("`%s` was killed at the time limit of %g s", command, timeout or process.DEFAULT_TIMEOUT)
  elseif r.status == 0 then
    head = "`" .. command .. "` passed (exit status 0)"
  elseif r.status == 127 then
    head = "`" .. command .. "` exited with status 127 (command not found)"
  else
    head = "`" .. command .. "` exited with status " .. tostring(r.status)
  end
  local out = text.rtrim(r.output)
  if out == "" then return head .. "; no output" end
  if r.cut then out = out .. "\n[output cut at " .. #r.output .. " bytes]" end
  return head .. "; output:\n" .. out
end

-- Runs command on the solution (written to `file`, with `files` beside it)
-- and returns ok (exit status 0 within the time limit), the report, and
-- the process result. A cancelled task raises its `cancelled` error.
function M.run_on(final, opts)
  if type(final) ~= "string" then
    error("owl.checks: the solution must be a string, got " .. type(final), 0)
  end
  local files = {}
  for k, v in pairs(opts.files or {}) do files[k] = v end
  files[opts.file] = final
  local r, err = process.run{ command = opts.command, files = files, timeout = opts.timeout,
                              max_output = opts.max_output }
  if not r then error(err, 0) end
  return r.status == 0 and not r.timed_out, M.describe(opts.label or opts.command, r, opts.timeout), r
end

-- owl.checks.command{ command = "sh command line", file = "solution.txt",
--   files = { [name] = text }, timeout = 60, max_output = 65536 }
-- -> check. The solution is written to `file` in a fresh temporary folder
-- (with `files` beside it), the command runs there (see owl.checks.process),
-- and the check passes when it exits 0 within the time limit.
function M.new(opts)
  if type(opts) ~= "table" then error("owl.checks.command: expected a table of options, got " .. type(opts), 2) end
  local known = { command = true, file = true, files = true, timeout = true, max_output = true }
  for k in pairs(opts) do
    if not known[k] then error("owl.checks.command: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if type(opts.command) ~= "string" or not opts.command:find("%S") then
    error("owl.checks.command: command must be a non-empty string (a sh command line)", 2)
  end
  if opts.file ~= nil and type(opts.file) ~= "string" then
    error("owl.checks.command: file must be a string, got " .. type(opts.file), 2)
  end
  if opts.files ~= nil and type(opts.files) ~= "table" then
    error("owl.checks.command: files must be a table of name = text, got " .. type(opts.files), 2)
  end
  for name, data in pairs(opts.files or {}) do
    if type(name) ~= "string" or type(data) ~= "string" then
      error("owl.checks.command: files must map names to strings", 2)
    end
  end
  M.check_run_options(opts, "owl.checks.command")
  local run_opts = { command = opts.command, file = opts.file or "solution.txt", files = opts.files,
                     timeout = opts.timeout, max_output = opts.max_output }
  return function(final)
    local ok, report = M.run_on(final, run_opts)
    return ok, report
  end
end

return M
