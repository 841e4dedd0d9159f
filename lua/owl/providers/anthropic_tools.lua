-- owl.providers.anthropic_tools: owl's provider-neutral tool transcript in
-- Anthropic's Messages shape. Neutral messages:
--   { role = "assistant", content = text or nil, tool_calls = { { id, name, arguments, arguments_json }, ... } }
--   { role = "tool", tool_call_id = id, name = name, content = text, is_error = bool }
-- become an assistant message whose content is its text block (when there
-- is text) and one `tool_use` block per call, and, for each run of
-- consecutive tool messages, one user message of `tool_result` blocks
-- (`is_error = true` on an error): Anthropic wants every result of a turn
-- in the message right after it. owl.tool values in `tools` become {
-- name, description, input_schema }; `tool_choice` "auto", "none" and
-- "required" become { type = "auto" | "none" | "any" }. Anything else
-- passes as it is.
local json = require("owl.json")
local tool = require("owl.tool")

local M = {}

local function has_tool_messages(messages)
  for _, m in ipairs(messages) do
    if type(m) == "table" and (m.role == "tool" or m.tool_calls ~= nil) then return true end
  end
  return false
end

-- The thinking blocks of the Anthropic message an assistant turn came
-- from (m.raw, as owl.agent keeps it): with extended thinking, the API
-- wants them back, signatures intact, before the turn's tool_use blocks.
local function thinking_blocks(raw, content)
  if type(raw) ~= "table" or raw.type ~= "message" or type(raw.content) ~= "table" then return end
  for _, b in ipairs(raw.content) do
    if type(b) == "table" and (b.type == "thinking" or b.type == "redacted_thinking") then
      content[#content + 1] = b
    end
  end
end

local function assistant(m)
  local content = json.array({})
  thinking_blocks(m.raw, content)
  local text = m.content
  if type(text) == "string" and text ~= "" or (type(text) == "table" and #text > 0) then
    content[#content + 1] = { type = "text", text = text }
  end
  for _, tc in ipairs(m.tool_calls) do
    local input = type(tc) == "table" and tc.arguments or nil
    -- arguments that were not an object: the call is answered with an
    -- error, and its input is written as an empty object (the API's rule)
    if type(input) ~= "table" or json.is_array(input) then input = {} end
    content[#content + 1] = { type = "tool_use", id = tc.id, name = tc.name, input = input }
  end
  return { role = "assistant", content = content }
end

local function result(m)
  local block = { type = "tool_result", tool_use_id = m.tool_call_id }
  local content = m.content
  -- an empty result is no content at all: an empty text block is refused
  if content ~= nil and content ~= "" then block.content = content end
  if m.is_error then block.is_error = true end
  return block
end

-- M.messages(messages) -> messages in Anthropic's shape: the same table
-- when it holds no neutral tool message.
function M.messages(messages)
  if not has_tool_messages(messages) then return messages end
  local out = json.array({})
  local results -- the user message collecting a run of tool results
  for _, m in ipairs(messages) do
    if type(m) == "table" and m.role == "tool" then
      if results == nil then
        results = { role = "user", content = json.array({}) }
        out[#out + 1] = results
      end
      results.content[#results.content + 1] = result(m)
    else
      results = nil
      if type(m) == "table" and m.role == "assistant" and type(m.tool_calls) == "table" then
        out[#out + 1] = assistant(m)
      else
        out[#out + 1] = m
      end
    end
  end
  return out
end

-- M.tools(tools) -> the request's tools in Anthropic's shape (the list
-- itself when it holds no owl.tool).
function M.tools(tools)
  if not tool.any(tools) then return tools end -- the request's own, as they are
  local out = json.array({})
  for i, t in ipairs(tools) do
    if tool.is_tool(t) then
      out[i] = { name = t.name, description = t.description, input_schema = t.parameters }
    else
      out[i] = t
    end
  end
  return out
end

local CHOICE = { auto = "auto", none = "none", required = "any" }

-- M.tool_choice(choice) -> Anthropic's tool_choice for owl's words.
function M.tool_choice(choice)
  if type(choice) == "string" and CHOICE[choice] then return { type = CHOICE[choice] } end
  return choice
end

return M
