-- owl.checks.syntax(lang): a check that the solution parses, never running
-- it. Lua is compiled by the Lua owl runs on (load, so its version's
-- syntax); the others by their own tools in a temporary folder, through
-- owl.checks.command (not blocking owl's loop):
--
--   python       python3 -m py_compile solution.py
--   c            cc -fsyntax-only solution.c
--   javascript   node --check solution.js
local command = require("owl.checks.command")

local M = {}

-- lang -> { file, command } for the languages checked by a tool.
M.TOOLS = {
  python = { file = "solution.py", command = "python3 -m py_compile solution.py" },
  c = { file = "solution.c", command = "cc -fsyntax-only solution.c" },
  javascript = { file = "solution.js", command = "node --check solution.js" },
}

M.LANGUAGES = { "lua", "python", "c", "javascript" }

-- Lua source compiled, not run: ok, or false and the parser's message.
-- A binary chunk is refused (load of bytecode is unsafe), and a first
-- line starting with # (a shebang) is skipped as the lua command does.
function M.lua(code)
  if type(code) ~= "string" then
    error("owl.checks.syntax: the solution must be a string, got " .. type(code), 0)
  end
  if code:sub(1, 1) == "\27" then return false, "lua syntax error: a binary chunk, not source" end
  if code:sub(1, 1) == "#" then code = "--" .. code end
  local compile = rawget(_G, "loadstring") or load -- 5.1's load takes a function, not a string
  local fn, err = compile(code, "=solution.lua")
  if not fn then return false, "lua syntax error: " .. tostring(err) end
  return true, "lua syntax ok"
end

-- M.check(final [, opts]) for lang, with opts as owl.checks.command's
-- (timeout, max_output).
function M.run(lang, code, opts)
  if lang == "lua" then return M.lua(code) end
  local tool = M.TOOLS[lang]
  local ok, report = command.run_on(code, { command = tool.command, file = tool.file,
                                            timeout = opts and opts.timeout, max_output = opts and opts.max_output })
  if ok then return true, lang .. " syntax ok" end
  return false, lang .. " syntax check failed: " .. report
end

-- owl.checks.syntax(lang [, opts]) -> check.
function M.new(lang, opts)
  if lang ~= "lua" and not M.TOOLS[lang] then
    error("owl.checks.syntax: unknown language '" .. tostring(lang) .. "' (lua, python, c or javascript)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("owl.checks.syntax: options must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  command.check_run_options(opts, "owl.checks.syntax")
  return function(final) return M.run(lang, final, opts) end
end

return M
