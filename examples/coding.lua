-- examples/coding.lua: the orchestrator-workers coding flow on a small
-- problem, ending by making sure the solution works. The orchestrator
-- splits the problem into subtasks, one worker writes the code of each (all
-- in parallel), the aggregator integrates them; then owl.checks.coding
-- checks the syntax and RUNS THE CODE'S OWN TESTS (model-written code, run
-- as you, in a temporary folder under $TMPDIR or /tmp, for at most 60 s,
-- without your API keys in its environment). While they fail, the
-- aggregator gets the report and repairs its solution, up to twice.
--
--   lua5.4 examples/coding.lua ["problem text"]
--
-- Against OpenAI when OPENAI_API_KEY is set (model from OWL_MODEL, default
-- gpt-4o-mini), else against Anthropic when ANTHROPIC_API_KEY is set
-- (default claude-haiku-4-5); against owl's mock LLM server when
-- OWL_DEMO_MOCK_URL is set (examples/demo.sh does that when there is no
-- key): the mock then plays a scripted session, written by hand.
-- Exit status: 0 verified, 3 a solution whose check still fails, 1 failed.
local owl = require("owl")

local problem = arg[1] or table.concat({
  "Write a small Lua module `stats` for streaming statistics:",
  "an accumulator with push(x), count(), mean(), variance() (the sample",
  "variance, by Welford's method), min() and max(). The file runs its own",
  "assert-based tests when run as a script (lua stats.lua), not when required.",
}, " ")

local function say(...) io.stderr:write("owl demo: ", ...) io.stderr:write("\n") end
local function indented(s) return "    " .. tostring(s):gsub("\n", "\n    ") end

local mock_url = os.getenv("OWL_DEMO_MOCK_URL")
local client, where
if mock_url then
  say("MOCK MODE: talking to owl's local mock LLM server at ", mock_url)
  say("its answers are SCRIPTED (spec/mock/sessions/coding_demo.js, written by hand), not a model's;")
  say("the check is real: it runs the code's tests. Set OPENAI_API_KEY or ANTHROPIC_API_KEY to use a real model.")
  if arg[1] then say("note: the scripted session answers the demo problem, whatever the problem given") end
  client = owl.client{ base_url = mock_url, api_key = "mock-key", model = "mock-model",
                       headers = { ["x-mock-session"] = "coding_demo" } }
  where = " (MOCK, scripted)"
else
  local key = os.getenv("OPENAI_API_KEY")
  local provider = (key == nil or key == "") and os.getenv("ANTHROPIC_API_KEY") and "anthropic" or "openai"
  local model = os.getenv("OWL_MODEL") or (provider == "anthropic" and "claude-haiku-4-5" or "gpt-4o-mini")
  client = owl.client{ provider = provider, model = model }
  say("REAL API: ", provider, " at ", client.base_url, " with model ", model)
  where = ""
end

local started = os.time()
local result, err = owl.run(client, problem, {
  check = owl.checks.coding{ run = true },
  max_repairs = 2,
  on_event = function(event, data)
    if event == "plan" then
      say(string.format("plan: %s (%d subtasks)", data.objective, #data.subtasks))
      for i, st in ipairs(data.subtasks) do io.stderr:write(string.format("  %d. %s: %s\n", i, st.name, st.description)) end
    elseif event == "worker_done" then
      say(string.format("worker %d (%s) %s", data.index, data.name, data.ok and "done" or ("failed: " .. tostring(data.err))))
    elseif event == "aggregate_start" then
      say("aggregating")
    elseif event == "check_start" then
      say("check ", data.attempt, ": checking the syntax and running the tests")
    elseif event == "check_done" then
      if data.ok then
        say(string.format("check %d: PASSED in %.2f s:\n%s", data.attempt, data.duration, indented(data.report)))
      else
        say(string.format("check %d: FAILED in %.2f s:\n%s", data.attempt, data.duration,
          indented(data.report or data.err)))
      end
    elseif event == "repair_start" then
      say("repair ", data["repair"], ": the aggregator gets its solution and the report, and fixes it")
    end
  end,
})
if not result then
  say("failed: ", tostring(err))
  os.exit(1)
end

io.stdout:write("\n---- final solution ----\n", result.final, "\n------------------------\n")
local u = result.usage
say(string.format("%d calls, %d input and %d output tokens, %d s%s",
  u.total.calls, u.total.input_tokens, u.total.output_tokens, os.time() - started, where))
local failed = #result.checks - (result.verified and 1 or 0)
if result.verified then
  say(string.format("VERIFIED: the final solution passes its tests (after %d failed check%s and %d repair%s)",
    failed, failed == 1 and "" or "s", #result.checks - 1, #result.checks == 2 and "" or "s"))
else
  say("NOT VERIFIED: the solution still fails its check after ", #result.checks - 1, " repairs")
  os.exit(3)
end
