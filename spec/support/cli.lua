-- spec/support/cli.lua: bin/owl as a process, under the Lua running the
-- specs, from the repository root (where busted runs them).
--
--   local cli = require("support.cli")
--   local out, err, code = cli.owl({ "run", "--base-url", server.url, "p" }, "OPENAI_API_KEY=sk-test")
local mock = require("support.mock")

local cli = {}

-- The command that runs the Lua running the specs.
cli.lua = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- cli.owl(args, env) -> bin/owl's stdout, stderr and exit code, run with
-- args (each a word of its own) and env, NAME=value words set on top of
-- this process's environment (a later word for the same name wins).
function cli.owl(args, env)
  local cmd = "env " .. (env or "") .. " " .. cli.lua .. " bin/owl"
  for _, a in ipairs(args) do cmd = cmd .. " " .. mock.shell_quote(a) end
  return mock.sh(cmd)
end

return cli
