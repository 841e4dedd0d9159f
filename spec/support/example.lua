-- spec/support/example.lua: runs one README code block as written, in a
-- fresh process, against the suite's mock server and nothing else; for
-- spec/readme_spec.lua (which states the rules).
--
--   local example = require("support.example")
--   local box = example.box(server)       -- a scratch directory, once per spec file
--   local r = box:run(block [, { terminal = true }]) -- { code, out, err, tty }
--   example.outside_loopback(text)        -- the URLs in text that leave 127.0.0.1
--   example.shows(shown, actual)          -- true, or false and the first line missing
--   box:close()
local mock = require("support.mock")
local files = require("support.files")

local M = {}

local q = mock.shell_quote

local FLAVOR = type(jit) == "table" and "jit" or _VERSION:match("Lua (%d+%.%d+)")
M.lua = FLAVOR == "jit" and "luajit" or ("lua" .. FLAVOR)

-- The names a README Lua block may use without defining them: what the
-- README's first example sets up. Globals, so a block's own `local owl`
-- shadows them, and set by -e, so the block's file is the README's text
-- byte for byte and its line numbers are the block's.
M.PRELUDE = 'owl = require("owl"); client = owl.client{ model = "gpt-4o-mini" }; '
  .. 'problem = "Write a Lua tokenizer for arithmetic expressions, with tests."'

-- Test keys: a real key in the caller's environment never reaches an example.
M.KEYS = { OPENAI_API_KEY = "sk-readme-test", ANTHROPIC_API_KEY = "sk-ant-readme-test" }

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return mock.root .. "/" .. path
end

local Box = {}
Box.__index = Box

