-- luarocks --lua-version=5.4 make rockspec/owl-scm-1.rockspec
-- (from the repository root; bare `luarocks` on Debian targets Lua 5.1, whose
-- build LuaJIT loads too). rockspec/owl-0.2.0-1.rockspec is the same rock at
-- the release tag; spec/install_spec.lua keeps the two in step.
rockspec_format = "3.0"
package = "owl"
version = "scm-1"
source = {
  url = "git+https://example.invalid/owl.git",
}
description = {
  summary = "The LLM orchestrator-workers pattern for Lua, on a libcurl C core",
  detailed = [[
owl runs one orchestrator call that returns a schema-checked plan, one
worker call per subtask, all in flight at once on libcurl's multi
interface, and an aggregator call that merges their outputs. The C core
(owl.core) holds the HTTP loop, the JSON codec and PCRE2; workflows,
prompts, schemas and providers are Lua.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  -- library only: Debian keeps curl/curl.h under the multiarch include
  -- directory, which the compiler searches but LuaRocks does not
  CURL = { library = "curl" },
  PCRE2 = { header = "pcre2.h", library = "pcre2-8" },
}
build = {
  -- LuaRocks' builtin backend compiles in the current directory: csrc/*.o
  -- beside the sources and ./owl/core.so, which a later `lua` or `bin/owl`
  -- run in the checkout loads whatever Lua it is (a 5.1 build under 5.4
  -- dies on an undefined symbol). The Makefile's `rock` target compiles in
  -- one step straight into the rock's own lib directory in the tree being
  -- installed to, with LuaRocks' compiler, flags and library locations.
  type = "make",
  build_target = "rock",
  build_variables = {
    BUILD = "$(LIBDIR)",
    CC = "$(CC)",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_CFLAGS = "-I$(CURL_INCDIR)",
    CURL_LIBS = "-L$(CURL_LIBDIR) -lcurl",
    PCRE2_CFLAGS = "-I$(PCRE2_INCDIR)",
    PCRE2_LIBS = "-L$(PCRE2_LIBDIR) -lpcre2-8",
  },
  -- the library is already in place; the Lua modules and bin/owl are
  -- LuaRocks' to copy (it wraps bin/owl to run under this tree's Lua)
  install_pass = false,
  install = {
    lua = {
      ["owl.agent"] = "lua/owl/agent.lua",
      ["owl.checks.coding"] = "lua/owl/checks/coding.lua",
      ["owl.checks.command"] = "lua/owl/checks/command.lua",
      ["owl.checks.init"] = "lua/owl/checks/init.lua",
      ["owl.checks.process"] = "lua/owl/checks/process.lua",
      ["owl.checks.syntax"] = "lua/owl/checks/syntax.lua",
      ["owl.cli"] = "lua/owl/cli.lua",
      ["owl.cli.progress"] = "lua/owl/cli/progress.lua",
      ["owl.client"] = "lua/owl/client.lua",
      ["owl.core_loader"] = "lua/owl/core_loader.lua",
      ["owl.errors"] = "lua/owl/errors.lua",
      ["owl.flow.aggregate"] = "lua/owl/flow/aggregate.lua",
      ["owl.flow.check"] = "lua/owl/flow/check.lua",
      ["owl.flow.context"] = "lua/owl/flow/context.lua",
      ["owl.flow.dag"] = "lua/owl/flow/dag.lua",
      ["owl.flow.init"] = "lua/owl/flow/init.lua",
      ["owl.flow.journal"] = "lua/owl/flow/journal.lua",
      ["owl.flow.limits"] = "lua/owl/flow/limits.lua",
      ["owl.flow.plan"] = "lua/owl/flow/plan.lua",
      ["owl.flow.replan"] = "lua/owl/flow/replan.lua",
      ["owl.flow.worker_call"] = "lua/owl/flow/worker_call.lua",
      ["owl.flow.workers"] = "lua/owl/flow/workers.lua",
      ["owl.init"] = "lua/owl/init.lua",
      ["owl.json"] = "lua/owl/json.lua",
      ["owl.nvim"] = "lua/owl/nvim.lua",
      ["owl.prompts"] = "lua/owl/prompts.lua",
      ["owl.providers.anthropic"] = "lua/owl/providers/anthropic.lua",
      ["owl.providers.anthropic_stream"] = "lua/owl/providers/anthropic_stream.lua",
      ["owl.providers.anthropic_tools"] = "lua/owl/providers/anthropic_tools.lua",
      ["owl.providers.http"] = "lua/owl/providers/http.lua",
      ["owl.providers.openai"] = "lua/owl/providers/openai.lua",
      ["owl.providers.openai_stream"] = "lua/owl/providers/openai_stream.lua",
      ["owl.providers.openai_tools"] = "lua/owl/providers/openai_tools.lua",
      ["owl.ratelimit"] = "lua/owl/ratelimit.lua",
      ["owl.retry"] = "lua/owl/retry.lua",
      ["owl.schema"] = "lua/owl/schema.lua",
      ["owl.sse"] = "lua/owl/sse.lua",
      ["owl.stream"] = "lua/owl/stream.lua",
      ["owl.task"] = "lua/owl/task.lua",
      ["owl.text"] = "lua/owl/text.lua",
      ["owl.tool"] = "lua/owl/tool.lua",
      ["owl.uv"] = "lua/owl/uv.lua",
      ["owl.validate"] = "lua/owl/validate.lua",
    },
    bin = { owl = "bin/owl" },
  },
}
