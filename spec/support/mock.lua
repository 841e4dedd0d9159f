-- spec/support/mock.lua: starts and drives owl's mock LLM server
-- (spec/mock/server.js) from busted specs and from the demo.
--
--   local mock = require("support.mock")
--   local server = mock.start{ tls = false }
--   server.url            -- "http://127.0.0.1:PORT/v1"
--   server:script{ { fault = "429" }, {} }
--   server:stats().max_in_flight
--   server:stop()
--
-- Everything here talks to the server through LuaSocket, never through owl:
-- a bug in owl must not be able to break the harness that tests it. Runs on
-- Lua 5.1, LuaJIT, 5.3 and 5.4 (no goto, //, bitwise operators or utf8).
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")

local mock = {}

-- ------------------------------------------------------------------ paths

-- Runs a shell command; returns whether it exited 0, its exit code, and
-- its output (stdout and stderr together). The code is echoed by the shell
-- itself, because io.popen's close reports none on Lua 5.1. Every command
-- drops LD_PRELOAD: the suite may run Lua with ASan preloaded, and node,
-- openssl or curl must not inherit it.
local function run(cmd)
  local f = assert(io.popen("unset LD_PRELOAD; { " .. cmd .. "\n} 2>&1; echo \"=rc=$?\"", "r"))
  local out = f:read("*a")
  f:close()
  local body, code = out:match("^(.-)=rc=(%d+)%s*$")
  code = tonumber(code) or -1
  return code == 0, code, body or out
end
mock.run = run

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
mock.shell_quote = shell_quote

-- The first line a command prints, for mktemp and pwd.
local function first_line(cmd)
  local _, _, out = run(cmd)
  return out:match("^[^\n]*")
end

local files = require("support.files")
local read_file = files.read_if

-- Runs a shell command as run does; returns its stdout, its stderr and its
-- exit code, the two streams apart (run mixes them).
local function sh(cmd)
  local err = os.tmpname()
  local p = assert(io.popen("unset LD_PRELOAD; { " .. cmd .. "\n} 2>" .. shell_quote(err) .. "; echo \"exit=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  local stderr = files.read(err)
  os.remove(err)
  return (out:gsub("exit=%d+\n$", "")), stderr, tonumber(out:match("exit=(%d+)\n$"))
end
mock.sh = sh

-- The repository root, from where this file was loaded, made absolute so
-- that the paths handed to the server do not depend on its working directory.
local ROOT = (function()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)spec/support/mock%.lua$") or "./"
  if dir == "" then dir = "./" end
  local abs = first_line("cd " .. shell_quote(dir) .. " && pwd")
  assert(abs ~= "", "mock: cannot find the repository root from " .. src)
  return abs
end)()

mock.root = ROOT
mock.server_js = ROOT .. "/spec/mock/server.js"
mock.fixtures_dir = ROOT .. "/../shared/fixtures/real"

-- The absolute path of a recorded exchange in ../shared/fixtures/real/.
function mock.fixture_path(name)
  local p = mock.fixtures_dir .. "/" .. name
  if not read_file(p) then error("mock: no fixture " .. p, 2) end
  return p
end

-- The fixture decoded: { status, headers, body, request, ... }.
function mock.fixture(name)
  return mock.json_decode(read_file(mock.fixture_path(name)))
end

-- Names of every fixture file, sorted.
function mock.fixture_names()
  local names = {}
  local _, _, listing = run("ls " .. shell_quote(mock.fixtures_dir))
  for line in listing:gmatch("[^\n]+") do
    if line:match("%.json$") then names[#names + 1] = line end
  end
  table.sort(names)
  return names
end

-- ------------------------------------------------------------------ JSON

-- A small JSON codec of the harness's own (not owl's, which is under test).
-- JSON null decodes to mock.null.
mock.null = setmetatable({}, { __tostring = function() return "null" end })

local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local decode_value

local function decode_error(s, i, what)
  error(string.format("mock.json_decode: %s at byte %d near %q", what, i, s:sub(i, i + 20)), 0)
end

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local function decode_string(s, i) -- s:sub(i, i) == '"'
  local parts, j = {}, i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then decode_error(s, i, "unterminated string") end
    parts[#parts + 1] = s:sub(j, k - 1)
    if s:sub(k, k) == '"' then return table.concat(parts), k + 1 end
    local c = s:sub(k + 1, k + 1)
    if c == "u" then
      local cp = tonumber(s:sub(k + 2, k + 5), 16)
      if not cp then decode_error(s, k, "bad \\u escape") end
      j = k + 6
      if cp >= 0xD800 and cp < 0xDC00 and s:sub(j, j + 1) == "\\u" then
        local lo = tonumber(s:sub(j + 2, j + 5), 16)
        if lo and lo >= 0xDC00 and lo < 0xE000 then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          j = j + 6
        end
      end
      parts[#parts + 1] = utf8_char(cp)
    elseif escapes[c] then
      parts[#parts + 1] = escapes[c]
      j = k + 2
    else
      decode_error(s, k, "bad escape")
    end
  end
end

decode_value = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then decode_error(s, i, "expected a key") end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "expected ':'") end
      t[k], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local t, n = {}, 0
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      n = n + 1
      t[n], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif s:sub(i, i + 3) == "true" then
    return true, i + 4
  elseif s:sub(i, i + 4) == "false" then
    return false, i + 5
  elseif s:sub(i, i + 3) == "null" then
    return mock.null, i + 4
  end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not num or num == "" or not tonumber(num) then decode_error(s, i, "unexpected character") end
  return tonumber(num), i + #num
end

-- value, or raises with the offset; mock.json_decode(s, true) returns nil,
-- message instead of raising.
function mock.json_decode(s, soft)
  local ok, v = pcall(function()
    if type(s) ~= "string" then error("mock.json_decode: not a string", 0) end
    local value, i = decode_value(s, 1)
    i = skip(s, i)
    if i <= #s then decode_error(s, i, "trailing text") end
    return value
  end)
  if ok then return v end
  if soft then return nil, v end
  error(v, 2)
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode(v, out)
  local t = type(v)
  if v == mock.null or v == nil then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("mock.json_encode: cannot encode " .. tostring(v)) end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      out[#out + 1] = string.format("%.0f", v)
    else
      out[#out + 1] = string.format("%.17g", v)
    end
  elseif t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "table" then
    local n = #v
    if n > 0 then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      -- Keys sorted, so an encoded body is the same on every Lua.
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    error("mock.json_encode: cannot encode a " .. t)
  end
end

-- An empty table encodes as {}; a table with 1..n as an array.
function mock.json_encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

-- The keys of t, sorted: the fields of a decoded body, or the names of a
-- table of cases, in one order to compare or to walk.
function mock.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- ------------------------------------------------------------------ processes

-- Whether pid runs. A zombie counts as gone: once the server has exited
-- nothing may be left to wait for, even if no one has reaped it yet.
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then return stat:match("%) (%a)") ~= "Z" end
  if read_file("/proc/self/stat") then return false end
  return (run("kill -0 " .. pid)) -- no /proc: ask kill
end
mock.alive = alive

-- Polls done() every 20 ms for up to seconds; returns its last answer.
local function wait_until(seconds, done)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if done() then return true end
    socket.sleep(0.02)
  end
  return done()
end
mock.wait_until = wait_until

local function make_temp_dir()
  local dir = first_line("mktemp -d \"${TMPDIR:-/tmp}/owl-mock.XXXXXX\"")
  if dir == "" then error("mock: mktemp -d failed", 3) end
  return dir
end

-- A self-signed certificate for the IP address 127.0.0.1 (an IP SAN, no DNS
-- name: no spec may depend on how a name such as localhost resolves; on a
-- minimal Debian it may be ::1 or nothing), valid one day, made with openssl
-- in dir (a new temporary directory when nil). Returns cert_file, key_file, dir.
function mock.make_cert(dir)
  dir = dir or make_temp_dir()
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  -- An EC key: generated in milliseconds, where RSA takes a while.
  local ok, _, out = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes" ..
    " -keyout " .. shell_quote(key) .. " -out " .. shell_quote(cert) ..
    " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 </dev/null")
  if not ok or not read_file(cert) then error("mock.make_cert: openssl req failed: " .. out, 2) end
  return cert, key, dir
end

-- ------------------------------------------------------------------ server

local Server = {}
Server.__index = Server

-- Starts the server in the background and waits (opts.timeout seconds,
-- default 10) until it has written its ports.
--   opts.tls           also listen with HTTPS, on a fresh self-signed cert
--   opts.max_lifetime  seconds before the server exits on its own (900)
--   opts.node          the node command, a shell word list ("node")
--   opts.parent_pid    the process to outlive no longer (this Lua process)
function mock.start(opts)
  opts = opts or {}
  local dir = make_temp_dir()
  local self = setmetatable({ dir = dir }, Server)
  local port_file, log_file, pid_file = dir .. "/ports", dir .. "/server.log", dir .. "/pid"
  self.log_file = log_file
  local args = {
    opts.node or "node", shell_quote(mock.server_js),
    "--port", "0", "--port-file", shell_quote(port_file),
    -- $PPID of the shell os.execute starts is this Lua process: the server
    -- watches it and exits when it is gone.
    "--parent-pid", opts.parent_pid and tostring(opts.parent_pid) or "$PPID",
    "--max-lifetime", tostring(opts.max_lifetime or 900),
    "--fixtures", shell_quote(mock.fixtures_dir),
  }
  if opts.tls then
    self.cert_file, self.key_file = mock.make_cert(dir)
    args[#args + 1] = "--tls-port 0 --tls-cert " .. shell_quote(self.cert_file) ..
      " --tls-key " .. shell_quote(self.key_file)
  end
  -- Thousands of sockets: raise the descriptor limit for node (to 65536,
  -- else to the hard limit). Its output goes to a file, never to our pipes,
  -- so that nothing waits on it.
  run("ulimit -n 65536 2>/dev/null || ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; " ..
    table.concat(args, " ") .. " </dev/null >" .. shell_quote(log_file) .. " 2>&1 & echo $! >" ..
    shell_quote(pid_file))
  self.pid = tonumber((read_file(pid_file) or ""):match("%d+"))

  local function fail(what)
    local log = read_file(log_file) or ""
    self:stop()
    error("mock.start: " .. what .. "; server stderr:\n" .. log, 3)
  end
  if not self.pid then fail("the shell did not start node") end
  local ports
  wait_until(opts.timeout or 10, function()
    local text = read_file(port_file)
    if text and text:match("pid=%d+") then
      ports = text
      return true
    end
    return not alive(self.pid)
  end)
  if not ports then
    fail(alive(self.pid) and "no port file within " .. (opts.timeout or 10) .. " s" or "node exited before listening")
  end
  self.port = tonumber(ports:match("^port=(%d+)"))
  self.url = "http://127.0.0.1:" .. self.port .. "/v1"
  self.base = "http://127.0.0.1:" .. self.port
  local tls_port = ports:match("\ntls_port=(%d+)")
  if tls_port then
    self.tls_port = tonumber(tls_port)
    self.tls_url = "https://127.0.0.1:" .. self.tls_port .. "/v1"
  end
  return self
end

-- Stops the server: SIGTERM, then SIGKILL if it is still there after 5 s.
-- Idempotent. Returns true when the process is gone.
function Server:stop()
  if not self.stopped then
    self.stopped = true
    if self.pid and alive(self.pid) then
      run("kill -TERM " .. self.pid)
      if not wait_until(5, function() return not alive(self.pid) end) then
        run("kill -KILL " .. self.pid)
        wait_until(2, function() return not alive(self.pid) end)
      end
    end
    if self.dir then run("rm -rf " .. shell_quote(self.dir)) end
  end
  return not (self.pid and alive(self.pid))
end

-- The server's stderr so far (for a failing spec's message).
function Server:log()
  return read_file(self.log_file) or ""
end

-- A control call: method, path, optional body table; the decoded JSON reply.
function Server:control(method, path, body)
  local text = body ~= nil and mock.json_encode(body) or nil
  local chunks = {}
  local ok, code = http.request{
    url = self.base .. path,
    method = method,
    headers = text and { ["content-type"] = "application/json", ["content-length"] = tostring(#text) } or nil,
    source = text and ltn12.source.string(text) or nil,
    sink = ltn12.sink.table(chunks),
  }
  local reply = table.concat(chunks)
  if not ok then error("mock: " .. method .. " " .. path .. " failed: " .. tostring(code), 2) end
  if code ~= 200 then error("mock: " .. method .. " " .. path .. " answered " .. code .. ": " .. reply, 2) end
  return mock.json_decode(reply)
end

-- Counters: total, paths, in_flight, max_in_flight, connections,
-- max_connections, script_pending, barrier. With_log adds `requests`.
function Server:stats(with_log)
  return self:control("GET", with_log and "/_mock/stats" or "/_mock/stats?log=0")
end

-- The request log, oldest first: { seq, method, path, url, headers, body,
-- body_bytes, body_truncated }. last: only the last n entries.
function Server:requests(last)
  return self:control("GET", "/_mock/requests" .. (last and ("?last=" .. last) or ""))
end

function Server:reset()
  self:control("POST", "/_mock/reset", {})
end

-- Queues replies for the next LLM requests, in order. Each entry may hold
-- status, headers, body (a string, or a table sent as JSON), fault, replay,
-- latency_ms, drip_ms, retry_after, location, subtasks, session (a scripted
-- session in spec/mock/sessions/); {} is the default reply; when = {
-- strings } keeps an entry for the first request holding them all
-- (spec/mock/server.js). Returns how many are queued in all.
function Server:script(replies)
  return self:control("POST", "/_mock/script", { replies = replies }).pending
end

-- ------------------------------------------------------------------ raw HTTP

-- Plain-HTTP requests over a raw LuaSocket TCP socket, for specs that need
-- the exact bytes, every response header, or many requests in flight at
-- once (send them all, then read each response).
--   req = { method = "POST", path = "/v1/chat/completions",
--           headers = { ["x-mock-fault"] = "429" }, body = string or table }
local Pending = {}
Pending.__index = Pending

function Server:send(req)
  req = req or {}
  local body = req.body or ""
  if type(body) == "table" then body = mock.json_encode(body) end
  local lines = {
    (req.method or "POST") .. " " .. (req.path or "/v1/chat/completions") .. " HTTP/1.1",
    "Host: 127.0.0.1:" .. self.port,
    "Connection: close",
    "Content-Length: " .. #body,
  }
  local has_type = false
  for k, v in pairs(req.headers or {}) do
    if k:lower() == "content-type" then has_type = true end
    lines[#lines + 1] = k .. ": " .. tostring(v)
  end
  if not has_type then lines[#lines + 1] = "Content-Type: application/json" end
  local sock = assert(socket.tcp())
  sock:settimeout(10)
  local ok, err = sock:connect("127.0.0.1", self.port)
  if not ok then
    sock:close()
    error("mock: connect to 127.0.0.1:" .. self.port .. ": " .. tostring(err), 2)
  end
  assert(sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
  return setmetatable({ sock = sock }, Pending)
end

-- Reads the body as the head frames it: by content-length, chunked, or up
-- to the close. Returns body, complete; or nil, err, partial on a failure
-- other than an early close.
local function read_body(sock, headers)
  local length = tonumber(headers["content-length"])
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local out = {}
    while true do
      local line, err = sock:receive("*l")
      if not line then return table.concat(out), false, err end
      local size = tonumber(line:match("^%x+"), 16)
      if not size then return table.concat(out), false, "bad chunk size" end
      if size == 0 then
        repeat line = sock:receive("*l") until not line or line == ""
        return table.concat(out), true
      end
      local data, err2, partial = sock:receive(size)
      if not data then return table.concat(out) .. (partial or ""), false, err2 end
      out[#out + 1] = data
      sock:receive("*l")
    end
  elseif length then
    if length == 0 then return "", true end
    local data, err, partial = sock:receive(length)
    if data then return data, true end
    return partial or "", false, err
  end
  local data, err, partial = sock:receive("*a")
  if data then return data, true end
  return partial or "", false, err
end

-- Reads one response. Returns { status, headers = {lower-case name =
-- value}, body, complete }; complete is false when the connection ended
-- before the body was whole (fewer bytes than content-length, a chunked
-- body cut short). LuaSocket reports a reset as "closed", so a reset and
-- an early close look the same here. Returns nil, err, partial when no
-- whole head came, or on any other failure (a "timeout").
function Pending:response(timeout)
  local sock = self.sock
  sock:settimeout(timeout or 10)
  local status_line, err, partial = sock:receive("*l")
  if not status_line then
    sock:close()
    return nil, err, partial
  end
  local res = { status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)")), headers = {} }
  local seen = { status_line }
  while true do
    local line, err2 = sock:receive("*l")
    if not line then
      sock:close()
      return nil, err2, table.concat(seen, "\r\n")
    end
    if line == "" then break end
    seen[#seen + 1] = line
    local name, value = line:match("^([^:]+):[ \t]*(.*)$")
    if name then
      name = name:lower()
      res.headers[name] = res.headers[name] and (res.headers[name] .. ", " .. value) or value
    end
  end
  local body, complete, why = read_body(sock, res.headers)
  sock:close()
  if why and why ~= "closed" then return nil, why, body end
  res.body, res.complete = body, complete
  return res
end

-- Gives up on the request: closes the connection unread.
function Pending:close()
  self.sock:close()
end

-- send + response: one blocking exchange.
function Server:request(req, timeout)
  return self:send(req):response(timeout)
end

-- The JSON events of an SSE body, in order: { event = name or nil,
-- data = the raw data text, json = decoded data or nil }.
function mock.sse_events(body)
  local events = {}
  for block in (body .. "\n\n"):gmatch("(.-)\n\n") do
    if block:match("%S") then
      local ev = { event = block:match("^event: ([^\n]*)") or block:match("\nevent: ([^\n]*)") }
      ev.data = block:match("^data: ([^\n]*)") or block:match("\ndata: ([^\n]*)")
      if ev.data and ev.data ~= "[DONE]" then ev.json = mock.json_decode(ev.data, true) end
      events[#events + 1] = ev
    end
  end
  return events
end

return mock
