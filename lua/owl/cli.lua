-- owl.cli: the `owl` command. parse turns the arguments into options (or a
-- message for the usage error); main runs the flow, reports progress on
-- stderr and writes the result on stdout. The streams are parameters so the
-- specs can run main without a terminal.
local text = require("owl.text")

local cli = {}

-- A problem is a prompt, not a data set: past this, stdin is refused rather
-- than read whole (`owl run - < /dev/zero` must not eat the memory).
cli.MAX_PROBLEM_BYTES = 1024 * 1024

cli.usage = [[
usage: owl run [options] PROBLEM...
       owl run [options] -           read the problem from stdin

Runs the orchestrator-workers flow on PROBLEM (the remaining arguments,
joined by spaces) and prints the final result. Progress goes to stderr:
drawn live on a terminal, as plain lines elsewhere.

options:
  --provider P       openai or anthropic (default: anthropic when only
                     ANTHROPIC_API_KEY is set, else openai)
  --model M          the model for every call (default: $OWL_MODEL, else
                     gpt-4o-mini, or claude-haiku-4-5 with anthropic)
  --base-url URL     the provider's endpoint (default: OPENAI_BASE_URL, else
                     https://api.openai.com/v1; with anthropic
                     ANTHROPIC_BASE_URL, else https://api.anthropic.com)
  --structured S     how anthropic is asked for the plan: output_config
                     (the default) or tool (a forced tool call)
  --header 'K: V'    an extra request header; may be repeated
  --max-workers K    at most K workers at once (an integer >= 1)
  --timeout S        give up on a call after S seconds (default: $OWL_TIMEOUT,
                     else 600); a call whose answer stops arriving for 30 s
                     fails sooner
  --max-retries N    make a failed call again at most N times (default 2;
                     0: never): connection errors, timeouts, 408, 409, 429
                     and 5xx, waiting as the server asks (retry-after)
  --journal FILE     write each answered call to FILE (JSON lines); run
                     again with the same FILE to reuse them and make only
                     the calls still missing
  --json             print the whole result as JSON; after a failure, what
                     did finish and the error (exit 1)
  --quiet            nothing on stderr but errors
  --stream           stream every call, showing each worker's tokens as they
                     come
  --check            make sure the solution works: check its syntax and RUN
                     its own tests (model-written code, run as you in a
                     temporary folder for at most 60 s, without API keys in
                     its environment); while they fail, the aggregator
                     repairs it, up to 2 times
  -h, --help         print this help
  --                 everything after it is the problem

Exit status: 0 done, 1 the run failed, 2 a usage error, 3 with --check: the
solution was produced but its check still fails (the code on stdout, the
check's report on stderr).

The API key is read from OPENAI_API_KEY (ANTHROPIC_API_KEY with anthropic).
On a terminal the size comes from COLUMNS and LINES when they are exported,
else 80x24.
]]

-- The providers the CLI knows, with the model each uses when none is named.
cli.DEFAULT_MODELS = { openai = "gpt-4o-mini", anthropic = "claude-haiku-4-5" }

-- Flags that stand alone, and the option each sets.
local SWITCHES = { ["--json"] = "json", ["--quiet"] = "quiet", ["--stream"] = "stream", ["--check"] = "check" }

-- Flags that take a value, and what to do with it. Each returns an error
-- message for a bad value.
local VALUE_FLAGS = {
  provider = function(opts, v)
    if not cli.DEFAULT_MODELS[v] then return "--provider must be openai or anthropic, got '" .. v .. "'" end
    opts.provider = v
  end,
  structured = function(opts, v)
    if v ~= "output_config" and v ~= "tool" then
      return "--structured must be output_config or tool, got '" .. v .. "'"
    end
    opts.structured = v
  end,
  model = function(opts, v) opts.model = v end,
  ["base-url"] = function(opts, v) opts.base_url = v end,
  header = function(opts, v)
    local name, value = v:match("^%s*([^:]-)%s*:%s*(.-)%s*$")
    if not name or name == "" or name:find("%s") then
      return "malformed header '" .. v .. "': expected 'Name: value'"
    end
    opts.headers[name] = value
  end,
  ["max-workers"] = function(opts, v)
    local n = v:find("^%d+$") and tonumber(v)
    if not n or n < 1 then
      return "--max-workers needs an integer >= 1, got '" .. v .. "'"
    end
    opts.max_workers = n
  end,
  ["max-retries"] = function(opts, v)
    local n = v:find("^%d+$") and tonumber(v)
    if not n or n > 100 then
      return "--max-retries needs an integer from 0 to 100, got '" .. v .. "'"
    end
    opts.max_retries = n
  end,
  journal = function(opts, v)
    if v == "" then return "--journal needs a file path" end
    opts.journal = v
  end,
  timeout = function(opts, v)
    local n = cli.seconds(v)
    if not n then return "--timeout needs a number of seconds above 0, got '" .. v .. "'" end
    opts.timeout = n
  end,
}

-- A positive, finite number of seconds (at most 1e9) from text, or nil.
function cli.seconds(v)
  local n = type(v) == "string" and v:find("^%s*%d*%.?%d+%s*$") and tonumber(v)
  if n and n > 0 and n <= 1e9 then return n end
  return nil
end

-- cli.parse(args) -> opts, or nil, message. Flags may come before or after
-- the problem's words (a problem is rarely quoted); `--` ends the flags.
-- opts: { command = "run", problem = string (nil when stdin is true),
--         stdin = bool, provider, structured, model, base_url,
--         headers = {K = V}, max_workers, max_retries, timeout, journal, json = bool, quiet = bool,
--         stream = bool, check = bool, help = bool }
function cli.parse(args)
  if type(args) ~= "table" then
    error("owl.cli: parse needs an array of arguments, got " .. type(args), 2)
  end
  local opts = { headers = {}, json = false, quiet = false, stream = false, check = false, help = false, stdin = false }
  -- the terminal must never see a control character from an argument either
  local function bad(message) return nil, text.printable(message) end
  local words = {}
  local flags_done = false
  local i, n = 1, #args
  while i <= n do
    local a = args[i]
    if type(a) ~= "string" then
      error("owl.cli: argument " .. i .. " is a " .. type(a) .. ", not a string", 2)
    end
    if flags_done or a == "-" or a:sub(1, 1) ~= "-" then
      words[#words + 1] = a
    elseif a == "--" then
      flags_done = true
    elseif a == "-h" or a == "--help" then
      opts.help = true
    elseif SWITCHES[a] then
      opts[SWITCHES[a]] = true
    else
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:match("^%-%-(.+)$")
      local set = name and VALUE_FLAGS[name]
      if not set then return bad("unknown flag " .. a) end
      if value == nil then
        i = i + 1
        value = args[i]
        -- "--model --json" is a forgotten value, not a model named --json
        if value ~= nil and value:sub(1, 2) == "--" then value = nil end
      end
      if value == nil or value == "" then return bad("--" .. name .. " needs a value") end
      local problem = set(opts, value)
      if problem then return bad(problem) end
    end
    i = i + 1
  end
  if opts.help then return opts end

  local command = table.remove(words, 1)
  if command == nil then return nil, "no command: use 'owl run PROBLEM'" end
  if command ~= "run" then return bad("unknown command '" .. command .. "'") end
  opts.command = command
  if #words == 1 and words[1] == "-" then
    opts.stdin = true
  else
    local problem = table.concat(words, " ")
    if not problem:find("%S") then return nil, "no problem given" end
    opts.problem = problem
  end
  return opts
end

-- Plan fields and error text come from a model or a server: shown as
-- text, one line each, and cut, never written raw to the terminal.
local function shown(v, max)
  return text.printable(text.cap(tostring(v), max or 400))
end

-- A value as JSON can hold it: an owl error becomes a table of its fields
-- but partial (the result around it holds that), every string is redacted
-- of the client's secrets (errors are already; a plan an error quotes is a
-- model's text), arrays stay arrays, and what JSON cannot hold (a function,
-- a cycle) is left out.
local function json_ready(v, secrets, seen)
  local json = require("owl.json")
  local errors = require("owl.errors")
  local kind = type(v)
  if kind == "string" then return errors.redact(v, secrets) end
  if kind == "number" or kind == "boolean" or v == json.null then return v end
  if kind ~= "table" or seen[v] then return nil end
  seen[v] = true
  local copy = {}
  for k, x in pairs(v) do
    if not (errors.is(v) and k == "partial") and (type(k) == "string" or type(k) == "number") then
      copy[k] = json_ready(x, secrets, seen)
    end
  end
  seen[v] = nil
  if getmetatable(v) == json.array_mt then json.array(copy) end
  return copy
end

-- The result as JSON, or after a failure what did finish (err.partial)
-- with the error. Empty lists are marked, or they would encode as {}.
local function encode_result(result, err, secrets)
  local json = require("owl.json")
  local copy = {}
  for k, v in pairs(result) do copy[k] = v end
  if err ~= nil then
    copy.outputs = copy.outputs or {}
    copy.error = type(err) == "table" and json_ready(err, secrets, {})
      or { message = json_ready(tostring(err), secrets, {}) }
  end
  for _, k in ipairs({ "subtasks", "outputs" }) do
    if type(copy[k]) == "table" and next(copy[k]) == nil then copy[k] = json.array() end
  end
  return pcall(json.encode, copy)
end

-- The problem from stdin, read in pieces up to MAX_PROBLEM_BYTES; nil and
-- a message past that. The newline a shell or an editor ends it with is
-- not part of the problem.
local function read_problem(io_in)
  local parts, size = {}, 0
  while true do
    local chunk = io_in:read(64 * 1024)
    if chunk == nil then break end
    size = size + #chunk
    if size > cli.MAX_PROBLEM_BYTES then
      return nil, "the problem on stdin is larger than " .. cli.MAX_PROBLEM_BYTES .. " bytes"
    end
    parts[#parts + 1] = chunk
  end
  return (table.concat(parts):gsub("\r?\n$", ""))
end

-- What goes to stdout: the result as it is, unless stdout is a terminal,
-- where model-written control characters would act instead of showing.
local function for_stdout(s, io_out)
  if io_out == io.stdout and require("owl.core").isatty(1) then return text.printable(s, true) end
  return s
end

-- cli.provider(opts [, getenv]) -> the provider: the flag's, else
-- anthropic when its key is the only one set, else openai.
function cli.provider(opts, getenv)
  if opts.provider then return opts.provider end
  getenv = getenv or os.getenv
  local function set(name) local v = getenv(name) return v ~= nil and v ~= "" end
  if not set("OPENAI_API_KEY") and set("ANTHROPIC_API_KEY") then return "anthropic" end
  return "openai"
end

-- How progress is shown: not at all with --quiet; drawn live when stderr
-- is a terminal that can move its cursor; as plain lines anywhere else.
local function progress_mode(opts, io_err)
  if opts.quiet then return "quiet" end
  if io_err == io.stderr and require("owl.core").isatty(2) and os.getenv("TERM") ~= "dumb" then
    return "live"
  end
  return "plain"
end

-- The exit code of a solution whose check still fails (--check).
cli.EXIT_UNVERIFIED = 3

-- cli.main(args, io_out, io_err [, io_in]) -> exit code: 0 done, 1 the run
-- failed, 2 a usage error, 3 (--check) a solution whose check still fails.
function cli.main(args, io_out, io_err, io_in)
  io_out = io_out or io.stdout
  io_err = io_err or io.stderr
  io_in = io_in or io.stdin
  local opts, message = cli.parse(args)
  if not opts then
    io_err:write("owl: ", message, "\n\n", cli.usage)
    return 2
  end
  if opts.help then
    io_out:write(cli.usage)
    return 0
  end
  local problem = opts.problem
  if opts.stdin then
    local too_big
    problem, too_big = read_problem(io_in)
    if not problem then
      io_err:write("owl: ", too_big, "\n")
      return 2
    end
    if not problem:find("%S") then
      io_err:write("owl: no problem on stdin\n")
      return 2
    end
  end
  -- checked here, not left to owl.run: it is a usage error (exit 2)
  local bad_byte = require("owl.json").utf8_error(problem)
  if bad_byte then
    io_err:write("owl: the problem is not valid UTF-8 (byte ", bad_byte, ")\n")
    return 2
  end
  local provider = cli.provider(opts)
  if opts.structured and provider ~= "anthropic" then
    io_err:write("owl: --structured is for --provider anthropic\n\n", cli.usage)
    return 2
  end
  -- a provider that cannot stream (its module has no stream_reader) is
  -- refused before anything is paid for, rather than ignored
  if opts.stream and not require("owl.providers." .. provider).stream_reader then
    io_err:write("owl: --stream is not supported with --provider ", provider, " yet\n")
    return 2
  end
  local timeout = opts.timeout
  if timeout == nil and os.getenv("OWL_TIMEOUT") then
    timeout = cli.seconds(os.getenv("OWL_TIMEOUT"))
    if not timeout then
      io_err:write("owl: OWL_TIMEOUT must be a number of seconds above 0, got '",
        text.printable(os.getenv("OWL_TIMEOUT")), "'\n")
      return 2
    end
  end

  local progress = require("owl.cli.progress")
  local columns, lines = progress.terminal_size()
  local reporter = progress.new(io_err, progress_mode(opts, io_err), { columns = columns, lines = lines })
  local secrets
  reporter:start()
  -- A raised error here is misuse (no model, a bad header): the user gets
  -- its message, not a traceback.
  local ok, result, err = pcall(function()
    local owl = require("owl")
    local client = owl.client{
      provider = provider,
      structured = opts.structured,
      base_url = opts.base_url,
      model = opts.model or os.getenv("OWL_MODEL") or cli.DEFAULT_MODELS[provider],
      headers = next(opts.headers) and opts.headers or nil,
      timeout = timeout,
      max_retries = opts.max_retries,
    }
    secrets = client.secrets
    -- --check is the opt-in to running model-written code (the tests the
    -- solution carries), as owl.checks.coding{ run = true } does it
    return owl.run(client, problem, { max_workers = opts.max_workers, on_event = reporter.on_event,
                                      stream = opts.stream or nil, journal = opts.journal,
                                      check = opts.check and owl.checks.coding{ run = true } or nil })
  end)
  reporter:stop(ok and result ~= nil)
  if not ok then
    -- the message is for the user; where in owl's Lua it was raised is not
    local shown_message = tostring(result):gsub("^[^\n]-%.lua:%d+: ", "")
    io_err:write("owl: ", shown(shown_message, 4000), "\n")
    return 1
  end
  local partial = result == nil and type(err) == "table" and type(err.partial) == "table" and err.partial or nil
  local usage = (result or partial or {}).usage
  if usage then reporter:summary(usage) end

  if result == nil then
    if opts.json then
      -- what did finish is not lost: the outputs (false where a worker
      -- failed), the plan and the usage, with the error
      local encoded_ok, encoded = encode_result(partial or {}, err or "the run failed without an error", secrets)
      if encoded_ok then
        io_out:write(encoded, "\n")
      else
        io_err:write("owl: cannot encode the result as JSON: ", shown(encoded), "\n")
      end
    end
    io_err:write(shown(err or "owl: the run failed without an error", 8000), "\n")
    return 1
  end

  if opts.json then
    local encoded_ok, encoded = encode_result(result)
    if not encoded_ok then
      io_err:write("owl: cannot encode the result as JSON: ", tostring(encoded), "\n")
      return 1
    end
    io_out:write(encoded, "\n")
  else
    local final = for_stdout(tostring(result.final or ""), io_out)
    io_out:write(final)
    if final:sub(-1) ~= "\n" then io_out:write("\n") end
  end
  if result.verified == false then
    local checks = result.checks or {}
    local last = checks[#checks] or {}
    io_err:write("owl: the solution's check still fails after ", #checks - 1, " repair",
      #checks == 2 and "" or "s", "; its report:\n", text.printable(tostring(last.report or ""), true), "\n")
    return cli.EXIT_UNVERIFIED
  end
  return 0
end

return cli
