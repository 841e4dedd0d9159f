-- spec/provider_fuzz_spec.lua: the providers' readers on mutated recorded
-- responses ("owl 5 of 6" §6). Every body and stream in
-- ../shared/fixtures/real/ is mutated (byte flips, truncation, duplicated
-- and deleted slices, splices from another recording, JSON tokens, and
-- JSON-aware edits: a value swapped for another type, a key deleted, an
-- event dropped, repeated or renamed) and read by openai/anthropic `read`
-- and by their stream readers, the stream framed by owl's C SSE parser fed
-- in random pieces. Every outcome must be a normalized response or an owl
-- error (errors.is), never a Lua error; a slice of the mutations also goes
-- over real HTTP through the mock to client:chat.
--
-- Deterministic: iteration i of a group draws from a generator seeded by
-- (seed, group, i), so a failure names its seed and iteration and
--   OWL_FUZZ_SEED=s OWL_FUZZ_ITERATION=i spec/run.sh --lua 5.4 spec/provider_fuzz_spec.lua
-- replays exactly that input on the same Lua (its bytes are also written to a file the
-- failure names). OWL_FUZZ_ITERATIONS and OWL_FUZZ_SECONDS change the
-- bounds (each group stops at whichever comes first); OWL_FUZZ_VERBOSE=1
-- prints how many inputs each group read and how they ended.
local owl = require("owl")
local json = require("owl.json")
local errors = require("owl.errors")
local sse = require("owl.sse")
local openai = require("owl.providers.openai")
local anthropic = require("owl.providers.anthropic")
local mock = require("support.mock")
local transfer = require("support.transfer")
local socket = require("socket")

local SEED = tonumber(os.getenv("OWL_FUZZ_SEED") or "") or 20261202
local ITERATIONS = tonumber(os.getenv("OWL_FUZZ_ITERATIONS") or "") or 1500
local SECONDS = tonumber(os.getenv("OWL_FUZZ_SECONDS") or "") or 2
local ONLY = tonumber(os.getenv("OWL_FUZZ_ITERATION") or "")
local HTTP_ITERATIONS = 12 -- per provider and mode, over the mock

-- ------------------------------------------------------------------ random

