-- spec/sse_spec.lua: owl.sse, the text/event-stream parser in C (csrc/sse.c).
-- The cases are ports of openai-python's tests/test_streaming.py and
-- tests/test_sse_framing.py and of the web-platform-tests
-- eventsource/format-* tests, named after them; the expected events are
-- written here by hand from the WHATWG rules. Every case is fed whole, split
-- at every byte offset (with an empty feed at the split) and one byte at a
-- time, and must give the same events each way. The garbage cases, which
-- nobody wrote out, are checked against a plain Lua model of the rules.
local sse = require("owl.sse")

local BOM = "\239\187\191"
local MiB = 1024 * 1024
-- valgrind runs this file some fifty times slower: the two biggest inputs
-- shrink there (the code paths are the same; ASan runs them full size)
local under_valgrind = os.getenv("OWL_UNDER_VALGRIND") ~= nil

-- An expected event: type, data and the last event id (nil when none).
local function ev(event, data, id) return { event = event, data = data, id = id } end
local function msg(data, id) return ev("message", data, id) end

-- Feeds chunks to p, then finishes it; the events of every call, in order.
-- Any failure fails the test.
local function drain(p, chunks)
  local all = {}
  local function add(events, err)
    assert(events, err)
    for _, e in ipairs(events) do all[#all + 1] = e end
  end
  for _, c in ipairs(chunks) do add(p:feed(c)) end
  add(p:finish())
  return all
end

local function run(chunks, opts) return drain(sse.new(opts), chunks) end

-- assert.same for arrays of events, cheap when they match: check() runs it
-- thousands of times per case, under valgrind too.
local function same_events(expected, got, how)
  local ok = #expected == #got
  for i = 1, ok and #got or 0 do
    local e, g, keys = expected[i], got[i], 0
    for _ in pairs(g) do keys = keys + 1 end
    ok = ok and g.event == e.event and g.data == e.data and g.id == e.id and keys == (e.id and 3 or 2)
  end
  if not ok then assert.same(expected, got, how) end
end

local function bytewise(s)
  local t = {}
  for i = 1, #s do t[i] = s:sub(i, i) end
  return t
end

-- The stream s must give `expected` fed whole, split in two at every offset
-- (an empty feed between the halves, as openai-python does) and one byte at
-- a time; then p:retry() must be `retry`. extra: more chunkings to try.
local function check(s, expected, retry, extra)
  local function one(chunks, how)
    local p = sse.new()
    same_events(expected, drain(p, chunks), how)
    if p:retry() ~= retry then assert.equal(retry, p:retry(), how .. ": retry") end
  end
  one({ s }, "whole")
  for i = 0, #s do one({ s:sub(1, i), "", s:sub(i + 1) }, "split at " .. i) end
  one(bytewise(s), "byte by byte")
  for i, chunks in ipairs(extra or {}) do one(chunks, "chunking " .. i) end
end

local function fragments(s, size)
  local t = {}
  for i = 1, #s, size do t[#t + 1] = s:sub(i, i + size - 1) end
  return t
end

-- work(f, s): f's work on s in linear passes over s
local work = require("support.work")

describe("owl.sse", function()
  it("is owl.core's parser under its own name", function()
    assert.equal(require("owl.core").sse, sse)
    assert.equal("function", type(sse.new))
  end)
end)

describe("owl.sse: openai-python tests/test_streaming.py", function()
  it("test_basic", function()
    check('event: completion\ndata: {"foo":true}\n\n', { ev("completion", '{"foo":true}') })
  end)

  it("test_data_missing_event: the type defaults to message", function()
    check('data: {"foo":true}\n\n', { msg('{"foo":true}') })
  end)

  -- openai-python dispatches an event with empty data here; WHATWG (and
  -- owl) dispatches nothing when the data buffer is empty.
  it("test_event_missing_data: no data, no event", function()
    check("event: ping\n\n", {})
  end)

  it("test_multiple_events: neither has data, so neither is dispatched", function()
    check("event: ping\n\nevent: completion\n\n", {})
  end)

  it("test_multiple_events_with_data", function()
    check('event: ping\ndata: {"foo":true}\n\nevent: completion\ndata: {"bar":false}\n\n',
      { ev("ping", '{"foo":true}'), ev("completion", '{"bar":false}') })
  end)

  it("test_multiple_data_lines_with_empty_line", function()
    check('event: ping\ndata: {\ndata: "foo":\ndata: \ndata:\ndata: true}\n\n\n',
      { ev("ping", '{\n"foo":\n\n\ntrue}') })
  end)

  it("test_data_json_escaped_double_new_line: an escaped newline is two characters", function()
    check('event: ping\ndata: {"foo": "my long\\n\\ncontent"}\n\n', { ev("ping", '{"foo": "my long\\n\\ncontent"}') })
  end)

  it("test_multiple_data_lines", function()
    check('event: ping\ndata: {\ndata: "foo":\ndata: true}\n\n\n', { ev("ping", '{\n"foo":\ntrue}') })
  end)

  it("test_special_new_line_character: U+2028 does not end a line", function()
    check('data: {"content":" culpa"}\n\ndata: {"content":" \226\128\168"}\n\ndata: {"content":"foo"}\n\n',
      { msg('{"content":" culpa"}'), msg('{"content":" \226\128\168"}'), msg('{"content":"foo"}') })
  end)

  it("test_multi_byte_character_multiple_chunks: characters split across feeds", function()
    local word = "известни"
    assert.equal(16, #word)
    local chunks = { 'data: {"content":"', word:sub(1, 1), word:sub(2, 5), word:sub(6), '"}\n', "\n" }
    check(table.concat(chunks), { msg('{"content":"известни"}') }, nil, { chunks })
  end)

  it("test_transport_error_mid_stream: the event before the error is kept", function()
    local p = sse.new()
    assert.same({}, p:feed('data: {"foo":true}\n'))
    assert.same({ msg('{"foo":true}') }, p:feed("\n"))
  end)
end)

describe("owl.sse: openai-python tests/test_sse_framing.py", function()
  it("test_unterminated_event: nothing without the blank line, for any fragment size", function()
    for _, line in ipairs({ ":x\n", "data:x\n", "ignored:x\n" }) do
      for _, size in ipairs({ 1, 97, 100000 }) do
        local p = sse.new()
        assert.same({}, drain(p, fragments(line:rep(2000), size)), line .. " in " .. size)
        assert.is_nil(p:retry())
      end
    end
  end)

  it("test_every_chunk_boundary: LF, CR and CRLF", function()
    for _, ending in ipairs({ "\n", "\r", "\r\n" }) do
      check("data:ok" .. ending .. ending, { msg("ok") })
    end
  end)

  it("test_leading_utf8_bom", function()
    local s = BOM .. "data:first\n\ndata:second\n\n"
    check(s, { msg("first"), msg("second") }, nil, { fragments(s, 2) })
  end)

  it("test_many_complete_events", function()
    local expected = {}
    for i = 1, 2000 do expected[i] = msg("ok") end
    assert.same(expected, run({ ("data:ok\n\n"):rep(2000) }))
  end)

  it("test_event_larger_than_64_mib: with max_event_bytes raised to fit it", function()
    local size = under_valgrind and 8 or 64
    local chunks, x = { "data:" }, ("x"):rep(MiB)
    for i = 1, size do chunks[i + 1] = x end
    chunks[size + 2] = "x\n\n"
    local events = run(chunks, { max_event_bytes = size * MiB + 6 })
    assert.equal(1, #events)
    local data = events[1].data
    assert.equal(size * MiB + 1, #data)
    for i = 0, size - 1 do assert.is_true(data:sub(i * MiB + 1, (i + 1) * MiB) == x, "MiB " .. i) end
    assert.equal("x", data:sub(-1))
  end)

  it("test_event_larger_than_64_mib: past the default 16 MiB it fails instead of growing", function()
    local p, x = sse.new(), ("x"):rep(MiB)
    assert.same({}, p:feed("data:"))
    for i = 1, 15 do assert.same({}, p:feed(x), "chunk " .. i) end
    local events, err, before = p:feed(x)
    assert.is_nil(events)
    assert.equal("sse: a line is longer than max_event_bytes (16777216 bytes)", err)
    assert.same({}, before)
  end)

  it("test_large_legitimate_events", function()
    local value = ("x"):rep(2 * MiB) .. "известни\226\128\168"
    assert.same({ msg(value) }, run(fragments("data:" .. value .. "\r\n\r\n", 4093)))
    local xs = {}
    for i = 1, 10000 do xs[i] = "x" end
    assert.same({ msg(table.concat(xs, "\n")) }, run({ ("data:x\n"):rep(10000) .. "\n" }))
  end)

  it("test_mixed_endings_utf8_and_eof", function()
    check("id:one\r\ndata:известни\r\n\ndata:two\n\rdata:unfinished", { msg("известни", "one"), msg("two", "one") })
  end)

  it("test_ignored_lines_are_discarded_incrementally: they never count against the limit", function()
    for _, line in ipairs({ ":x\n", "ignored:x\n" }) do
      local p, n = sse.new({ max_event_bytes = 16 }), 0
      for _ = 1, 10000 do n = n + #assert(p:feed(line)) end
      assert.equal(0, n)
      assert.same({}, p:feed("data:ok\n"))
      assert.same({ msg("ok") }, p:feed("\n"))
    end
  end)

  it("test_partial_line_uses_mutable_buffer: a line fed a byte at a time", function()
    local p, n = sse.new(), 0
    assert.same({}, p:feed("data:"))
    for _ = 1, 4096 do n = n + #assert(p:feed("x")) end
    assert.equal(0, n)
    assert.same({ msg(("x"):rep(4096)) }, p:feed("\n\n"))
  end)

  it("test_sync_interruption_closes_response: a stream cut after a data line gives nothing", function()
    assert.same({}, run({ "data:partial\n" }))
  end)

  it("test_context_exit_after_event: the complete event only", function()
    assert.same({ msg("{}") }, run({ "data:{}\n\n", "data:partial" }))
  end)
end)

-- message.py sends its message, then "\n\n" (none with newline=none), then
-- "\n": the trailing line ends below are that.
describe("owl.sse: web-platform-tests eventsource/format-*", function()
  it("format-bom: one BOM at the very start is stripped, a later one is not", function()
    check(BOM .. "data:1\n\n" .. BOM .. "data:2\n\ndata:3\n\n\n", { msg("1"), msg("3") })
  end)

  it("format-bom-2: of two BOMs only the first is stripped", function()
    check(BOM .. BOM .. "data:1\n\ndata:2\n\ndata:3\n\n\n", { msg("2"), msg("3") })
  end)

  it("format-comments", function()
    local long = ("x"):rep(2048)
    check("data:1\r:\0\n:\r\ndata:2\n:" .. long .. "\rdata:3\n:data:fail\r:" .. long .. "\ndata:4\n\n",
      { msg("1\n2\n3\n4") })
  end)

  it("format-data-before-final-empty-line: the unterminated event is dropped, and its id", function()
    check("retry:1000\ndata:test1\n\nid:test\ndata:test2\n", { msg("test1") }, 1000)
  end)

  it("format-field-data", function()
    check("data:\n\ndata\ndata\n\ndata:test\n\n\n", { msg(""), msg("\n"), msg("test") })
  end)

  it("format-field-event-empty: an empty type is message", function()
    check("event: \ndata:data\n\n\n", { msg("data") })
  end)

  it("format-field-event: a custom type, reset after its event", function()
    check("event:test\ndata:x\n\ndata:x\n\n\n", { ev("test", "x"), msg("x") })
  end)

  it("format-field-id and format-field-id-2: a non-ASCII id", function()
    check("id: \226\128\166\nretry: 200\ndata: hello\n\n", { msg("hello", "\226\128\166") }, 200)
  end)

  it("format-field-id-3: lastEventId persists", function()
    check("id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n",
      { msg("1", "1"), msg("2", "1"), msg("3", "2"), msg("4", "2") })
  end)

  it("format-field-id-3: lastEventId resets", function()
    check("id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n", { msg("1", "1"), msg("2"), msg("3") })
  end)

  it("format-field-id-3: lastEventId resets (id without colon)", function()
    check("id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n", { msg("1", "1"), msg("2"), msg("3") })
  end)

  it("format-field-id-null: an id holding NUL is ignored", function()
    for _, value in ipairs({ "\0\0", "x\0", "\0x", "x\0x", " \0" }) do
      check("id: " .. value .. "\nretry: 200\ndata: hello\n\n", { msg("hello") }, 200)
    end
    -- and leaves the last id as it was
    check("id: a\ndata: 1\n\nid: b\0\ndata: 2\n\n", { msg("1", "a"), msg("2", "a") })
  end)

  it("format-field-parsing", function()
    check("data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
      { msg("\0\n 2\n1\n3\n\n4") })
  end)

  it("format-field-retry: decimal, leading zero and all", function()
    check("retry:03000\ndata:x\n\n\n", { msg("x") }, 3000)
  end)

  it("format-field-retry-bogus: a value that is not all digits is ignored", function()
    check("retry:3000\nretry:1000x\ndata:x\n\n\n", { msg("x") }, 3000)
  end)

  it("format-field-retry-empty", function()
    check("retry\ndata:test\n\n\n", { msg("test") }, nil)
  end)

  it("format-field-unknown", function()
    check("data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n", { msg("test\n\ntest") })
  end)

  it("format-leading-space: one space is stripped, a tab is kept", function()
    check("data:\ttest\rdata: \ndata:test\n\n\n", { msg("\ttest\n\ntest") })
  end)

  it("format-newlines", function()
    check("data:test\r\ndata\ndata:test\r\n\r\n", { msg("test\n\ntest") })
  end)

  it("format-null-character", function()
    check("data:\0\n\n\n\n", { msg("\0") })
  end)

  it("format-utf-8: the stream is UTF-8 whatever the charset says", function()
    check("data:ok\226\128\166\n\n\n", { msg("ok\226\128\166") })
  end)
end)

describe("owl.sse: the WHATWG rules", function()
  it("takes one space off a value, no more", function()
    check("data:  two\nevent:   t\n\n", { ev("  t", " two") })
  end)

  it("splits the field name at the first colon only", function()
    check("data: a:b: c\n\n", { msg("a:b: c") })
  end)

  it("resets the type at a blank line even when nothing is dispatched", function()
    check("event: a\n\ndata: x\n\n", { msg("x") })
  end)

  it("sets the last event id when the field is read, not when its event is dispatched", function()
    check("id: 5\n\ndata: x\n\n", { msg("x", "5") })
  end)

  it("reads CR CR and LF CR as two line ends, CR LF as one", function()
    check("data: a\r\rdata: b\n\rdata: c\r\n\r\n", { msg("a"), msg("b"), msg("c") })
  end)

  it("treats a CR ending one feed and an LF starting the next as one line end", function()
    local p = sse.new()
    assert.same({}, p:feed("data: a\r"))
    assert.same({}, p:feed("\ndata: b\r"))
    assert.same({}, p:feed(""))
    assert.same({ msg("a\nb") }, p:feed("\n\r"))
    assert.same({}, p:feed("\n"))
  end)

  it("strips a BOM split across feeds, but not a partial one", function()
    assert.same({ msg("x") }, run({ "\239", "\187", "\191", "data: x\n\n" }))
    check("\239\187data: x\n\ndata: y\n\n", { msg("y") })
    check("\239data: x\n\n", {})
    check(BOM, {})
    check("\239\187", {})
  end)

  it("keeps the last retry until another valid one", function()
    check("retry: 10\n\nretry: 20\nretry: -5\nretry: 2.5\nretry:\ndata: x\n\n", { msg("x") }, 20)
  end)

  it("saturates a retry past 2^53 - 1", function()
    check("retry: 99999999999999999999999\n", {}, 9007199254740991)
  end)

  it("drops an event without its blank line and a line without its end at finish", function()
    check("data: a\n\ndata: b\n", { msg("a") })
    check("data: a\n\ndata: b", { msg("a") })
    check("data: a\n\n:comment", { msg("a") })
  end)

  it("passes bytes through: invalid UTF-8 is not repaired", function()
    check("data: \255\192x\n\n", { msg("\255\192x") })
  end)

  it("finish is idempotent and feed after it raises", function()
    local p = sse.new()
    assert.same({}, p:feed("data: x\n"))
    assert.same({}, p:finish())
    assert.same({}, p:finish())
    assert.has_error(function() p:feed("\n") end, "owl.core: sse feed after finish")
  end)
end)

describe("owl.sse: max_event_bytes", function()
  it("lets data up to the limit through, joined lines counted with their LFs", function()
    check("data:abc\ndata:de\ndata:f\n\n", { msg("abc\nde\nf") })
    assert.same({ msg("abcd\nefgh") }, run({ "data:abcd\ndata:efgh\n\n" }, { max_event_bytes = 9 }))
  end)

  it("fails an event whose data passes it, returning the events before", function()
    local p = sse.new({ max_event_bytes = 9 })
    local events, err, before = p:feed("data:a\n\ndata:abcd\ndata:efgh\ndata:i\n\n")
    assert.is_nil(events)
    assert.equal("sse: an event's data is larger than max_event_bytes (9 bytes)", err)
    assert.same({ msg("a") }, before)
    -- a failed parser stays failed
    local again, err2, none = p:feed("data:b\n\n")
    assert.is_nil(again)
    assert.equal(err, err2)
    assert.same({}, none)
    local fin, err3 = p:finish()
    assert.is_nil(fin)
    assert.equal(err, err3)
  end)

  it("fails a line longer than the limit, however it is split, before its end arrives", function()
    for _, chunks in ipairs({ { "data:12345\n" }, { "data:12345" }, bytewise("data:12345"), { ":", "23456789", "0" } }) do
      local p = sse.new({ max_event_bytes = 9 })
      local events, err
      for _, c in ipairs(chunks) do
        events, err = p:feed(c)
        if not events then break end
      end
      assert.is_nil(events)
      assert.equal("sse: a line is longer than max_event_bytes (9 bytes)", err)
    end
    assert.same({ msg("1234") }, run({ "data:1234\n\n" }, { max_event_bytes = 9 }))
  end)

  it("lets a line of exactly the default 16 MiB through", function()
    local value = ("y"):rep(16 * MiB - 5)
    local events = run({ "data:", value, "\n\n" })
    assert.equal(1, #events)
    assert.equal(value, events[1].data)
  end)
end)

describe("owl.sse: options and misuse", function()
  it("takes no options, nil, or max_event_bytes from 1 to 2^53 - 1", function()
    assert.same({ msg("x") }, run({ "data:x\n\n" }, nil))
    assert.same({ msg("x") }, run({ "data:x\n\n" }, {}))
    assert.same({ msg("x") }, run({ "data:x\n\n" }, { max_event_bytes = 2 ^ 53 - 1 }))
  end)

  it("rejects a bad max_event_bytes before any cast", function()
    local range = "owl.core: sse.new max_event_bytes must be an integer from 1 to 9007199254740991, got "
    for value, tail in pairs({ [0] = "0", [-1] = "-1", [1.5] = "1.5", [2 ^ 53] = "9007199254740992",
                               [1e20] = "1e+20", [math.huge] = "inf", [-math.huge] = "-inf" }) do
      assert.has_error(function() sse.new({ max_event_bytes = value }) end, range .. tail)
    end
    assert.has_error(function() sse.new({ max_event_bytes = 0 / 0 }) end, range .. "NaN")
    assert.has_error(function() sse.new({ max_event_bytes = "16" }) end,
      "owl.core: sse.new max_event_bytes must be an integer, not string")
    assert.has_error(function() sse.new({ max_event_bytes = true }) end,
      "owl.core: sse.new max_event_bytes must be an integer, not boolean")
  end)

  it("rejects unknown options and options that are not a table", function()
    assert.has_error(function() sse.new({ max_bytes = 1 }) end, "owl.core: sse.new: unknown option 'max_bytes'")
    assert.has_error(function() sse.new({ 1 }) end, "owl.core: sse.new option names must be strings, not number")
    assert.has_error(function() sse.new("big") end, "owl.core: sse.new options must be a table, not string")
  end)

  it("feeds strings only and checks self", function()
    local p = sse.new()
    assert.has_error(function() p:feed(12) end, "owl.core: sse feed expects a string, not number")
    assert.has_error(function() p:feed() end, "owl.core: sse feed expects a string, not no value")
    assert.has_error(function() p.feed({}, "x") end)
    assert.has_error(function() p.finish("x") end)
    assert.same({ msg("x") }, drain(p, { "data:x\n\n" }))
  end)
end)

describe("owl.sse: linear work", function()
  -- A parser that rescanned the buffered line on every feed did ~900 passes
  -- at 128 KiB, and more the longer the line. A linear one does about 5 to
  -- 12 at 1 MiB (the cost of a Lua call per byte); at 128 KiB LuaJIT's
  -- figure is noisier (15 to 60), hence the looser bound of that quick
  -- first size.
  it("a 1 MB data line fed one byte at a time costs a bounded multiple of one pass", function()
    local sizes = { { 128 * 1024, 200 }, { MiB, 40 } }
    if under_valgrind then sizes[2] = nil end
    for _, size in ipairs(sizes) do
      local n, bound = size[1], size[2]
      local bytes = bytewise(("z"):rep(n))
      local got
      local w = work(function()
        local p = sse.new()
        p:feed("data:")
        for i = 1, #bytes do p:feed(bytes[i]) end
        got = p:feed("\n\n")
      end, ("z"):rep(n))
      assert.is_true(w < bound, n .. " bytes one at a time cost " .. w .. " linear passes")
      assert.equal(n, #got[1].data)
    end
  end)
end)

-- A model of the WHATWG algorithm over a whole stream, written plainly
-- (no limits, no feeds), to check the parser on streams nobody wrote out.
local function reference(s)
  if s:sub(1, 3) == BOM then s = s:sub(4) end
  local events, data, event, id, retry, pos = {}, {}, "", "", nil, 1
  while true do
    local i = s:find("[\r\n]", pos)
    if not i then break end
    local line = s:sub(pos, i - 1)
    pos = (s:sub(i, i + 1) == "\r\n") and i + 2 or i + 1
    if line == "" then
      if #data > 0 then
        events[#events + 1] = ev(event ~= "" and event or "message", table.concat(data, "\n"), id ~= "" and id or nil)
      end
      data, event = {}, ""
    elseif line:sub(1, 1) ~= ":" then
      local c = line:find(":", 1, true)
      local name, value = line, ""
      if c then name, value = line:sub(1, c - 1), line:sub(c + 1) end
      if value:sub(1, 1) == " " then value = value:sub(2) end
      if name == "data" then data[#data + 1] = value
      elseif name == "event" then event = value
      elseif name == "id" then if not value:find("\0", 1, true) then id = value end
      elseif name == "retry" then if value:find("^%d+$") then retry = tonumber(value) end
      end
    end
  end
  return events, retry
end

describe("owl.sse: garbage", function()
  -- Park-Miller: the same numbers on every Lua (products stay below 2^53)
  local seed = 42
  local function rand(n)
    seed = (seed * 16807) % 2147483647
    return seed % n
  end
  local tokens = { "data", "event", "id", "retry", ":", " ", "\r", "\n", "\r\n", "\0", "\239", "\187", "\191",
                   "x", "7", "\t", BOM, "data: ", "\n\n" }
  local function stream(n, raw)
    local t = {}
    for i = 1, n do t[i] = raw and string.char(rand(256)) or tokens[rand(#tokens) + 1] end
    return table.concat(t)
  end
  local function chunked(s)
    local t, i = {}, 1
    while i <= #s do
      local n = rand(12)
      t[#t + 1] = s:sub(i, i + n - 1)
      i = i + n
    end
    return t
  end

  it("random bytes and random fields, split at random, give what the model of the rules gives", function()
    for round = 1, 400 do
      local s = stream(200, round % 4 == 0)
      local expected, retry = reference(s)
      for _, chunks in ipairs({ { s }, chunked(s) }) do
        local p = sse.new()
        assert.same(expected, drain(p, chunks), "round " .. round)
        assert.equal(retry, p:retry(), "round " .. round)
      end
    end
  end)

  it("under a small limit, either the model's events or a failure after a prefix of them", function()
    for round = 1, 400 do
      local s = stream(200, round % 4 == 0)
      local expected = reference(s)
      local p, got, failed = sse.new({ max_event_bytes = 1 + rand(24) }), {}, false
      for _, c in ipairs(chunked(s)) do
        local events, err, before = p:feed(c)
        if not events then
          assert.truthy(err:find("^sse: .* max_event_bytes %(%d+ bytes%)$"), err)
          events, failed = before, true
        end
        for _, e in ipairs(events) do got[#got + 1] = e end
        if failed then break end
      end
      if failed then
        for i, e in ipairs(got) do assert.same(expected[i], e, "round " .. round) end
      else
        assert.same({}, p:finish())
        assert.same(expected, got, "round " .. round)
      end
    end
  end)

  it("parsers dropped mid-line, mid-event and failed are collected without a leak", function()
    for i = 1, 200 do
      local p = sse.new({ max_event_bytes = 64 })
      p:feed("id: " .. i .. "\nevent: e\ndata: " .. ("d"):rep(40) .. "\ndata: partial")
      if i % 2 == 0 then p:feed(("z"):rep(100)) end
    end
    collectgarbage()
    collectgarbage()
  end)
end)
