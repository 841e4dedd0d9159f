-- owl.checks.coding{...}: the default check of a coding run. It finds the
-- language of the solution, checks its syntax (owl.checks.syntax) and, when
-- the code carries its own tests and running was asked for (run = true),
-- runs it in a temporary folder: it passes when the program exits 0.
--
-- "Carries its own tests" means, per language:
--   lua          a call to assert(...)
--   python       an assert statement, unittest or doctest, or an
--                `if __name__ == "__main__":` block
--   javascript   assert(...), assert.x(...) or console.assert(...)
--   c            a main function and a call to assert(...)
-- and running it is:
--   lua          the first of lua5.4, lua5.3, lua, luajit, lua5.1 found
--                (or opts.lua), on solution.lua
--   python       python3 solution.py
--   javascript   node solution.js
--   c            cc -o solution solution.c -lm && ./solution
local text = require("owl.text")
local command = require("owl.checks.command")
local syntax = require("owl.checks.syntax")

local M = {}

local ALIASES = {
  lua = "lua", python = "python", py = "python", python3 = "python",
  c = "c", h = "c", javascript = "javascript", js = "javascript", node = "javascript",
  mjs = "javascript", cjs = "javascript",
}

-- Line patterns (anchored, so each line costs one attempt) and their
-- weight as evidence for a language.
local SIGNS = {
  lua = { { "^local function ", 3 }, { "^local [%w_, ]+=", 1 }, { "^%s*end[%s%)]*$", 1 }, { "^%s*%-%-", 1 },
          { "then%s*$", 1 }, { "^%s*for .* do%s*$", 1 }, { "^return [%w_]+%s*$", 1 } },
  python = { { "^def [%w_]+%(.*%)[^:]*:%s*$", 3 }, { "^import [%w_.]+", 2 }, { "^from [%w_.]+ import ", 3 },
             { "^class [%w_]+.*:%s*$", 2 }, { "^%s*elif ", 2 }, { "^if __name__", 3 }, { "^%s*#", 1 },
             { "^%s+self%.", 1 } },
  c = { { "^#include%s*[<\"]", 4 }, { "^int main%s*%(", 3 }, { "^%s*printf%s*%(", 1 },
        { "^[%w_ %*]+%([%w_ ,%*%[%]]*%)%s*{%s*$", 1 }, { "^%s*return .*;%s*$", 1 } },
  javascript = { { "^const ", 2 }, { "^let ", 2 }, { "^function [%w_$]+%(.*%)%s*{", 3 }, { "console%.log%(", 2 },
                 { "module%.exports", 3 }, { "^%s*//", 1 }, { "===", 2 }, { "^export ", 2 } },
}

-- The language of a fenced block's info string, or of a shebang line.
local function declared(code)
  local info = code:match("^%s*```+[ \t]*([%w_+]+)") or code:match("\n```+[ \t]*([%w_+]+)")
  if info and ALIASES[info:lower()] then return ALIASES[info:lower()] end
  local shebang = code:match("^#![^\n]*")
  if shebang then
    if shebang:find("python", 1, true) then return "python" end
    if shebang:find("node", 1, true) then return "javascript" end
    if shebang:find("lua", 1, true) then return "lua" end
  end
  return nil
end

-- owl.checks.language(code) -> "lua", "python", "c", "javascript", or nil
-- when the code gives no clear sign (the highest score is shared or 0).
-- The fence's info string or a shebang decides; else each line votes.
function M.language(code)
  if type(code) ~= "string" then error("owl.checks.language: expected a string, got " .. type(code), 2) end
  local lang = declared(code)
  if lang then return lang end
  local score = { lua = 0, python = 0, c = 0, javascript = 0 }
  for line in code:gmatch("[^\n]+") do
    for name, signs in pairs(SIGNS) do
      for i = 1, #signs do
        if line:find(signs[i][1]) then score[name] = score[name] + signs[i][2] end
      end
    end
  end
  local best, top, shared = nil, 0, false
  for _, name in ipairs(syntax.LANGUAGES) do
    if score[name] > top then
      best, top, shared = name, score[name], false
    elseif score[name] == top and top > 0 then
      shared = true
    end
  end
  if shared then return nil end
  return best
