-- examples/analysis.lua: the orchestrator-workers pattern on data. The
-- orchestrator plans an analysis of a CSV file; workers clean the data,
-- find the trends and draw a chart, each through tools that read the file
-- and compute in Lua (examples/analysis/tools.lua), all in parallel; the
-- aggregator writes a Markdown report that links the chart. The report
-- (report.md) and the chart (an SVG) land in the output folder.
--
--   lua5.4 examples/analysis.lua [output-folder [file.csv]]
--
-- Default data: examples/data/sales.csv; default folder: a new temporary
-- one. Against OpenAI when OPENAI_API_KEY is set (model from OWL_MODEL,
-- default gpt-4o-mini), else against Anthropic when ANTHROPIC_API_KEY is
-- set (default claude-haiku-4-5); against owl's mock LLM server when
-- OWL_DEMO_MOCK_URL is set (examples/analysis.sh does that when there is no
-- key, after loading the scripted session examples/analysis/mock_session.json
-- into it). Exit status: 0 the report is written, 1 the run failed.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local owl = require("owl")
local tools_mod = require("analysis.tools")
local S = owl.schema

local function say(...) io.stderr:write("owl analysis: ", ...) io.stderr:write("\n") end
local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The output folder: the one given (made if missing), or a new one.
local out = arg[1]
if out then
  local made = os.execute("mkdir -p " .. quote(out)) -- true on 5.2+, 0 on 5.1
  if made ~= true and made ~= 0 then say("cannot make the folder ", out) os.exit(1) end
else
  local p = io.popen('mktemp -d "${TMPDIR:-/tmp}/owl-analysis.XXXXXX"')
  out = p and p:read("*l")
  if p then p:close() end
  if not out or out == "" then say("cannot make a temporary folder") os.exit(1) end
end
local csv_path = arg[2] or (here .. "/data/sales.csv")
local csv_name = csv_path:match("[^/]+$")

local problem = table.concat({
  "Analyse the monthly sales in the CSV file " .. csv_name .. " (one row per month and region).",
  "Clean the data: find the dirty rows and say why each is dirty.",
  "Find the trends in revenue by region and month.",
  "Make a chart of the monthly revenue by region.",
  "Then write a short Markdown report for the sales team.",
}, " ")

-- The plan: the usual objective and subtasks, each with a role that says
-- which tools its worker gets.
local plan_schema = S.object{
  { "objective", S.string{ description = "The goal of the whole analysis, in one or two sentences." } },
  { "subtasks", S.array(S.object{
      { "name", S.string{ description = "A short unique identifier, like clean_data." } },
      { "role", S.enum{ "clean", "trends", "chart", description = "clean: find the dirty rows (tools read_csv, "
          .. "describe_problems); trends: statistics over the clean rows (column_stats, pivot); chart: draw a "
          .. "chart (pivot, write_svg_chart)." } },
      { "description", S.string{ description = "What to find out or make, precisely enough to do it alone." } },
    }, { minItems = 1, maxItems = 6 }) },
}

local prompts = owl.prompts.copy()
prompts.orchestrator.system = table.concat({
  "You are the head of a data analysis team.",
  "Split the user's analysis into a few independent subtasks (usually 3) that analysts do in parallel,",
  "each without seeing the others' work. Give each a short identifier as its name, a role (which",
  "decides the tools its analyst gets) and a precise description. Answer in JSON.",
}, " ")
prompts.worker.system = table.concat({
  "You are a data analyst on a team. You do exactly one subtask of a larger analysis.",
  "Take every number from your tools; never compute or invent one yourself.",
  "When you are done, answer in a few lines of Markdown with the numbers the tools gave.",
  "Use tables and inline code.",
}, " ")
prompts.worker.user = table.concat({
  "Problem:\n{problem}\n",
  "Objective:\n{objective}\n",
  "Your subtask: {name} (role: {role})\n{description}\n",
  "{dependencies}{earlier}Use your tools, then give your findings.",
}, "\n")
prompts.aggregator.system = table.concat({
  "You are the lead analyst. Your analysts each did one subtask and reported their findings.",
  "Write one report for the sales team in Markdown: a title, then data quality, trends and the chart.",
  "Keep their numbers exactly. Link every chart they wrote as a Markdown image, ![title](file.svg),",
  "with the file name exactly as they reported it. Use tables and inline code.",
  "Return only the report.",
}, " ")
prompts.aggregator.user = table.concat({
  "Problem:\n{problem}\n",
  "Objective:\n{objective}\n",
  "The analysts' findings, one section per subtask:\n",
  "{outputs}Write the report.",
}, "\n")

