-- owl.providers.openai_stream: what a streamed chat completion's events
-- make. A reader takes the server-sent events one by one (the C parser
-- frames them) and gives back the deltas each completed, then assembles
-- the same normalized response a non-streamed call returns.
--
-- OpenAI's stream: one `data:` event per chunk; `choices[1].delta` carries
-- content, refusal and tool call pieces (merged by their index; the first
-- piece of a call has its id and name); finish_reason comes in a late
-- chunk; with stream_options.include_usage the last chunk has empty
-- choices and the usage; `data: [DONE]` ends it. An `{"error": ...}` chunk
-- is the server giving up mid-stream. Unknown fields (obfuscation,
-- logprobs) are ignored.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")
local http = require("owl.providers.http")

local M = {}

local present = http.present

local Reader = {}
Reader.__index = Reader

-- What the core may take out of a chunk in C (core.sse_pick): the content
-- piece, id, model and finish_reason of an ordinary chunk, which is nearly
-- every one. A chunk with anything else this reader looks at (an error,
-- the usage, a refusal, tool calls) comes whole to reader:event.
Reader.pick = core.sse_pick{
  join = { text = { "choices", 1, "delta", "content" } },
  last = { id = { "id" }, model = { "model" }, finish_reason = { "choices", 1, "finish_reason" } },
  absent = { { "error" }, { "usage" }, { "choices", 1, "delta", "refusal" }, { "choices", 1, "delta", "tool_calls" } },
}

-- M.reader(secrets) -> a reader; secrets redact any error text it builds.
function M.reader(secrets)
  return setmetatable({
    secrets = secrets,
    text = {},      -- content pieces, in order
    refusal = {},   -- refusal pieces
    calls = {},     -- tool call index (0-based, OpenAI's) -> { id, name, args = {pieces} }
    order = {},     -- tool call indexes in the order first seen
    done = false,   -- [DONE] seen
  }, Reader)
end

-- The text received so far, for an error's partial_text.
function Reader:partial_text()
  return table.concat(self.text)
end

function Reader:fail(kind, message, fields)
  fields = fields or {}
  fields.partial_text = self:partial_text()
  return nil, errors.new(kind, errors.redact(message, self.secrets), fields)
end

-- reader:event(ev) -> array of deltas ({ type, text, index }), or nil and
-- an error (an error chunk, a chunk that is not JSON, data after [DONE]).
function Reader:event(ev)
  local data = ev.data
  if self.done then
    return self:fail("protocol", "the stream went on after [DONE]")
  end
  if data == "[DONE]" then
    self.done = true
    self.pick = false -- anything after it is an error: let it come whole, at once
    return {}
  end
  local chunk, msg = json.decode(data)
  if type(chunk) ~= "table" then
    return self:fail("protocol", "a stream chunk is not a JSON object (" .. tostring(msg) .. ")")
  end
  local e = present(chunk.error)
  if e ~= nil then
    local message = type(e) == "table" and present(e.message) or e
    local fields = {}
    if type(e) == "table" then
      for k, from in pairs({ provider_type = "type", provider_code = "code", param = "param" }) do
        local v = present(e[from])
        if type(v) == "string" then fields[k] = errors.redact_prefix(v, self.secrets, errors.MAX_FIELD) end
      end
    end
    return self:fail("http", "the stream failed: " .. tostring(message), fields)
  end
  if type(chunk.usage) == "table" then self.usage = chunk.usage end
  if type(present(chunk.model)) == "string" then self.model = chunk.model end
  if type(present(chunk.id)) == "string" then self.id = chunk.id end
  local deltas = {}
  local choice = type(chunk.choices) == "table" and present(chunk.choices[1]) or nil
  if type(choice) ~= "table" then return deltas end
  local finish = present(choice.finish_reason)
  if type(finish) == "string" then self.finish_reason = finish end
  local delta = present(choice.delta)
  if type(delta) ~= "table" then return deltas end
  local content = present(delta.content)
  if type(content) == "string" and content ~= "" then
    self.text[#self.text + 1] = content
    deltas[#deltas + 1] = { type = "text", text = content }
  end
  local refusal = present(delta.refusal)
  if type(refusal) == "string" and refusal ~= "" then
    self.refusal[#self.refusal + 1] = refusal
    deltas[#deltas + 1] = { type = "refusal", text = refusal }
  end
  local tool_calls = present(delta.tool_calls)
  if type(tool_calls) == "table" then
    for _, tc in ipairs(tool_calls) do
      local index = type(tc) == "table" and present(tc.index) or nil
      if type(index) ~= "number" then
        return self:fail("protocol", "a streamed tool call has no index")
      end
      local call = self.calls[index]
      if call == nil then
        call = { args = {} }
        self.calls[index] = call
        self.order[#self.order + 1] = index
      end
      if type(present(tc.id)) == "string" then call.id = tc.id end
      local fn = present(tc["function"])
      if type(fn) == "table" then
        if type(present(fn.name)) == "string" then call.name = fn.name end
        local args = present(fn.arguments)
        if type(args) == "string" and args ~= "" then
          call.args[#call.args + 1] = args
          deltas[#deltas + 1] = { type = "tool_arguments", text = args, index = index }
        end
      end
    end
  end
  return deltas
end

-- reader:picked(v) -> the deltas of chunks the core picked (Reader.pick):
-- v.text their content, v.id, v.model and v.finish_reason the last ones,
-- each nil when no chunk had it. What reader:event does with such chunks, without the
-- decoding.
function Reader:picked(v)
  if self.done then
    return self:fail("protocol", "the stream went on after [DONE]")
  end
  if v.model then self.model = v.model end
  if v.id then self.id = v.id end
  if v.finish_reason then self.finish_reason = v.finish_reason end
  local content = v.text
  if content == nil or content == "" then return {} end
  self.text[#self.text + 1] = content
  return { { type = "text", text = content } }
end

-- The tool calls as the non-streamed reader gives them.
local function tool_calls(self)
  local out = json.array({})
  for _, index in ipairs(self.order) do
    local call = self.calls[index]
    local raw = table.concat(call.args)
    local c = { id = call.id, name = call.name, arguments_json = raw }
    c.arguments, c.arguments_error = http.tool_arguments(raw)
    out[#out + 1] = c
  end
  return out
end

-- reader:finish() -> the normalized response, or nil and an error when the
-- stream ended before [DONE] (never a silently short answer).
function Reader:finish()
  if not self.done then
    return self:fail("protocol", "the stream ended before [DONE]")
  end
  local usage = self.usage or {}
  local details = present(usage.prompt_tokens_details)
  local cached = type(details) == "table" and present(details.cached_tokens) or nil
  local function n(v) v = present(v); return type(v) == "number" and v or 0 end
  return {
    text = #self.text > 0 and table.concat(self.text) or (#self.refusal == 0 and #self.order == 0 and "" or nil),
    refusal = #self.refusal > 0 and table.concat(self.refusal) or nil,
    tool_calls = tool_calls(self),
    finish_reason = self.finish_reason,
    usage = { input_tokens = n(usage.prompt_tokens), output_tokens = n(usage.completion_tokens),
              cached_input_tokens = type(cached) == "number" and cached or 0 },
    model = self.model,
    id = self.id,
  }
end

return M
