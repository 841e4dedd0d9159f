-- owl.providers.openai_tools: owl's provider-neutral tool transcript in
-- OpenAI's Chat Completions shape. Neutral messages:
--   { role = "assistant", content = text or nil, tool_calls = { { id, name, arguments, arguments_json }, ... } }
--   { role = "tool", tool_call_id = id, name = name, content = text, is_error = bool }
-- become an assistant message with `tool_calls` ({ id, type = "function",
-- function = { name, arguments } }) and `tool` messages. OpenAI has no
-- error flag on a tool result: an error's text says so ("Error: ...").
-- owl.tool values in `tools` become { type = "function", function = {
-- name, description, parameters } }; any other entry, and any message in
-- OpenAI's own shape already, passes as it is.
local json = require("owl.json")
local tool = require("owl.tool")

local M = {}

-- Whether messages hold any neutral tool message (else they go as they are).
local function has_tool_messages(messages)
  for _, m in ipairs(messages) do
    if type(m) == "table" and (m.role == "tool" or m.tool_calls ~= nil) then return true end
  end
  return false
end
M.has_tool_messages = has_tool_messages

local function call_of(tc)
  if type(tc) == "table" and tc.type == "function" and type(tc["function"]) == "table" then return tc end
  local args = type(tc) == "table" and tc.arguments_json or nil
  if type(args) ~= "string" then
    -- arguments the model never sent as text: write the decoded ones
    local decoded = type(tc) == "table" and tc.arguments or nil
    args = type(decoded) == "table" and json.encode(decoded) or "{}"
  end
  return { id = tc.id, type = "function", ["function"] = { name = tc.name, arguments = args } }
end

-- M.messages(messages) -> messages in OpenAI's shape: the same table when
-- it holds no neutral tool message.
function M.messages(messages)
  if not has_tool_messages(messages) then return messages end
  local out = json.array({})
  for i, m in ipairs(messages) do
    if type(m) == "table" and m.role == "assistant" and type(m.tool_calls) == "table" then
      -- only the fields OpenAI knows: the neutral message may carry more
      -- (raw, the provider's answer it came from)
      local w = { role = "assistant", content = m.content, name = m.name }
      if #m.tool_calls > 0 then -- OpenAI refuses an empty list
        local calls = json.array({})
        for j, tc in ipairs(m.tool_calls) do calls[j] = call_of(tc) end
        w.tool_calls = calls
      end
      if w.content == nil then w.content = json.null end
      out[i] = w
    elseif type(m) == "table" and m.role == "tool" then
      local content = m.content
      if type(content) ~= "string" then content = content == nil and "" or content end
      if m.is_error then content = "Error: " .. tostring(content) end
      out[i] = { role = "tool", tool_call_id = m.tool_call_id, content = content }
    else
      out[i] = m
    end
  end
  return out
end

-- M.tools(tools) -> the request's tools in OpenAI's shape (owl.tool values
-- written; the list itself when it holds none).
function M.tools(tools)
  if not tool.any(tools) then return tools end -- the request's own, as they are
  local out = json.array({})
  for i, t in ipairs(tools) do
    if tool.is_tool(t) then
      out[i] = { type = "function", ["function"] = { name = t.name, description = t.description, parameters = t.parameters } }
    else
      out[i] = t
    end
  end
  return out
end

return M