-- A scratch directory that looks like a checkout: every top-level entry of
-- the repository linked in, but bin/owl a script that runs the real one
-- under the Lua running the specs (its #! line says lua5.4). Blocks run
-- there, so `bin/owl ...` and `lua examples/...` work as written and any
-- file an example writes (`> lru.lua`) lands in the scratch directory.
function M.box(server)
  local ok, _, dir = mock.run('mktemp -d "${TMPDIR:-/tmp}/owl-readme.XXXXXX"')
  dir = dir:match("^[^\n]*")
  assert(ok and dir ~= "", "mktemp -d failed: " .. dir)
  local root = mock.root
  local script = "cd " .. q(dir) .. " && for f in " .. q(root) .. "/* " .. q(root) .. "/.[!.]*; do\n"
    .. '  [ -e "$f" ] && [ "$(basename "$f")" != bin ] && ln -s "$f" .\n'
    .. "done; mkdir bin && printf '#!/bin/sh\\nexec %s %s \"$@\"\\n' " .. q(M.lua) .. " "
    .. q(root .. "/bin/owl") .. " > bin/owl && chmod +x bin/owl"
  local made, _, out = mock.run(script)
  assert(made, "could not make the scratch checkout: " .. out)
  local build = absolute(os.getenv("OWL_BUILD_DIR") or ("build/" .. FLAVOR))
  return setmetatable({ dir = dir, server = server, build = build }, Box)
end

function Box:close()
  mock.run("rm -rf " .. q(self.dir))
end

-- The whole environment of an example (env -i: nothing inherited but PATH).
-- Every provider's base URL is the mock's, and so is every proxy: libcurl,
-- curl and most HTTP clients send a request for any host but loopback
-- through the proxy, where the mock logs it (a CONNECT, or an absolute URL)
-- and refuses it, so an example that names a public URL fails and is seen.
function Box:env(extra)
  local root, base = mock.root, self.server.base
  local lua_path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"
  local function cpath(v) return root .. "/build/" .. v .. "/?.so;;" end
  local env = {
    PATH = os.getenv("PATH") or "/usr/bin:/bin",
    HOME = self.dir,
    TMPDIR = os.getenv("TMPDIR") or "/tmp",
    TERM = "dumb",
    LUA_PATH = lua_path,
    -- each Lua its own build: 5.4 and 5.3 read their versioned variable
    -- first; 5.1 and LuaJIT share LUA_CPATH, which is the running one's
    LUA_CPATH_5_4 = cpath("5.4"),
    LUA_CPATH_5_3 = cpath("5.3"),
    LUA_CPATH = self.build .. "/?.so;;",
    OPENAI_BASE_URL = self.server.url,
    ANTHROPIC_BASE_URL = base,
    OPENAI_API_KEY = M.KEYS.OPENAI_API_KEY,
    ANTHROPIC_API_KEY = M.KEYS.ANTHROPIC_API_KEY,
    http_proxy = base, https_proxy = base, HTTPS_PROXY = base, all_proxy = base, ALL_PROXY = base,
    no_proxy = "127.0.0.1,localhost", NO_PROXY = "127.0.0.1,localhost",
  }
  if FLAVOR == "5.4" or FLAVOR == "5.3" then env["LUA_CPATH_" .. FLAVOR:gsub("%.", "_")] = self.build .. "/?.so;;" end
  for k, v in pairs(extra or {}) do env[k] = v end
  local names = {}
  for k in pairs(env) do names[#names + 1] = k end
  table.sort(names)
  local words = { "env -i" }
  for _, k in ipairs(names) do words[#words + 1] = k .. "=" .. q(env[k]) end
  return table.concat(words, " ")
end

-- Runs the block: a lua block as a file under the running Lua after
-- PRELUDE, an sh block under `sh -e`; stdin empty, in the scratch
-- directory, at most 60 s. opts.terminal: on a pseudo-terminal of 80x24
-- (`script`), stdout and stderr both to it; r.tty holds what it got.
-- Returns { code, out, err, tty }.
function Box:run(block, opts)
  opts = opts or {}
  local name = "readme_L" .. block.line .. (block.lang == "lua" and ".lua" or ".sh")
  files.write(self.dir .. "/" .. name, block.text)
  local cmd
  if block.lang == "lua" then
    cmd = M.lua .. " -e " .. q(M.PRELUDE) .. " " .. name
  else
    cmd = "sh -e " .. name
  end
  local out, err, tty = self.dir .. "/.out", self.dir .. "/.err", self.dir .. "/.tty"
  local full
  if opts.terminal then
    local env = self:env{ TERM = "xterm", COLUMNS = "80", LINES = "24" }
    full = "cd " .. q(self.dir) .. " && SHELL=/bin/sh timeout 60 script -q -e -c " .. q(env .. " " .. cmd)
      .. " /dev/null </dev/null >" .. q(tty)
  else
    full = "cd " .. q(self.dir) .. " && " .. self:env() .. " timeout 60 " .. cmd
      .. " </dev/null >" .. q(out) .. " 2>" .. q(err)
  end
  files.write(out, "")
  files.write(err, "")
  files.write(tty, "")
  local _, code = mock.run(full)
  return { code = code, out = files.read(out), err = files.read(err), tty = files.read(tty) }
end

-- The URLs in text whose host is not loopback (127.0.0.0/8, localhost, ::1).
function M.outside_loopback(text)
  local found = {}
  for url, host in text:gmatch("(%a[%w+.-]*://%[?([^/%s:%]\"'`]*)[^%s\"'`]*)") do
    local loopback = host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") or host == "::1" or host == ""
    if not loopback then found[#found + 1] = url end
  end
  return found
end

-- A shown line as a pattern: decimal numbers (times) match any number, the
-- rest must be there as written; spaces stretch, since a column may widen.
local function line_pattern(line)
  local parts = {}
  local i = 1
  while i <= #line do
    local s, e = line:find("%d+%.%d+", i)
    local plain = line:sub(i, (s or #line + 1) - 1)
    plain = plain:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("%s+", "%%s+")
    parts[#parts + 1] = plain
    if not s then break end
    parts[#parts + 1] = "%d+%.?%d*"
    i = e + 1
  end
  return "^%s*" .. table.concat(parts) .. "%s*$"
end

-- Whether every non-blank line of the shown output is a line of actual,
-- in the same order. Returns true, or false and the first shown line that
-- is missing.
function M.shows(shown, actual)
  local lines = {}
  for l in (actual:gsub("\r", "") .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local at = 1
  for want in shown:gmatch("([^\n]*)\n?") do
    if want:match("%S") then
      local pat, found = line_pattern(want), nil
      for k = at, #lines do
        if lines[k]:match(pat) then found = k break end
      end
      if not found then return false, want end
      at = found + 1
    end
  end
  return true
end

return M
