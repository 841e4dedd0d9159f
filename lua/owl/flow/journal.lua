-- owl.flow.journal: resumable runs (owl.run's `journal`). Every answered
-- call of the run is appended to the file as one JSON line, fsynced before
-- the run goes on (core.append_line):
--
--   {"v":1,"role":"workers","name":"part_2","index":2,"hash":"<sha256>","response":{...}}
--
-- `hash` is the SHA-256 of the provider-neutral request in a canonical
-- form (model, messages, structured schema, tools, tool_choice and any
-- other request field; never headers, so never a key); `response` is the
-- normalized response without `raw`. A run given the same journal takes
-- the answer of every request whose hash it holds instead of calling, and
-- calls (and journals) the rest: a run killed at any point and run again
-- pays for no call twice. Since later requests quote earlier answers
-- (dependencies, re-plans, the aggregator), reusing an answer makes the
-- requests after it match too.
local core = require("owl.core")
local json = require("owl.json")
local errors = require("owl.errors")

local M = {}

M.VERSION = 1

-- Request fields that change how owl reads an answer, not the answer.
local NOT_HASHED = { stream = true, on_delta = true, max_retries = true }

local ROPE_MT = getmetatable(json.rope({}))

function M.check_options(opts, level)
  local path = opts.journal
  if path ~= nil and (path == "" or path:find("%z")) then
    error("owl.run: option 'journal' must be a file path, got " .. string.format("%q", path), level + 1)
  end
end

-- ------------------------------------------------------------------ hash

local function is_array(t)
  if json.is_array(t) then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- Appends the canonical form of v to out, as pieces: a string is its
-- length and its bytes (a rope the same, its pieces never joined), an
-- object's keys sorted. Two requests have one form only when equal.
local function canon(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = "s" .. #v .. ":"
    out[#out + 1] = v
  elseif t == "number" then
    out[#out + 1] = "n" .. string.format("%.17g", v) .. ";"
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif v == json.null or v == nil then
    out[#out + 1] = "0"
  elseif t == "table" and getmetatable(v) == ROPE_MT then
    local len = 0
    for _, p in ipairs(v) do len = len + #p end
    out[#out + 1] = "s" .. len .. ":"
    for _, p in ipairs(v) do out[#out + 1] = p end
  elseif t == "table" and is_array(v) then
    out[#out + 1] = "["
    for _, x in ipairs(v) do canon(x, out) end
    out[#out + 1] = "]"
  elseif t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) < type(b) end
      return a < b
    end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      canon(k, out)
      canon(v[k], out)
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = "?" .. t -- a function (a tool's handler is dropped before)
  end
end

-- The request as the model sees it: no owl-only fields, messages without
-- `raw` (a provider's answer kept for Anthropic's thinking blocks, absent
-- from a reused answer), tools as their declarations.
local function neutral(request)
  local r = {}
  for k, v in pairs(request) do
    if not NOT_HASHED[k] then r[k] = v end
  end
  if type(request.messages) == "table" then
    local msgs = {}
    for i, m in ipairs(request.messages) do
      if type(m) == "table" and m.raw ~= nil then
        local c = {}
        for k, v in pairs(m) do if k ~= "raw" then c[k] = v end end
        m = c
      end
      msgs[i] = m
    end
    r.messages = msgs
  end
  if type(request.tools) == "table" then
    local tools = {}
    for i, t in ipairs(request.tools) do
      if type(t) == "table" and type(t.handler) == "function" then
        t = { name = t.name, description = t.description, parameters = t.parameters }
      end
      tools[i] = t
    end
    r.tools = tools
  end
  return r
end

-- M.hash(request) -> the hex SHA-256 of the neutral request's canonical form.
function M.hash(request)
  local out = {}
  canon(neutral(request), out)
  return core.sha256(out)
end

-- ------------------------------------------------------------------ file

local Journal = {}
Journal.__index = Journal

-- An entry read back, or nil.
local function entry(line)
  local e = json.decode(line)
  if type(e) ~= "table" or type(e.hash) ~= "string" or type(e.response) ~= "table" then return nil end
  return e
end

-- Reads the journal at path: the answers by hash (each a queue, oldest
-- first), the valid lines, and warnings. A last line without its newline
-- was torn by a crash mid-write: it is dropped.
local function load(path)
  local f = io.open(path, "rb")
  if not f then return {}, {}, {}, false end
  local data = f:read("*a")
  f:close()
  local answers, lines, warnings = {}, {}, {}
  local torn = false
  local pos, n = 1, 0
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local line = data:sub(pos, (nl or #data + 1) - 1)
    n = n + 1
    local e = line ~= "" and entry(line) or nil
    if e then
      local q = answers[e.hash]
      if not q then q = {}; answers[e.hash] = q end
      q[#q + 1] = e.response
      lines[#lines + 1] = line
    elseif not nl then
      torn = true
      warnings[#warnings + 1] = "the journal's last line (" .. #line .. " bytes, line " .. n
        .. ") is torn, as a run killed while writing it leaves it: ignored"
    elseif line ~= "" then
      warnings[#warnings + 1] = "line " .. n .. " of the journal is not a journal entry: ignored"
    end
    if not nl then break end
    pos = nl + 1
  end
  return answers, lines, warnings, torn
end

-- Writes lines to path anew: a temporary file beside it, fsynced line by
-- line, renamed over it (a crash leaves the old file or the new one).
local function rewrite(path, lines)
  local tmp = path .. ".owl-tmp"
  os.remove(tmp)
  for _, line in ipairs(lines) do
    local ok, err = core.append_line(tmp, line)
    if not ok then return nil, err end
  end
  if #lines == 0 then
    local f, err = io.open(tmp, "wb")
    if not f then return nil, err end
    f:close()
  end
  local ok, err = os.rename(tmp, path)
  if not ok then return nil, err end
  return true
end

-- M.attach(ctx) -> nil, or an `invalid` error when the journal cannot be
-- read or written. Sets ctx.journal; warnings (a torn last line) go to
-- ctx:warn.
function M.attach(ctx)
  local path = ctx.opts.journal
  if path == nil then return nil end
  local answers, lines, warnings, torn = load(path)
  for _, w in ipairs(warnings) do ctx:warn(w) end
  if torn then
    local ok, err = rewrite(path, lines)
    if not ok then return errors.new("invalid", "cannot rewrite the journal without its torn line: " .. tostring(err)) end
  end
  -- created now, so a path that cannot be written fails before any call
  local f, err = io.open(path, "ab")
  if not f then return errors.new("invalid", "cannot open the journal: " .. tostring(err)) end
  f:close()
  ctx.journal = setmetatable({ path = path, answers = answers, secrets = ctx.client.secrets }, Journal)
  return nil
end

-- journal:take(request) -> a journalled answer to this request (marked
-- `reused`), or nil. Each answer is taken once.
function Journal:take(request)
  local q = self.answers[M.hash(request)]
  if not q or #q == 0 then return nil end
  local res = table.remove(q, 1)
  res.reused = true
  return res
end

local function replace_plain(text, needle)
  local out, init = {}, 1
  while true do
    local s, e = text:find(needle, init, true)
    if not s then break end
    out[#out + 1] = text:sub(init, s - 1)
    out[#out + 1] = "[redacted]"
    init = e + 1
  end
  if init == 1 then return text end
  out[#out + 1] = text:sub(init)
  return table.concat(out)
end

-- journal:write(role, tag, request, res) -> nil, or a warning when the
-- line could not be written (the run goes on; later lines are not tried).
function Journal:write(role, tag, request, res)
  if self.broken then return nil end
  local response = {}
  for k, v in pairs(res) do
    if k ~= "raw" and k ~= "attempts" and k ~= "reused" then response[k] = v end
  end
  local e = { v = M.VERSION, role = role, hash = M.hash(request), response = response }
  local keys = { "v", "role" }
  if tag and tag.name ~= nil then e.name = tag.name; keys[#keys + 1] = "name" end
  if tag and tag.index ~= nil then e.index = tag.index; keys[#keys + 1] = "index" end
  keys[#keys + 1] = "hash"
  keys[#keys + 1] = "response"
  local ok, line = pcall(json.encode, json.object(e, keys), { invalid_utf8 = "replace" })
  local err
  if ok then
    -- a model may echo anything it was sent: the client's secrets never
    -- reach the file (the request, with its headers, is only hashed)
    for _, secret in ipairs(self.secrets or {}) do
      if secret ~= "" then line = replace_plain(line, secret) end
    end
    ok, err = core.append_line(self.path, line)
  else
    err = line
  end
  if ok then return nil end
  self.broken = true
  return "cannot write the journal (" .. tostring(err) .. "); later calls are not journalled"
end

return M
