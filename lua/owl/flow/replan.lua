-- owl.flow.replan: BabyAGI's dynamic task creation. After a round of
-- workers the orchestrator reads the objective and every subtask so far
-- with its output (shortened to a budget) and answers, as structured
-- output, {done, subtasks}: whether the objective is met, and the new
-- subtasks the next round runs.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local prompts = require("owl.prompts")
local text = require("owl.text")
local plan_stage = require("owl.flow.plan")
local dag = require("owl.flow.dag")

local M = {}

-- What all outputs shown to the orchestrator (and to the next round's
-- workers) may add up to; each gets an equal share, never under MIN_SHARE.
M.DEFAULT_BYTES = 64 * 1024
M.MIN_SHARE = 256

local function copy(v)
  if type(v) ~= "table" then return v end
  local c = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do c[k] = copy(x) end
  return c
end

-- The answer's JSON Schema, from the plan's: new subtasks have the shape
-- the plan's have (a custom plan schema's extra fields, depends_on), and
-- may be none.
function M.schema_for(plan_schema)
  local subtasks = copy(plan_schema.properties and plan_schema.properties.subtasks)
  if type(subtasks) ~= "table" then
    error("owl.run: replan needs a plan schema with a 'subtasks' property", 3)
  end
  subtasks.minItems = nil
  subtasks.description = "The new subtasks the next round needs; [] when done."
  return {
    type = "object",
    properties = json.object({
      done = { type = "boolean", description = "true when the results so far meet the objective." },
      subtasks = subtasks,
    }, { "done", "subtasks" }),
    required = json.array({ "done", "subtasks" }),
    additionalProperties = false,
  }
end

-- Every output of the run so far, each cut to its share of budget bytes.
function M.shortened(ctx, budget)
  local p = ctx.partial
  local share = math.max(M.MIN_SHARE, math.floor(budget / math.max(1, #p.subtasks)))
  local items = {}
  for i, st in ipairs(p.subtasks) do
    local out = p.outputs[i]
    items[i] = { name = st.name, description = st.description,
                 output = out and text.cap(out, share) or "(no result)" }
  end
  return items
end

-- M.run(ctx, plan, round, opts) -> {done, subtasks}, or nil and an error.
-- opts: json_schema (the answer's), max_rounds, budget (bytes), and
-- max_subtasks (the run's whole count, earlier rounds included).
function M.run(ctx, plan, round, opts)
  local p = ctx.prompts.replan or prompts.replan
  local vars = { problem = ctx.problem, objective = plan.objective, round = round, max_rounds = opts.max_rounds }
  local pieces = prompts.render_pieces(p.user, {
    problem = ctx.problem, objective = plan.objective, round = round, max_rounds = opts.max_rounds,
    results = prompts.sections(p.section, M.shortened(ctx, opts.budget), "replan.section"),
  }, "replan.user")
  pieces = prompts.compact(pieces) -- the encoder then reads a few long strings
  local request = {
    model = ctx:model_for("orchestrator"),
    messages = {
      { role = "system", content = prompts.render(p.system, vars, "replan.system") },
      { role = "user", content = json.rope(pieces) },
    },
    structured = { name = "replan", schema = opts.json_schema },
    stream = ctx.opts.stream or nil,
  }
  local res, err = ctx:call("orchestrator", "the orchestrator", request,
    function(loop) return core.orchestrate(loop, ctx:spec_of(request)) end)
  if not res then return nil, err end
  local secrets = ctx.client.secrets
  local answer
  answer, err = plan_stage.decode(res.text, opts.json_schema, secrets, "the re-plan")
  if not answer then return nil, err end
  if type(answer.done) ~= "boolean" or type(answer.subtasks) ~= "table" then
    return nil, errors.new("invalid", "the re-plan needs done (a boolean) and subtasks (an array)", { plan = answer })
  end
  if answer.done then return answer end
  err = plan_stage.check_subtasks(answer.subtasks, "the re-plan", answer)
  if err then return nil, err end
  local order, derr = dag.resolve(answer.subtasks, dag.lookup(ctx.partial.subtasks))
  if not order then
    err = derr
    err.message, err.plan = errors.redact(err.message, secrets), answer
    return nil, err
  end
  local total = #ctx.partial.subtasks + #answer.subtasks
  if total > opts.max_subtasks then
    return nil, errors.new("invalid", "the re-plan after round " .. round .. " would make " .. total
      .. " subtasks in all, more than max_subtasks (" .. opts.max_subtasks .. "); no worker of it was started",
      { plan = answer })
  end
  return answer
end

return M