-- Park and Miller's minimal standard generator: exact in doubles and in
-- integers alike, so every Lua draws the same sequence.
local function rng_for(group, i)
  local x = (SEED * 7919 + group * 104729 + i * 15485863) % 2147483646 + 1
  local r = {}
  function r.int(n) -- 1..n
    x = x * 16807 % 2147483647
    return x % n + 1
  end
  function r.pick(list) return list[r.int(#list)] end
  return r
end

-- ------------------------------------------------------------------ corpus

local fixtures = { openai = { json = {}, stream = {} }, anthropic = { json = {}, stream = {} } }
local all_bodies = {}
for _, name in ipairs(mock.fixture_names()) do
  local fx = mock.fixture(name)
  fx.name = name
  local kind = (fx.body:match("^data:") or fx.body:match("^event:")) and "stream" or "json"
  local list = fixtures[fx.provider][kind]
  list[#list + 1] = fx
  all_bodies[#all_bodies + 1] = fx.body
end

-- ------------------------------------------------------------------ mutations

local TOKENS = {
  "null", "true", "false", "0", "-1", "1e999", "-1e999", "1.5", "9007199254740993", '""', '"x"', "[]", "{}",
  "[", "]", "{", "}", ",", ":", '"', "\\", "\\u0000", "\\ud800", "\n", "\r\n", "\n\n", "data: ", "event: ",
  "[DONE]", "message_stop", "content_block_delta", '"index":', '"type":"error"', '"error":{"message":"m"}',
  "\xff", "\xc3", "\xe2\x82", "\0",
}

local function splice(s, at, cut, insert) -- replaces cut bytes at position at (1-based) with insert
  return s:sub(1, at - 1) .. insert .. s:sub(at + cut)
end

local BYTE_MUTATIONS = {
  flip = function(r, s)
    if #s == 0 then return string.char(r.int(256) - 1) end
    return splice(s, r.int(#s), 1, string.char(r.int(256) - 1))
  end,
  truncate = function(r, s) return s:sub(1, r.int(#s + 1) - 1) end,
  duplicate = function(r, s)
    if #s == 0 then return s end
    local a = r.int(#s)
    local b = math.min(#s, a + r.int(64) - 1)
    return splice(s, r.int(#s + 1), 0, s:sub(a, b))
  end,
  delete = function(r, s)
    if #s == 0 then return s end
    return splice(s, r.int(#s), r.int(32), "")
  end,
  splice = function(r, s)
    local other = r.pick(all_bodies)
    local a = r.int(#other)
    return splice(s, r.int(#s + 1), r.int(16) - 1, other:sub(a, a + r.int(200) - 1))
  end,
  token = function(r, s)
    return splice(s, r.int(#s + 1), r.int(3) - 1, r.pick(TOKENS))
  end,
}
local BYTE_NAMES = { "flip", "truncate", "duplicate", "delete", "splice", "token" }

-- A number past double range (which decodes as inf): the mock's encoder
-- cannot write one, so it goes in as this string and is replaced after.
local BIG = "__owl_fuzz_1e999__"

-- A value of some JSON type, for swaps (the mock's codec: mock.null is null).
local function any_value(r)
  local k = r.int(12)
  if k == 1 then return mock.null end
  if k == 2 then return r.int(2) == 1 end
  if k == 3 then return r.int(2000) - 1000 end
  if k == 4 then return r.int(2) == 1 and 1.5e300 or BIG end
  if k == 5 then return -0.25 end
  if k == 6 then return "" end
  if k == 7 then return "caf\xc3\xa9 \xf0\x9f\x98\x80" end
  if k == 8 then return {} end
  if k == 9 then return { 1, "two", mock.null } end
  if k == 10 then return { type = "text", text = "t", index = 0 } end
  if k == 11 then return { { type = "tool_use", id = "x", name = "n", input = "not an object" } } end
  return "stop"
end

-- Every (table, key) in a decoded document, for JSON-aware edits, keys
-- in sorted order: pairs' order differs between Luas and between runs
-- (5.4 seeds its string hashes), and a seed must pick the same slot.
local function slots(v, out)
  if type(v) == "table" and v ~= mock.null then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) < type(b) end
      return a < b
    end)
    for _, k in ipairs(keys) do
      out[#out + 1] = { v, k }
      slots(v[k], out)
    end
  end
  return out
end

-- A JSON-aware edit of text holding one JSON document, or nil when it holds none.
local function json_edit(r, text)
  local doc = mock.json_decode(text, true)
  if doc == nil then return nil end
  local all = slots(doc, {})
  if #all == 0 then return mock.json_encode(any_value(r)) end
  local how = r.int(4)
  for _ = 1, r.int(3) do
    local slot = r.pick(all)
    local t, k = slot[1], slot[2]
    if how == 1 and type(k) == "string" then
      t[k] = nil -- a key deleted
    elseif how == 2 then
      t[k] = mock.null
    else
      t[k] = any_value(r)
    end
  end
  local ok, out = pcall(mock.json_encode, doc)
  return ok and (out:gsub('"' .. BIG .. '"', "1e999")) or nil
end

-- A stream's events as written: blocks separated by a blank line.
local function blocks_of(body)
  local out = {}
  for block in body:gmatch("(.-)\n\n") do out[#out + 1] = block end
  return out
end

local EVENT_NAMES = { "message_start", "content_block_start", "content_block_delta", "content_block_stop",
  "message_delta", "message_stop", "ping", "error", "message", "" }

-- An event-level edit of a stream: one event's data edited as JSON, an
-- event dropped, repeated, moved or renamed.
local function stream_edit(r, body)
  local blocks = blocks_of(body)
  if #blocks == 0 then return body end
  local i = r.int(#blocks)
  local how = r.int(5)
  if how == 1 then
    local block = blocks[i]
    local data = block:match("data: ?([^\n]*)")
    local edited = data and json_edit(r, data)
    if edited then blocks[i] = block:gsub("data: ?[^\n]*", function() return "data: " .. edited end, 1) end
  elseif how == 2 then
    table.remove(blocks, i)
  elseif how == 3 then
    table.insert(blocks, r.int(#blocks + 1), blocks[i])
  elseif how == 4 then
    local b = table.remove(blocks, i)
    table.insert(blocks, r.int(#blocks + 1), b)
  else
    local name = r.pick(EVENT_NAMES)
    if blocks[i]:match("^event:") then
      blocks[i] = blocks[i]:gsub("^event: ?[^\n]*", "event: " .. name)
    else
      blocks[i] = "event: " .. name .. "\n" .. blocks[i]
    end
  end
  return table.concat(blocks, "\n\n") .. "\n\n"
end

-- Mutates body: one to three edits, JSON-aware or byte-level. Returns the
-- new body and the names of the edits made.
local function mutate(r, body, streamed)
  local done = {}
  for _ = 1, r.int(3) do
    local k = r.int(10)
    if k <= 4 then
      local edited = streamed and stream_edit(r, body) or json_edit(r, body)
      if edited then
        body = edited
        done[#done + 1] = streamed and "stream_edit" or "json_edit"
      end
    else
      local name = r.pick(BYTE_NAMES)
      body = BYTE_MUTATIONS[name](r, body)
      done[#done + 1] = name
    end
  end
  return body, table.concat(done, "+")
end

-- ------------------------------------------------------------------ the oracle

local function opt_type(v, want) return v == nil or type(v) == want end

-- nil when r is a normalized response (docs/api.md), else what is wrong.
local function not_normalized(r)
  if type(r) ~= "table" then return "the response is a " .. type(r) end
  for _, k in ipairs({ "text", "refusal", "thinking", "finish_reason" }) do
    if not opt_type(r[k], "string") then return k .. " is a " .. type(r[k]) end
  end
  if type(r.tool_calls) ~= "table" then return "tool_calls is a " .. type(r.tool_calls) end
  for i, c in ipairs(r.tool_calls) do
    if type(c) ~= "table" then return "tool_calls[" .. i .. "] is a " .. type(c) end
    for _, k in ipairs({ "id", "name", "arguments_json", "arguments_error" }) do
      if not opt_type(c[k], "string") then return "tool_calls[" .. i .. "]." .. k .. " is a " .. type(c[k]) end
    end
    if not opt_type(c.arguments, "table") then return "tool_calls[" .. i .. "].arguments is a " .. type(c.arguments) end
    if (c.arguments == nil) == (c.arguments_error == nil) then
      return "tool_calls[" .. i .. "] has " .. (c.arguments and "both" or "neither") .. " arguments and arguments_error"
    end
  end
  if type(r.usage) ~= "table" then return "usage is a " .. type(r.usage) end
  for _, k in ipairs({ "input_tokens", "output_tokens", "cached_input_tokens" }) do
    if type(r.usage[k]) ~= "number" then return "usage." .. k .. " is a " .. type(r.usage[k]) end
  end
  return nil
end

-- nil when err is an owl error that prints, else what is wrong.
local function not_owl_error(err, streamed)
  if not errors.is(err) then return "the error is not an owl error: " .. tostring(err) end
  if type(err.message) ~= "string" then return "err.message is a " .. type(err.message) end
  local ok, line = pcall(tostring, err)
  if not ok or type(line) ~= "string" then return "tostring(err) raised: " .. tostring(line) end
  if streamed and err.partial_text ~= nil and type(err.partial_text) ~= "string" then
    return "err.partial_text is a " .. type(err.partial_text)
  end
  return nil
end

local DELTA_TYPES = { text = true, refusal = true, thinking = true, tool_arguments = true }

local function not_deltas(ds)
  if type(ds) ~= "table" then return "event() returned a " .. type(ds) end
  for i, d in ipairs(ds) do
    if type(d) ~= "table" or not DELTA_TYPES[d.type] or type(d.text) ~= "string" or d.text == "" then
      return "delta " .. i .. " is not { type, text }"
    end
  end
  return nil
end

-- ------------------------------------------------------------------ readers

-- Statuses and headers a mutated response may carry instead of its own:
-- the error paths read the body differently, and the headers feed the
-- retry and request-id fields of an error.
local STATUSES = { 200, 201, 299, 400, 401, 404, 408, 429, 500, 502, 529, 0, 302, 100 }
local HEADER_VALUES = { "", "0", "-1", "1.5", "inf", "NaN", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT", "garbage",
  "true", "false", string.rep("9", 400), "ÿþ" }
local HEADER_NAMES = { "retry-after", "retry-after-ms", "x-should-retry", "x-request-id", "request-id" }

-- Sometimes another status, sometimes odd headers: what the response
-- becomes besides its body.
local function mutate_head(r, fx)
  local status, headers = fx.status, {}
  for k, v in pairs(fx.headers or {}) do headers[k:lower()] = v end
  if r.int(6) == 1 then status = r.pick(STATUSES) end
  for _ = 1, r.int(3) - 1 do headers[r.pick(HEADER_NAMES)] = r.pick(HEADER_VALUES) end
  return status, headers
end

-- A finished transfer as the readers see one: fx's status and headers, body.
local function fake_res(fx, body) return transfer.finished(fx.status, fx.headers, body) end

local PROVIDERS = { openai = openai, anthropic = anthropic }

-- The client and request a reader gets: Anthropic's forced-tool mode on
-- some iterations (anthropic-09's answer tool), so that path is fuzzed too.
local function client_for(r, provider)
  local c = { api_key = "sk-fuzz-key-0123456789", base_url = "http://127.0.0.1:1", model = "m" }
  local request = { messages = { { role = "user", content = "fuzz" } } }
  if provider == "anthropic" and r.int(2) == 1 then
    c.structured = "tool"
    request.structured = { name = "final_result", schema = { type = "object" } }
  end
  return c, request
end

-- One non-streamed read; nil when the outcome is allowed, else what went wrong.
local function read_once(provider, fx, body, r)
  local client, request = client_for(r, provider)
  local ok, res, err = pcall(PROVIDERS[provider].read, fake_res(fx, body), client, request)
  if not ok then return "read raised: " .. tostring(res) end
  if res ~= nil then return not_normalized(res), "response" end
  return not_owl_error(err, false), "error"
end

-- The events the C parser frames from body fed in random pieces.
local function frame(r, body)
  local p = sse.new()
  local events, at = {}, 1
  while at <= #body do
    local n = r.int(r.int(2) == 1 and 8 or 512)
    local got = assert(p:feed(body:sub(at, at + n - 1)))
    for _, ev in ipairs(got) do events[#events + 1] = ev end
    at = at + n
  end
  return events
end

-- One streamed read; nil when the outcome is allowed, else what went wrong.
local function stream_once(provider, body, r)
  local client, request = client_for(r, provider)
  local events = frame(r, body)
  local ok, why, outcome = pcall(function()
    local reader = PROVIDERS[provider].stream_reader(client, request)
    for _, ev in ipairs(events) do
      local ds, err = reader:event(ev)
      if ds == nil then return not_owl_error(err, true), "error" end
      local bad = not_deltas(ds)
      if bad then return bad end
      if type(reader:partial_text()) ~= "string" then return "partial_text is not a string" end
    end
    local res, err = reader:finish()
    if res ~= nil then return not_normalized(res), "response" end
    return not_owl_error(err, true), "error"
  end)
  if not ok then return "the stream reader raised: " .. tostring(why) end
  return why, outcome
end

-- Runs one group: up to ITERATIONS mutated inputs within SECONDS (or only
-- OWL_FUZZ_ITERATION). Fails at the first disallowed outcome, naming the
-- seed, the iteration, the recording and the edits, with the input saved.
local function run_group(group, provider, streamed)
  local list = fixtures[provider][streamed and "stream" or "json"]
  assert.is_true(#list > 0)
  local deadline = socket.gettime() + SECONDS
  local first, last = ONLY or 1, ONLY or ITERATIONS
  local outcomes, seen = 0, { response = 0, error = 0 }
  for i = first, last do
    if not ONLY and socket.gettime() > deadline then break end
    local r = rng_for(group, i)
    local fx = r.pick(list)
    local body, edits = mutate(r, fx.body, streamed)
    local problem, outcome
    if streamed then
      problem, outcome = stream_once(provider, body, r)
    else
      local status, headers = mutate_head(r, fx)
      problem, outcome = read_once(provider, { status = status, headers = headers }, body, r)
      edits = edits .. string.format(" (status %s)", tostring(status))
    end
    if problem then
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(body)
      f:close()
      error(string.format("seed %d iteration %d (%s, %s): %s\n  input saved in %s; replay with "
        .. "OWL_FUZZ_SEED=%d OWL_FUZZ_ITERATION=%d", SEED, i, fx.name, edits, problem, path, SEED, i), 0)
    end
    outcomes = outcomes + 1
    seen[outcome] = seen[outcome] + 1
  end
  -- the bound is time or count: a group that ran almost nothing proves nothing
  assert.is_true(outcomes >= math.min(50, last - first + 1), "only " .. outcomes .. " inputs in " .. SECONDS .. " s")
  -- and mutations that only ever broke the input, or never did, would
  -- test one side alone
  if not ONLY then
    assert.is_true(seen.response > 0 and seen.error > 0,
      string.format("%d responses and %d errors in %d inputs", seen.response, seen.error, outcomes))
  end
  if os.getenv("OWL_FUZZ_VERBOSE") then
    io.stderr:write(string.format("\n%s %s: %d inputs, %d responses, %d errors\n", provider,
      streamed and "stream" or "read", outcomes, seen.response, seen.error))
  end
  return outcomes, seen
end

local title = string.format("(seed %d, up to %d inputs or %g s)", SEED, ITERATIONS, SECONDS)

describe("provider readers on mutated recorded responses", function()
  it("openai.read: normalized response or owl error " .. title, function()
    run_group(1, "openai", false)
  end)
  it("anthropic.read: normalized response or owl error " .. title, function()
    run_group(2, "anthropic", false)
  end)
  it("openai stream reader: normalized response or owl error " .. title, function()
    run_group(3, "openai", true)
  end)
  it("anthropic stream reader: normalized response or owl error " .. title, function()
    run_group(4, "anthropic", true)
  end)

  -- A slice over real HTTP: the mutated bytes served by the mock, read by
  -- client:chat through the transfer and (streamed) the C parser inside it.
  describe("over HTTP through the mock", function()
    local server
    setup(function() server = mock.start() end)
    teardown(function() server:stop() end)

    local function over_http(group, provider, streamed)
      local c = owl.client{ provider = provider, base_url = provider == "openai" and server.url or server.base,
                            api_key = "sk-fuzz-http-0123456789", model = "m", max_retries = 0, timeout = 10 }
      local list = fixtures[provider][streamed and "stream" or "json"]
      for i = 1, HTTP_ITERATIONS do
        local r = rng_for(group, i)
        local fx = r.pick(list)
        local body, edits = mutate(r, fx.body, streamed)
        local headers = { ["content-type"] = streamed and "text/event-stream" or "application/json" }
        server:script{ { status = fx.status, headers = headers, body = body } }
        local ok, res, err = pcall(c.chat, c, { messages = { { role = "user", content = "fuzz" } }, stream = streamed or nil })
        local problem
        if not ok then
          problem = "client:chat raised: " .. tostring(res)
        elseif res ~= nil then
          problem = not_normalized(res)
        else
          problem = not_owl_error(err, streamed)
        end
        assert(problem == nil, string.format("seed %d iteration %d (%s, %s): %s", SEED, i, fx.name, edits, tostring(problem)))
      end
      assert.equal(0, server:stats().script_pending)
    end

    local http_title = string.format("(seed %d, %d inputs each)", SEED, HTTP_ITERATIONS)
    it("client:chat, both providers, JSON and streamed " .. http_title, function()
      over_http(11, "openai", false)
      over_http(12, "anthropic", false)
      over_http(13, "openai", true)
      over_http(14, "anthropic", true)
    end)
  end)
end)

-- What the fuzzing above found, each pinned by name.
describe("provider reader bugs found by fuzzing", function()
  local function res_of(body, status)
    return fake_res({ status = status or 200, headers = {} }, body)
  end
  local client = { api_key = "sk-fuzz-key-0123456789" }

  it("openai.read: a tool call whose arguments, id or name is not a string (arguments_json was a boolean)", function()
    local r = assert(openai.read(res_of(json.encode{ choices = { { finish_reason = 7, message = {
      content = json.null, tool_calls = { { id = 12, type = "function", ["function"] = { name = { "x" }, arguments = true } } },
    } } } }), client))
    assert.is_nil(not_normalized(r))
    local call = r.tool_calls[1]
    assert.is_nil(call.id)
    assert.is_nil(call.name)
    assert.is_nil(call.arguments_json)
    assert.equal("the tool call has no arguments string", call.arguments_error)
    assert.is_nil(r.finish_reason) -- a number where finish_reason goes
  end)

  it("anthropic.read: a stop_reason that is not a string (finish_reason was a table)", function()
    local r = assert(anthropic.read(res_of(json.encode{ type = "message", content = { { type = "text", text = "hi" } },
      stop_reason = { "end_turn" } }), client))
    assert.is_nil(not_normalized(r))
    assert.is_nil(r.finish_reason)
    assert.equal("hi", r.text)
  end)

  it("anthropic stream: a message_delta whose stop_reason is an object (finish_reason was a table)", function()
    local reader = anthropic.stream_reader(client)
    local evs = {
      { event = "message_start", data = '{"type":"message_start","message":{"content":[],"usage":{}}}' },
      { event = "message_delta", data = '{"type":"message_delta","delta":{"stop_reason":{"a":1}}}' },
      { event = "message_stop", data = '{"type":"message_stop"}' },
    }
    for _, ev in ipairs(evs) do assert(reader:event(ev)) end
    local r = assert(reader:finish())
    assert.is_nil(not_normalized(r))
    assert.is_nil(r.finish_reason)
  end)

  it("anthropic.read: a tool input holding a number past double range no longer raises 'cannot encode inf'", function()
    local body = '{"type":"message","stop_reason":"tool_use","content":[{"type":"tool_use","id":"t1","name":"f",'
      .. '"input":{"n":1e999}}]}'
    local r = assert(anthropic.read(res_of(body), client))
    assert.is_nil(not_normalized(r))
    local call = r.tool_calls[1]
    assert.equal("t1", call.id)
    assert.equal(math.huge, call.arguments.n) -- the decoded input, as json.decode reads it
    assert.is_nil(call.arguments_json)        -- no JSON text holds inf
    -- the forced tool's input is the answer: no text then, not a raised error
    local forced = assert(anthropic.read(res_of((body:gsub('"name":"f"', '"name":"final_result"'))),
      { structured = "tool" }, { structured = { name = "final_result", schema = {} } }))
    assert.is_nil(not_normalized(forced))
    assert.is_nil(forced.text)
  end)
end)
