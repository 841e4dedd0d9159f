-- examples/coding.lua: the orchestrator-workers coding flow on a small
-- problem. The orchestrator splits it into subtasks, one worker writes the
-- code of each (all in parallel), the aggregator integrates them.
--
--   lua5.4 examples/coding.lua ["problem text"]
--
-- Against the real OpenAI API when OPENAI_API_KEY is set (model from
-- OWL_MODEL, default gpt-4o-mini); against owl's mock LLM server when
-- OWL_DEMO_MOCK_URL is set (examples/demo.sh does that when there is no key).
local owl = require("owl")

local problem = arg[1] or table.concat({
  "Write a small Lua module `stats` for streaming statistics:",
  "an accumulator with push(x), mean(), variance() (Welford's method),",
  "min() and max(), plus a few assert-based tests.",
}, " ")

local mock_url = os.getenv("OWL_DEMO_MOCK_URL")
local client
if mock_url then
  io.stderr:write("owl demo: MOCK MODE: talking to owl's local mock LLM server at ", mock_url, "\n",
    "owl demo: its answers are canned echoes, not a model's; set OPENAI_API_KEY to use the real API\n")
  client = owl.client{ base_url = mock_url, api_key = "mock-key", model = "mock-model",
                       headers = { ["x-mock-subtasks"] = "3" } }
else
  local model = os.getenv("OWL_MODEL") or "gpt-4o-mini"
  client = owl.client{ model = model }
  io.stderr:write("owl demo: REAL API: ", client.base_url, " with model ", model, "\n")
end

local started = os.time()
local result, err = owl.run(client, problem, {
  on_event = function(event, data)
    if event == "plan" then
      io.stderr:write(string.format("owl demo: plan: %s (%d subtasks)\n", data.objective, #data.subtasks))
      for i, st in ipairs(data.subtasks) do io.stderr:write(string.format("  %d. %s: %s\n", i, st.name, st.description)) end
    elseif event == "worker_done" then
      io.stderr:write(string.format("owl demo: worker %d (%s) %s\n", data.index, data.name,
        data.ok and "done" or ("failed: " .. tostring(data.err))))
    elseif event == "aggregate_start" then
      io.stderr:write("owl demo: aggregating\n")
    end
  end,
})
if not result then
  io.stderr:write("owl demo: failed: ", tostring(err), "\n")
  os.exit(1)
end

io.stdout:write("\n---- final solution ----\n", result.final, "\n------------------------\n")
local u = result.usage
io.stderr:write(string.format("owl demo: %d calls, %d input and %d output tokens, %d s%s\n",
  u.total.calls, u.total.input_tokens, u.total.output_tokens, os.time() - started,
  mock_url and " (MOCK)" or ""))
