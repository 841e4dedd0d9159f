-- owl.providers.anthropic_stream: what a streamed Messages API answer's
-- events make. A reader takes the server-sent events one by one (the C
-- parser frames them), gives back the deltas each completed, and rebuilds
-- the message object a non-streamed call gets, which the provider's
-- normalize reads: both paths answer alike, a forced tool's input included.
--
-- Anthropic's stream: message_start (the message without its content, the
-- input usage), then per content block content_block_start, its
-- content_block_deltas (text_delta, input_json_delta, thinking_delta,
-- signature_delta, citations_delta) and content_block_stop; message_delta
-- (stop_reason, stop_details, the usage so far: cumulative, so it replaces,
-- never adds); message_stop ends it. ping may come anywhere; error is the
-- server giving up after its 200. Unknown events and delta types are
-- ignored, as the SDKs ignore them. The type is the SSE event name; an
-- event without one (a gateway that drops `event:` lines) is read by its
-- data's "type".
--
-- This file knows nothing of owl.providers.anthropic: the provider hands
-- in its normalize (no two files that call each other).
local json = require("owl.json")
local errors = require("owl.errors")
local http = require("owl.providers.http")

local M = {}

local present = http.present

-- The events that build the message; every other name but error is ignored.
local MESSAGE_EVENTS = {
  message_start = true, content_block_start = true, content_block_delta = true,
  content_block_stop = true, message_delta = true, message_stop = true,
}

-- Blocks whose input arrives as input_json_delta pieces (the SDK's list:
-- the client's tools and the server's).
local HAS_INPUT = { tool_use = true, server_tool_use = true }

local Reader = {}
Reader.__index = Reader

