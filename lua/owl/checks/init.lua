-- owl.checks: ready-made checks for owl.run's `check` option, each a
-- function(final, result) -> ok, report that a user may call, wrap or
-- compose with their own.
--
--   owl.checks.syntax(lang)   parse without running (lua, python, c, javascript)
--   owl.checks.command{...}   run a command on the solution in a temporary folder
--   owl.checks.coding{...}    the default for coding runs: language, syntax, tests
--
-- Only command{} and coding{ run = true } run anything the model wrote;
-- see owl.checks.process for where and how.
local M = {
  process = require("owl.checks.process"),
  command = require("owl.checks.command").new,
  syntax = require("owl.checks.syntax").new,
  coding = require("owl.checks.coding").new,
  language = require("owl.checks.coding").language,
  has_tests = require("owl.checks.coding").has_tests,
}

return M
