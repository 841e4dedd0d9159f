-- spec/support/flow.lua: what the flow specs share: a client of either
-- provider on the mock, the prompt text of a request the mock logged, and
-- the tool that the tool-loop specs (workers' and owl.agent's) call.
local owl = require("owl")
local mock = require("support.mock")

local M = {}

M.providers = { "openai", "anthropic" }

-- A client of provider on server, with the mock's headers and any other
-- client options.
function M.client(server, provider, headers, extra)
  -- max_retries = 0: a scripted failure fails its call (spec/retry_spec.lua retries)
  local o = { api_key = "sk-flow", headers = headers, max_retries = 0 }
  if provider == "anthropic" then
    o.provider, o.base_url, o.model = "anthropic", server.base, "claude-test"
  else
    o.base_url, o.model = server.url, "gpt-test"
  end
  for k, v in pairs(extra or {}) do o[k] = v end
  return owl.client(o)
end

local function text_of(content)
  if type(content) == "string" then return content end
  local parts = {}
  for _, b in ipairs(content or {}) do
    if type(b) == "table" and type(b.text) == "string" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts)
end

-- The decoded body and the last user text of each logged request, in
-- arrival order: { {body =, user =, structured = name or nil}, ... }.
function M.requests(server)
  local out = {}
  for i, req in ipairs(server:requests()) do
    local body = mock.json_decode(req.body)
    local msgs = body.messages or {}
    local name
    if body.response_format then name = body.response_format.json_schema.name end
    if body.tool_choice then name = body.tool_choice.name end
    if body.output_config then name = "output_config" end
    out[i] = { body = body, user = text_of(msgs[#msgs] and msgs[#msgs].content), structured = name }
  end
  return out
end

-- The one logged request whose prompt contains every needle (plain text).
function M.find(reqs, ...)
  local needles, found = { ... }, nil
  for _, r in ipairs(reqs) do
    local all = true
    for _, n in ipairs(needles) do
      if not r.user:find(n, 1, true) then all = false; break end
    end
    if all then
      assert(found == nil, "more than one request holds " .. table.concat(needles, ", "))
      found = r
    end
  end
  return found
end

-- The worker request of subtask name: the one whose own "Your subtask:"
-- line, right after the problem and the objective (one line each), names
-- it (outputs quoted later, in a dependent's or the aggregator's prompt,
-- may hold other such lines).
function M.worker(reqs, name)
  local found
  for _, r in ipairs(reqs) do
    local own = r.user:match("^Problem:\n[^\n]*\n\nObjective:\n[^\n]*\n\nYour subtask: ([^\n]*)\n")
    if own == name and not r.structured then
      assert(found == nil, "two worker requests for " .. name)
      found = r
    end
  end
  return assert(found, "no worker request for " .. name)
end

-- The JSON schema a structured request carried, for either provider.
function M.schema_of(body)
  if body.response_format then return body.response_format.json_schema.schema end
  if body.output_config then return body.output_config.format.schema end
  for _, t in ipairs(body.tools or {}) do
    if t.name == body.tool_choice.name then return t.input_schema end
  end
end

-- An owl.tool "add" that answers a + b as text. With pause (seconds) its
-- handler first sleeps that long: a handler that waits inside its task.
function M.add_tool(pause)
  local S = owl.schema
  return owl.tool{
    name = "add", description = "Adds two numbers.",
    parameters = S.object{ { "a", S.number() }, { "b", S.number() } },
    handler = function(args)
      if pause then owl.sleep(pause) end
      return tostring(args.a + args.b)
    end,
  }
end

return M