-- M.reader(client, request, normalize [, answer_name]) -> a reader.
-- normalize(message, client, request) reads the rebuilt message (the
-- provider's); answer_name names the forced tool whose input is the answer
-- (the client's structured = "tool"), or nil. Its input_json_delta pieces
-- are given as "text" deltas, not "tool_arguments": they are the answer's
-- text as it arrives (the JSON as the server sends it; the response's text
-- is the decoded input encoded again, the same value), so a progress count
-- or a live view sees the answer grow, and partial_text holds it.
function M.reader(client, request, normalize, answer_name)
  if type(normalize) ~= "function" then
    error("owl.providers.anthropic_stream: reader needs the provider's normalize function, got "
      .. type(normalize), 2)
  end
  return setmetatable({
    client = client,
    request = request,
    normalize = normalize,
    answer_name = answer_name,
    secrets = http.secrets_of(client),
    message = nil,  -- message_start's message, updated by message_delta
    blocks = {},    -- content block index (0-based, Anthropic's) -> { block, kind, pieces, json, stopped }
    answer = nil,   -- the index of the forced tool's block
    text = {},      -- the text so far: text deltas (and the answer's JSON pieces)
    bad_input = {}, -- tool_use id -> { raw, message } for an input that is not JSON
    stopped = false, -- message_stop seen
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

-- A block index as Anthropic sends it: an integer from 0.
local function block_index(v)
  v = present(v)
  if type(v) == "number" and v >= 0 and v == math.floor(v) and v < 2^53 then return v end
  return nil
end

-- The `error` event: {"type": "error", "error": {"type", "message"}} (an
-- overloaded_error, say), an http error with the provider's type.
function Reader:server_error(data)
  local decoded = json.decode(data)
  local e = type(decoded) == "table" and present(decoded.error) or nil
  local fields = {}
  local message
  if type(e) == "table" then
    message = present(e.message)
    -- a server's text may be megabytes: only what an error keeps is redacted
    if type(message) == "string" then message = errors.redact_prefix(message, self.secrets, errors.MAX_MESSAGE) end
    local t = present(e.type)
    if type(t) == "string" then fields.provider_type = errors.redact_prefix(t, self.secrets, errors.MAX_FIELD) end
  elseif type(e) == "string" then
    message = errors.redact_prefix(e, self.secrets, errors.MAX_MESSAGE)
  end
  local request_id = type(decoded) == "table" and present(decoded.request_id) or nil
  if type(request_id) == "string" then
    fields.request_id = errors.redact_prefix(request_id, self.secrets, errors.MAX_FIELD)
  end
  if type(message) ~= "string" then
    message = errors.redact_prefix(data, self.secrets, http.QUOTE_BYTES)
  end
  return self:fail("http", "the stream failed: " .. message, fields)
end

-- A block's text and input made whole: the pieces joined, the input JSON
-- decoded. An input that is not JSON (a stream cut by max_tokens inside
-- it) leaves the block without input and is remembered by the call's id:
-- that call failed, and finish says why.
function Reader:close_block(rec)
  if rec.stopped then return end
  rec.stopped = true
  local block = rec.block
  if rec.kind == "text" then
    block.text = table.concat(rec.pieces)
  elseif rec.kind == "thinking" then
    block.thinking = table.concat(rec.pieces)
  end
  -- no pieces (or only ""): the input is the one the block started with, {}
  if #rec.json > 0 then
    local raw = table.concat(rec.json)
    local value, msg = json.decode(raw)
    if value == nil then
      block.input = nil
      local id = present(block.id)
      if type(id) == "string" then self.bad_input[id] = { raw = raw, message = msg } end
    else
      block.input = value
    end
  end
end

local handlers = {}

function handlers.message_start(self, data)
  if self.message then return self:fail("protocol", "a second message_start in one stream") end
  local m = present(data.message)
  if type(m) ~= "table" then return self:fail("protocol", "message_start has no message object") end
  local message = http.shallow_copy(m)
  local usage = present(m.usage)
  message.usage = type(usage) == "table" and http.shallow_copy(usage) or {}
  self.message = message
  return {}
end

function handlers.content_block_start(self, data)
  local index = block_index(data.index)
  local block = present(data.content_block)
  if index == nil or type(block) ~= "table" then
    return self:fail("protocol", "content_block_start needs an index and a content_block object")
  end
  if self.blocks[index] then
    return self:fail("protocol", "content block " .. string.format("%d", index) .. " started twice")
  end
  block = http.shallow_copy(block)
  local kind = present(block.type)
  local rec = { block = block, kind = kind, pieces = {}, json = {}, stopped = false }
  self.blocks[index] = rec
  local deltas = {}
  -- a block may start with some of its text (the API starts it empty):
  -- it is part of the text the deltas add up to
  if kind == "text" and type(present(block.text)) == "string" and block.text ~= "" then
    rec.pieces[1] = block.text
    self.text[#self.text + 1] = block.text
    deltas[1] = { type = "text", text = block.text }
  elseif kind == "thinking" and type(present(block.thinking)) == "string" and block.thinking ~= "" then
    rec.pieces[1] = block.thinking
    deltas[1] = { type = "thinking", text = block.thinking }
  elseif kind == "tool_use" and self.answer_name ~= nil and self.answer == nil and block.name == self.answer_name then
    self.answer = index
  end
  return deltas
end

function handlers.content_block_delta(self, data)
  local index = block_index(data.index)
  local delta = present(data.delta)
  if index == nil or type(delta) ~= "table" then
    return self:fail("protocol", "content_block_delta needs an index and a delta object")
  end
  local rec = self.blocks[index]
  if rec == nil or rec.stopped then
    return self:fail("protocol", "a delta for content block " .. string.format("%d", index)
      .. (rec and ", which had stopped" or ", which had not started"))
  end
  local dtype = present(delta.type)
  -- a delta of a type the block does not take is ignored, as the SDK does
  if dtype == "text_delta" then
    local s = present(delta.text)
    if rec.kind == "text" and type(s) == "string" and s ~= "" then
      rec.pieces[#rec.pieces + 1] = s
      self.text[#self.text + 1] = s
      return { { type = "text", text = s } }
    end
  elseif dtype == "input_json_delta" then
    local s = present(delta.partial_json)
    if HAS_INPUT[rec.kind] and type(s) == "string" and s ~= "" then
      rec.json[#rec.json + 1] = s
      if index == self.answer then
        self.text[#self.text + 1] = s
        return { { type = "text", text = s } }
      elseif rec.kind == "tool_use" then
        return { { type = "tool_arguments", text = s, index = index } }
      end
      -- a server tool's input is kept, not handed out: it is no call of the caller's
    end
  elseif dtype == "thinking_delta" then
    local s = present(delta.thinking)
    if rec.kind == "thinking" and type(s) == "string" and s ~= "" then
      rec.pieces[#rec.pieces + 1] = s
      return { { type = "thinking", text = s } }
    end
  elseif dtype == "signature_delta" then
    -- one per thinking block, after its text: it replaces
    local s = present(delta.signature)
    if rec.kind == "thinking" and type(s) == "string" then rec.block.signature = s end
  elseif dtype == "citations_delta" then
    local c = present(delta.citation)
    if rec.kind == "text" and c ~= nil then
      local list = present(rec.block.citations)
      if type(list) ~= "table" then
        list = json.array({})
        rec.block.citations = list
      end
      list[#list + 1] = c
    end
  end
  return {}
end

function handlers.content_block_stop(self, data)
  local index = block_index(data.index)
  local rec = index and self.blocks[index]
  if not rec then
    return self:fail("protocol", "content_block_stop for a content block that had not started")
  end
  self:close_block(rec)
  return {}
end

function handlers.message_delta(self, data)
  local delta = present(data.delta)
  if type(delta) == "table" then
    -- stop_reason, stop_sequence, stop_details, and whatever comes next;
    -- never the content or the usage this reader keeps
    for k, v in pairs(delta) do
      if k ~= "content" and k ~= "usage" then self.message[k] = v end
    end
  end
  local usage = present(data.usage)
  if type(usage) == "table" then
    -- the counts so far, not an increment: each replaces the last; a null
    -- leaves the count as it was
    for k, v in pairs(usage) do
      if v ~= json.null then self.message.usage[k] = v end
    end
  end
  return {}
end

function handlers.message_stop(self)
  self.stopped = true
  return {}
end

-- reader:event(ev) -> array of deltas ({ type, text, index }), or nil and
-- an error: an error event, an event that is not a JSON object, one out
-- of order (before message_start, after message_stop).
function Reader:event(ev)
  local kind, data = ev.event, ev.data
  local decoded, msg
  if kind == nil or kind == "" or kind == "message" then
    decoded, msg = json.decode(data)
    kind = type(decoded) == "table" and present(decoded.type) or nil
  end
  if kind == "error" then return self:server_error(data) end
  if not MESSAGE_EVENTS[kind] then return {} end -- ping, or news to this reader
  if self.stopped then
    return self:fail("protocol", "the stream went on after message_stop (" .. kind .. ")")
  end
  if decoded == nil then decoded, msg = json.decode(data) end
  if type(decoded) ~= "table" or json.is_array(decoded) then
    return self:fail("protocol", "a " .. kind .. " event is not a JSON object"
      .. (msg and " (" .. tostring(msg) .. ")" or ""))
  end
  if kind ~= "message_start" and not self.message then
    return self:fail("protocol", "a " .. kind .. " event came before message_start")
  end
  return handlers[kind](self, decoded)
end

-- reader:finish() -> the normalized response (through normalize, as a
-- non-streamed answer), or nil and an error when the stream ended before
-- message_stop (never a silently short answer).
function Reader:finish()
  if not self.stopped then
    return self:fail("protocol", "the stream ended before message_stop")
  end
  local indexes = {}
  for index, rec in pairs(self.blocks) do
    self:close_block(rec) -- a block the server never stopped
    indexes[#indexes + 1] = index
  end
  table.sort(indexes)
  local content = json.array({})
  for i, index in ipairs(indexes) do content[i] = self.blocks[index].block end
  local message = self.message
  message.content = content
  local res, err = self.normalize(message, self.client, self.request)
  if not res then return nil, err end
  -- a call whose input JSON broke off: its raw text and why, as the OpenAI
  -- reader says it of arguments that are not JSON
  for _, call in ipairs(res.tool_calls or {}) do
    local bad = call.id ~= nil and self.bad_input[call.id] or nil
    if bad then
      call.arguments = nil
      call.arguments_json = bad.raw
      call.arguments_error = "arguments are not valid JSON: " .. tostring(bad.message)
    end
  end
  return res
end

return M
