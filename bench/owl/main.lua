-- bench/owl: owl as a peer of ../shared/bench. The whole flow is owl.run:
-- the plan call with its schema validated, every worker call in flight at
-- once, the aggregator with every output in its body.
--
-- Contract: env OPENAI_BASE_URL; optional SUBTASKS (sent as x-fake-subtasks);
-- prints "final_len=<chars> workers=<n>"; exits non-zero on any failure.
local owl = require("owl")

local subtasks = os.getenv("SUBTASKS")
-- STREAM=1: every call of the flow streams (the harness checks that it did)
local stream_env = os.getenv("STREAM") or "0"
if stream_env ~= "0" and stream_env ~= "1" then
  io.stderr:write("owl bench: STREAM must be 0 or 1, got ", stream_env, "\n")
  os.exit(2)
end
local client = owl.client{
  base_url = os.getenv("OPENAI_BASE_URL") or "http://127.0.0.1:18080/v1",
  api_key = "sk-test",
  model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
  headers = (subtasks and subtasks ~= "") and { ["x-fake-subtasks"] = subtasks } or nil,
}
-- the benchmark asks for N subtasks on purpose: allow that many (owl.run's
-- default max_subtasks, 100, guards against a runaway plan)
local n = tonumber(subtasks)
local result, err = owl.run(client, "Write a small python library for statistics on streaming data, with tests.",
  { max_subtasks = n and math.max(n, 100) or nil, stream = stream_env == "1" })
if not result then
  io.stderr:write("owl: ", tostring(err), "\n")
  os.exit(1)
end
io.stdout:write(string.format("final_len=%d workers=%d\n", #result.final, #result.outputs))
