-- owl.prompts: the default prompts of the orchestrator-workers flow, as
-- templates a user edits in Lua, and the renderer that fills them.
--
-- A placeholder is `{identifier}`. Braces around anything else (a JSON
-- example, code) are plain text, so a prompt can show `{"a": 1}` without
-- escaping. Values are inserted as they are and never expanded again, so a
-- worker's output that happens to contain `{name}` stays as written.
-- A value may be a string, a number, a boolean or a table (a plan field
-- such as an array of names): a table is written as JSON.
local prompts = {}

local checkpoint = require("owl.task").checkpoint
local concat = table.concat

local DEFAULTS = {
  orchestrator = {
    system = table.concat({
      "You are the orchestrator of a team of software engineers.",
      "Break the user's problem into a small number of independent subtasks",
      "(usually 2 to 6) that different engineers can solve in parallel,",
      "each without seeing the others' work.",
      "Give every subtask a short identifier as its name (letters, digits",
      "and underscores) and a description precise enough to implement",
      "from alone: what to build, its interface (function names,",
      "arguments, return values) and how it fits the whole.",
      "Answer in JSON with the overall objective and the list of subtasks.",
    }, " "),
    user = "{problem}",
    -- A plan that could not be used is asked for again (max_replans): the
    -- model sees its answer and this, {errors} naming what was wrong.
    retry = table.concat({
      "That plan cannot be used: {errors}",
      "Answer again with the whole plan, as JSON that fits the schema.",
    }, "\n"),
  },
  worker = {
    system = table.concat({
      "You are a software engineer on a team. You solve exactly one",
      "subtask of a larger problem; other engineers write the other parts,",
      "and your code will be merged with theirs.",
      "Follow the interface the subtask describes.",
      "Return only code: no explanations before or after it.",
    }, " "),
    user = table.concat({
      "Problem:\n{problem}\n",
      "Objective:\n{objective}\n",
      "Your subtask: {name}\n{description}\n",
      "{dependencies}{earlier}Return only the code for this subtask.",
    }, "\n"),
    -- {dependencies} and {earlier} above are "" when there is nothing to
    -- show, else one of these with {sections} filled (one `section` per
    -- output): the outputs of the subtasks this one depends on (whole),
    -- and those of earlier rounds of a re-planned run (shortened).
    dependencies = "The subtasks yours depends on are done; their results:\n\n{sections}",
    earlier = "Results of earlier rounds:\n\n{sections}",
    section = "### {name}\n{output}\n\n",
  },
  aggregator = {
    system = table.concat({
      "You are the lead engineer of a team. Each engineer solved one",
      "subtask of the problem and gave you a code snippet.",
      "Integrate the snippets into one complete, working solution:",
      "remove duplicates, reconcile names and interfaces, and fill any gap",
      "between the parts.",
      "Return only code: no explanations before or after it.",
    }, " "),
    user = table.concat({
      "Problem:\n{problem}\n",
      "Objective:\n{objective}\n",
      "Snippets, one per subtask:\n",
      "{outputs}Return only the complete code.",
    }, "\n"),
    section = "### {name}\n{output}\n\n",
  },
  -- After each round of a run with `replan`, the orchestrator sees every
  -- subtask so far with its (shortened) output, and answers {done, subtasks}.
  replan = {
    system = table.concat({
      "You are the orchestrator of a team of software engineers.",
      "A round of subtasks is done. Judge from their results whether the",
      "objective is met. If it is, answer done = true and no subtasks.",
      "If it is not, answer done = false and only the new subtasks still",
      "needed, each with a short identifier as its name (not one used",
      "before) and a description precise enough to implement from alone.",
      "Answer in JSON.",
    }, " "),
    user = table.concat({
      "Problem:\n{problem}\n",
      "Objective:\n{objective}\n",
      "Round {round} of at most {max_rounds} is done. The subtasks so far and their results:\n",
      "{results}Is the objective met? If not, which new subtasks are needed?",
    }, "\n"),
    section = "### {name}\n{description}\n\nResult:\n{output}\n\n",
  },
  -- The aggregator again, when a check of its solution failed (owl.run's
  -- `check`): its own answer and the check's report, not the snippets, so
  -- a repair costs the same however many workers there were.
  repair = {
    system = table.concat({
      "You are the lead engineer of a team. You integrated your engineers'",
      "snippets into one solution, and a check of that solution failed.",
      "Fix the solution so that the check passes: find the cause in the",
      "report, change what it calls for and keep the rest.",
      "Return only code: no explanations before or after it.",
    }, " "),
    user = table.concat({
      "Problem:\n{problem}\n",
      "Objective:\n{objective}\n",
      "Your solution:\n```\n{solution}\n```\n",
      "The check failed (attempt {attempt}). Its report:\n{report}\n",
      "Return only the complete corrected code.",
    }, "\n"),
  },
}

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deep_copy(x) end
  return c
