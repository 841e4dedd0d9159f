-- owl.checks.process: runs a command on files in a fresh temporary folder
-- without blocking owl's loop, for the checks that run model-written code.
--
-- Lua has no way to wait on a child process and a socket at once, and
-- io.popen blocks the whole process (every other task with it) until the
-- command ends. So the command is started in the background, in a session
-- of its own (setsid), and owl polls for the file its wrapper writes when
-- it ends, sleeping on owl's timers between polls (owl.sleep): other tasks
-- and transfers go on meanwhile. The cost is latency: the end is seen up to
-- POLL_MAX seconds late, and each poll opens one file. At the time limit,
-- or when the task is cancelled, the whole process group is killed.
--
-- What the command gets: the folder as its working directory, stdin from
-- /dev/null (a read ends at once; an fd 0 left closed would be reused by
-- the next file the command opens), stdout and stderr together in one
-- stream of which the first max_output bytes are kept (the rest is read
-- and dropped, so a chatty command is neither killed nor blocked), and
-- owl's environment less every variable that may hold a credential.
local core = require("owl.core")
local task = require("owl.task")
local errors = require("owl.errors")

local M = {}

M.DEFAULT_TIMEOUT = 60
M.DEFAULT_MAX_OUTPUT = 64 * 1024
M.POLL_MIN, M.POLL_MAX = 0.005, 0.1

-- Variables never passed on (matched case-insensitively against the name):
-- OPENAI_API_KEY, ANTHROPIC_API_KEY and any *_API_KEY, and any name holding
-- TOKEN, SECRET or PASSWORD.
M.SECRET_NAMES = "(_API_KEY$|TOKEN|SECRET|PASSWORD)"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- The first line a quick shell command prints (mktemp): blocking, but it
-- returns at once.
local function first_line(cmd)
  local p = io.popen(cmd, "r")
  if not p then return nil end
  local out = p:read("*a") or ""
  p:close()
  return out:match("^([^\n]+)")
end

local function write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then error("owl.checks: cannot write " .. path .. ": " .. tostring(err), 0) end
  f:write(data)
  f:close()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- A file name inside the folder: relative, no "..", no odd characters.
local function check_name(name)
  if type(name) ~= "string" or not name:find("^[%w_][%w_.%-/]*$") or name:find("%.%.") or name:find("//") then
    error("owl.checks: file name must be a relative path of letters, digits, '_', '-', '.' and '/', got "
      .. tostring(name), 0)
  end
end

-- The wrapper the background shell runs. It strips the credentials, runs
-- the command with its output capped, and writes the exit status last
-- (through a rename), so the status file means the output is complete.
local function wrapper(command, max_output)
  return table.concat({
    "set -f",
    "strip=''",
    "for n in $(env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | grep -iE " .. quote(M.SECRET_NAMES) .. "); do",
    "  strip=\"$strip -u $n\"",
    "done",
    "cd work || exit 126",
    "{ env $strip sh -c " .. quote(command) .. " </dev/null; echo $? > ../status.tmp; } 2>&1 |",
    "  { head -c " .. (max_output + 1) .. " > ../output; cat > /dev/null; }",
    "mv ../status.tmp ../status",
  }, "\n") .. "\n"
end

local function kill_group(pid)
  -- "kill -KILL -PID" names the group; dash refuses "--" before it
  if pid then os.execute("kill -KILL -" .. pid .. " 2>/dev/null") end
end

-- M.run{ command = "sh command line", files = { [name] = text },
--        timeout = 60, max_output = 65536 }
-- -> { status = exit code (nil when killed at the time limit),
--      timed_out = bool, output = stdout and stderr, cut = bool,
--      seconds = how long it ran }, or nil and an owl `cancelled` error when
-- the task running it was cancelled. The folder is removed in every case.
-- A 127 status means the command was not found (the shell's convention).
function M.run(opts)
  local command = opts.command
  local timeout = opts.timeout or M.DEFAULT_TIMEOUT
  local max_output = opts.max_output or M.DEFAULT_MAX_OUTPUT
  local base = first_line("mktemp -d \"${TMPDIR:-/tmp}/owl-check.XXXXXX\" 2>/dev/null")
  if not base then error("owl.checks: cannot make a temporary folder (mktemp -d failed)", 0) end
  local pid
  local ok, result = pcall(function()
    assert(os.execute("mkdir " .. quote(base .. "/work")))
    for name, data in pairs(opts.files or {}) do
      check_name(name)
      local dir = name:match("^(.*)/[^/]*$")
      if dir then os.execute("mkdir -p " .. quote(base .. "/work/" .. dir)) end
      write_file(base .. "/work/" .. name, data)
    end
    write_file(base .. "/run.sh", wrapper(command, max_output))
    -- setsid: the command and everything it starts share one process group
    -- (the session's), killed as one. Its pid is the group's id: a child of
    -- a non-interactive shell is never a group leader, so setsid does not
    -- fork again.
    local line = first_line("cd " .. quote(base) .. " && { command -v setsid >/dev/null 2>&1 || { echo nosetsid; exit; }; "
      .. "setsid sh ./run.sh </dev/null >/dev/null 2>&1 & echo \"$!\"; }")
    if line == "nosetsid" then error("owl.checks: running a command needs setsid (util-linux)", 0) end
    pid = tonumber(line)
    if not pid then error("owl.checks: could not start the command in the background", 0) end
  end)
  if not ok then
    os.execute("rm -rf " .. quote(base))
    error(result, 0)
  end

  local started = core.now()
  local me = task.current()
  local status_text, timed_out, cancelled
  local wait = M.POLL_MIN
  while true do
    status_text = read_file(base .. "/status")
    if status_text then break end
    if me and me.cancelled then cancelled = true break end
    if core.now() - started >= timeout then timed_out = true break end
    task.sleep(math.min(wait, math.max(0, timeout - (core.now() - started))))
    wait = math.min(wait * 2, M.POLL_MAX)
  end
  local seconds = core.now() - started
  -- killed even after a normal end: whatever the command left running in
  -- the background (in its group) does not outlive the check
  kill_group(pid)
  local output = read_file(base .. "/output") or ""
  os.execute("rm -rf " .. quote(base))
  if cancelled then return nil, errors.new("cancelled", "the task was cancelled while its check ran") end
  local cut = #output > max_output
  if cut then output = output:sub(1, max_output) end
  return {
    status = tonumber(status_text and status_text:match("%d+")),
    timed_out = timed_out == true,
    output = output,
    cut = cut,
    seconds = seconds,
  }
end

return M
