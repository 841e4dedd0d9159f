-- luarocks --lua-version=5.4 make rockspec/owl-scm-1.rockspec --deps-mode=none
-- (from the repository root; bare `luarocks` on Debian targets Lua 5.1)
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
  type = "builtin",
  modules = {
    ["owl.core"] = {
      sources = {
        "csrc/core.c", "csrc/budget.c", "csrc/buffer.c", "csrc/clock.c", "csrc/loop.c", "csrc/transfer.c", "csrc/flow.c",
        "csrc/json_encode.c", "csrc/json_decode.c", "csrc/regex.c", "csrc/sse.c", "csrc/pick.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "pcre2-8" },
      incdirs = { "$(CURL_INCDIR)", "$(PCRE2_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(PCRE2_LIBDIR)" },
    },
    ["owl"] = "lua/owl/init.lua",
    ["owl.cli"] = "lua/owl/cli.lua",
    ["owl.cli.progress"] = "lua/owl/cli/progress.lua",
    ["owl.client"] = "lua/owl/client.lua",
    ["owl.errors"] = "lua/owl/errors.lua",
    ["owl.flow"] = "lua/owl/flow/init.lua",
    ["owl.flow.aggregate"] = "lua/owl/flow/aggregate.lua",
    ["owl.flow.context"] = "lua/owl/flow/context.lua",
    ["owl.flow.plan"] = "lua/owl/flow/plan.lua",
    ["owl.flow.workers"] = "lua/owl/flow/workers.lua",
    ["owl.json"] = "lua/owl/json.lua",
    ["owl.prompts"] = "lua/owl/prompts.lua",
    ["owl.schema"] = "lua/owl/schema.lua",
    ["owl.sse"] = "lua/owl/sse.lua",
    ["owl.stream"] = "lua/owl/stream.lua",
    ["owl.task"] = "lua/owl/task.lua",
    ["owl.text"] = "lua/owl/text.lua",
    ["owl.validate"] = "lua/owl/validate.lua",
    ["owl.providers.anthropic"] = "lua/owl/providers/anthropic.lua",
    ["owl.providers.anthropic_stream"] = "lua/owl/providers/anthropic_stream.lua",
    ["owl.providers.http"] = "lua/owl/providers/http.lua",
    ["owl.providers.openai"] = "lua/owl/providers/openai.lua",
    ["owl.providers.openai_stream"] = "lua/owl/providers/openai_stream.lua",
  },
  install = {
    bin = { owl = "bin/owl" },
  },
}