end

-- The module's own templates are copies, so editing them never changes
-- what prompts.copy() hands out.
prompts.orchestrator = deep_copy(DEFAULTS.orchestrator)
prompts.worker = deep_copy(DEFAULTS.worker)
prompts.aggregator = deep_copy(DEFAULTS.aggregator)
prompts.repair = deep_copy(DEFAULTS.repair)
prompts.replan = deep_copy(DEFAULTS.replan)

function prompts.copy()
  return deep_copy(DEFAULTS)
end

-- A template split once into literal pieces and placeholder names:
-- { "lit", {name = "x"}, "lit", ... }. A flow renders the same few
-- templates once per worker (a thousand times at a thousand workers), so
-- parsed templates are kept by their text; the tokens are never changed
-- after parsing. The cache is emptied when it reaches PARSED_MAX entries:
-- a caller rendering ever new templates cannot grow it without bound.
local PARSED_MAX = 256
local parsed, nparsed = {}, 0

local function parse(template)
  local cached = parsed[template]
  if cached then return cached end
  if nparsed >= PARSED_MAX then parsed, nparsed = {}, 0 end
  local tokens = {}
  local pos = 1
  while true do
    local s, e, name = template:find("{([%a_][%w_]*)}", pos)
    if not s then break end
    if s > pos then tokens[#tokens + 1] = template:sub(pos, s - 1) end
    tokens[#tokens + 1] = { name = name }
    pos = e + 1
  end
  if pos <= #template then tokens[#tokens + 1] = template:sub(pos) end
  parsed[template], nparsed = tokens, nparsed + 1
  return tokens
end

local function check_template(template, label)
  if type(template) ~= "string" then
    error("owl.prompts: " .. label .. " must be a string, got " .. type(template), 3)
  end
end

local function check_vars(vars, label)
  if vars ~= nil and type(vars) ~= "table" then
    error("owl.prompts: vars for " .. label .. " must be a table, got " .. type(vars), 3)
  end
  return vars or {}
end

local function missing(label, name, level)
  error("owl.prompts: " .. label .. " needs {" .. name .. "}, which was not given", level + 1)
end

-- A table value as prompt text: JSON, which a model reads and which shows
-- an array's items and an object's keys unambiguously. Required here, not
-- at load: the templates alone need no C module.
local function as_json(value, name, label, level)
  local ok, s = pcall(require("owl.json").encode, value)
  if not ok then
    error("owl.prompts: " .. label .. ": {" .. name .. "} cannot be written as JSON: " .. tostring(s), level + 1)
  end
  return s
end

-- Appends value to out as pieces: a string or number is one piece, a
-- boolean its word, json.null "null"; a table is spliced piece by piece (splice: an array of
-- pieces) or written as JSON. Empty strings add nothing.
local function append(out, value, name, label, splice, level)
  local t = type(value)
  if t == "string" then
    if value ~= "" then out[#out + 1] = value end
  elseif t == "number" or t == "boolean" then
    out[#out + 1] = tostring(value)
  elseif t == "userdata" and value == require("owl.json").null then
    out[#out + 1] = "null" -- a plan field the model left null
  elseif t == "table" and not splice then
    out[#out + 1] = as_json(value, name, label, level + 1)
  elseif t == "table" then
    for i = 1, #value do
      if i % 256 == 0 then checkpoint() end -- a thousand outputs' pieces
      local p = value[i]
      if type(p) == "number" then p = tostring(p) end
      if type(p) ~= "string" then
        error("owl.prompts: " .. label .. ": piece " .. i .. " of {" .. name .. "} is a " .. type(p)
          .. ", not a string", level + 1)
      end
      if p ~= "" then out[#out + 1] = p end
    end
  else
    error("owl.prompts: " .. label .. ": {" .. name .. "} must be a "
      .. (splice and "string, number, boolean or array of pieces" or "string, number, boolean or table") .. ", got " .. t, level + 1)
  end
end

local function expand(tokens, vars, label, splice, out, level)
  for _, tok in ipairs(tokens) do
    if type(tok) == "string" then
      out[#out + 1] = tok
    else
      local value = vars[tok.name]
      if value == nil then missing(label, tok.name, level + 1) end
      append(out, value, tok.name, label, splice, level + 1)
    end
  end
  return out
end

-- prompts.render(template, vars [, label]) -> string.
function prompts.render(template, vars, label)
  label = label or "template"
  check_template(template, label)
  vars = check_vars(vars, label)
  return table.concat(expand(parse(template), vars, label, false, {}, 2))
end

-- prompts.render_pieces(template, vars [, label]) -> array of strings, in
-- order; a table value is spliced, so big values are never joined here.
function prompts.render_pieces(template, vars, label)
  label = label or "template"
  check_template(template, label)
  vars = check_vars(vars, label)
  -- not a tail call: the error levels count this frame
  local pieces = expand(parse(template), vars, label, true, {}, 2)
  return pieces
end

-- prompts.compact(pieces [, run_bytes]) -> a new array of the same text in
-- fewer pieces: neighbouring pieces shorter than run_bytes (16 KiB) are
-- joined into runs of about that size; a piece that long already stays as
-- it is, never copied. A thousand outputs' sections are five thousand
-- short strings scattered over the heap: the encoder reading them one by
-- one waits on memory far more than it escapes bytes, and the wait lands
-- in one host frame. Joined here, between checkpoints, it reads a few
-- long strings instead.
prompts.RUN_BYTES = 16384
function prompts.compact(pieces, run_bytes)
  run_bytes = run_bytes or prompts.RUN_BYTES
  if type(pieces) ~= "table" then error("owl.prompts: compact expects an array of pieces, got " .. type(pieces), 2) end
  local out, run, k, size = {}, {}, 0, 0
  local function flush_run()
    if k > 0 then out[#out + 1] = concat(run, "", 1, k) end
    k, size = 0, 0
  end
  for i = 1, #pieces do
    if i % 64 == 0 then checkpoint() end
    local p = pieces[i]
    if type(p) ~= "string" then
      error("owl.prompts: compact: piece " .. i .. " is a " .. type(p) .. ", not a string", 2)
    end
    if #p >= run_bytes then
      flush_run()
      out[#out + 1] = p
    else
      k, size = k + 1, size + #p
      run[k] = p
      if size >= run_bytes then flush_run() end
    end
  end
  flush_run()
  return out
end

-- prompts.sections(section_template, items [, label]) -> array of pieces,
-- one run of the template per item ({name =, output =}). The template is
-- parsed once; each item's output is a piece of its own.
function prompts.sections(section_template, items, label)
  label = label or "section"
  check_template(section_template, label)
  if type(items) ~= "table" then
    error("owl.prompts: items for " .. label .. " must be an array, got " .. type(items), 2)
  end
  local tokens = parse(section_template)
  local out = {}
  for i = 1, #items do
    if i % 16 == 0 then checkpoint() end -- a thousand sections do not hold a host's frame
    local item = items[i]
    if type(item) ~= "table" then
      error("owl.prompts: " .. label .. ": item " .. i .. " is a " .. type(item) .. ", not a table", 2)
    end
    for _, tok in ipairs(tokens) do
      if type(tok) == "string" then
        out[#out + 1] = tok
      else
        local value = item[tok.name]
        if value == nil then
          error("owl.prompts: " .. label .. " needs {" .. tok.name .. "}, which was not given (item " .. i .. ")", 2)
        end
        append(out, value, tok.name, label, true, 2)
      end
    end
  end
  return out
end

return prompts