local mock_url = os.getenv("OWL_DEMO_MOCK_URL")
local client
if mock_url then
  say("MOCK MODE: talking to owl's local mock LLM server at ", mock_url)
  say("its answers are SCRIPTED (examples/analysis/mock_session.json, written by hand), not a model's;")
  say("the tools are real: they read the CSV and write the SVG. Set OPENAI_API_KEY or ANTHROPIC_API_KEY",
    " to use a real model.")
  if arg[2] then say("note: the scripted session answers for sales.csv, whatever the file given") end
  client = owl.client{ base_url = mock_url, api_key = "mock-key", model = "mock-model" }
else
  local key = os.getenv("OPENAI_API_KEY")
  local provider = (key == nil or key == "") and os.getenv("ANTHROPIC_API_KEY") and "anthropic" or "openai"
  local model = os.getenv("OWL_MODEL") or (provider == "anthropic" and "claude-haiku-4-5" or "gpt-4o-mini")
  client = owl.client{ provider = provider, model = model }
  say("REAL API: ", provider, " at ", client.base_url, " with model ", model)
end

local tools = tools_mod.new{ csv = csv_path, out = out }
local started = os.time()
local result, err = owl.run(client, problem, {
  schema = plan_schema,
  prompts = prompts,
  output = "text", -- a report is prose: keep the answers whole (the default keeps only fenced code)
  max_steps = 6,
  tools_for = function(subtask) return tools.sets[subtask.role] end,
  on_event = function(event, data)
    if event == "plan" then
      say(string.format("plan: %s (%d subtasks)", data.objective, #data.subtasks))
      for i, st in ipairs(data.subtasks) do
        io.stderr:write(string.format("  %d. %s [%s]: %s\n", i, st.name, tostring(st.role), st.description))
      end
    elseif event == "worker_tool_done" then
      say(string.format("worker %s called %s: %s", data.name, data.tool,
        data.ok and ("ok, " .. tostring(data.bytes) .. " bytes") or ("error: " .. tostring(data.error))))
    elseif event == "worker_done" then
      say(string.format("worker %d (%s) %s", data.index, data.name, data.ok and "done" or ("failed: " .. tostring(data.err))))
    elseif event == "aggregate_start" then
      say("aggregating: writing the report")
    end
  end,
})
if not result then
  say("failed: ", tostring(err))
  os.exit(1)
end

local report_path = out .. "/report.md"
local f = assert(io.open(report_path, "wb"))
f:write(result.final, "\n")
f:close()

-- A chart the report links but no tool wrote is a broken image: say so.
local written = {}
for _, c in ipairs(tools.charts) do written[c.file] = true end
local linked = 0
for target in result.final:gmatch("!%[[^%]]*%]%(([^)%s]+)%)") do
  linked = linked + 1
  if not written[target] then say("note: the report links ", target, ", which no tool wrote") end
end
if linked == 0 then say("note: the report links no chart") end

io.stdout:write(result.final, "\n")
for _, c in ipairs(tools.charts) do say("chart: ", c.path) end
say("report: ", report_path)
local u = result.usage.total
say(string.format("%d calls, %d input and %d output tokens, %d s%s", u.calls, u.input_tokens, u.output_tokens,
  os.time() - started, mock_url and " (MOCK, scripted)" or ""))