end

-- owl.checks.has_tests(lang, code) -> whether the code carries its own
-- tests, as the header of this file defines it.
function M.has_tests(lang, code)
  if lang == "lua" then return code:find("assert%s*%(") ~= nil end
  if lang == "javascript" then
    return code:find("assert%s*[%(%.]") ~= nil
  end
  if lang == "c" then return code:find("assert%s*%(") ~= nil and code:find("main%s*%(") ~= nil end
  if lang == "python" then
    if code:find("unittest", 1, true) or code:find("doctest", 1, true) then return true end
    if code:find("__name__%s*==%s*['\"]__main__['\"]") then return true end
    for line in code:gmatch("[^\n]+") do
      if line:find("^%s*assert[%s%(]") then return true end
    end
  end
  return false
end

local LUAS = { "lua5.4", "lua5.3", "lua", "luajit", "lua5.1" }

-- The command that runs a program with its tests, and its file.
local function runner(lang, opts)
  if lang == "lua" then
    if opts.lua then return opts.lua .. " solution.lua", "solution.lua" end
    return "for l in " .. table.concat(LUAS, " ") .. "; do if command -v \"$l\" >/dev/null 2>&1; then exec \"$l\" solution.lua; fi; done; "
      .. "echo 'no Lua interpreter found (" .. table.concat(LUAS, ", ") .. ")' >&2; exit 127", "solution.lua",
      "lua solution.lua"
  end
  if lang == "python" then return "python3 solution.py", "solution.py" end
  if lang == "javascript" then return "node solution.js", "solution.js" end
  return "cc -o solution solution.c -lm && ./solution", "solution.c"
end

-- owl.checks.coding{ run = false, lang = nil, lua = nil, timeout = 60,
--   max_output = 65536 } -> check.
--   run    run the code when it carries its own tests (off by default:
--          it is model-written code, run as the user running owl)
--   lang   skip detection: "lua", "python", "c" or "javascript"
--   lua    the Lua interpreter that runs Lua tests
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("owl.checks.coding: options must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  local known = { run = true, lang = true, lua = true, timeout = true, max_output = true }
  for k in pairs(opts) do
    if not known[k] then error("owl.checks.coding: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if opts.run ~= nil and type(opts.run) ~= "boolean" then
    error("owl.checks.coding: run must be a boolean, got " .. type(opts.run), 2)
  end
  if opts.lang ~= nil and not (type(opts.lang) == "string" and ALIASES[opts.lang]) then
    error("owl.checks.coding: lang must be lua, python, c or javascript, got " .. tostring(opts.lang), 2)
  end
  if opts.lua ~= nil and (type(opts.lua) ~= "string" or not opts.lua:find("^[%w_./%-]+$")) then
    error("owl.checks.coding: lua must be an interpreter's name or path, got " .. tostring(opts.lua), 2)
  end
  command.check_run_options(opts, "owl.checks.coding")
  local forced = opts.lang and ALIASES[opts.lang]
  return function(final)
    if type(final) ~= "string" then
      error("owl.checks.coding: the solution must be a string, got " .. type(final), 0)
    end
    local lang = forced or M.language(final)
    if not lang then
      return false, "cannot tell the language of the solution: answer with the code alone, "
        .. "in Lua, Python, C or JavaScript"
    end
    local code = text.strip_fences(final)
    local ok, report = syntax.run(lang, code, opts)
    if not ok then return false, report end
    if not M.has_tests(lang, code) then
      return true, report .. "; the code carries no tests of its own, so it was not run"
    end
    if not opts.run then
      return true, report .. "; the code carries tests, not run (owl.checks.coding{ run = true } runs them)"
    end
    local cmd, file, label = runner(lang, opts)
    local passed, run_report = command.run_on(code, { command = cmd, file = file, label = label,
                                                      timeout = opts.timeout, max_output = opts.max_output })
    return passed, report .. "; its tests: " .. run_report
  end
end

return M
