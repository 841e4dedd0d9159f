-- spec/sse_pick_spec.lua: core.sse_pick and t:sse_pick (csrc/pick.c,
-- csrc/transfer.c), the JSON-path picker a stream reader configures so that
-- the core takes the few values it reads out of each event in C. Every
-- event is either picked with exactly the values owl's JSON decoder would
-- give for those paths, or handed whole (as if there were no picker): the
-- cases below pin both sides, over real HTTP from the mock server.
local core = require("owl.core")
local json = require("owl.json")
local mock = require("support.mock")

local BODY = { model = "m", messages = { { role = "user", content = "hello" } } }

local PICK = {
  join = { text = { "choices", 1, "delta", "content" } },
  last = { id = { "id" }, model = { "model" } },
  absent = { { "error" }, { "usage" } },
}

local function sse(datas)
  local out = {}
  for i, d in ipairs(datas) do out[i] = "data: " .. d .. "\n\n" end
  return table.concat(out)
end

local function chunk(content, extra)
  return '{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":' .. content .. '}}]' .. (extra or "") .. "}"
end

describe("core.sse_pick", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- The events of a transfer whose body is text, read through picker.
  local function events(text, picker, merge, extra)
    local loop = core.loop()
    server:script{ { body = text } }
    local spec = { url = server.url .. "/chat/completions", headers = {}, timeout = 10, body = BODY, sse = true }
    for k, v in pairs(extra or {}) do spec[k] = v end
    local t = loop:request(spec)
    t:sse_pick(core.sse_pick(picker or PICK), merge)
    loop:run()
    assert.is_nil(t:failure())
    local evs = t:events()
    loop:close()
    return evs
  end

  local function picked(fields) return { event = "message", pick = fields } end
  local function whole(data) return { event = "message", data = data } end

  describe("compiling", function()
    it("makes a picker", function()
      local p = core.sse_pick(PICK)
      assert.equal("userdata", type(p))
      assert.matches("^owl.sse_pick %(3 fields", tostring(p))
    end)

    it("refuses bad configurations with an error that names what is wrong", function()
      local cases = {
        { nil, "owl.core: sse_pick expects a table, not nil" },
        { { nope = {} }, "owl.core: sse_pick: unknown option 'nope'" },
        { { [1] = {} }, "owl.core: sse_pick option names must be strings" },
        { { event = 5, last = { a = { "a" } } }, "owl.core: sse_pick event must be a string, not number" },
        { { join = "x" }, "owl.core: sse_pick join must be a table of name -> path, not string" },
        { { last = { [1] = { "a" } } }, "owl.core: sse_pick last names must be strings, not number" },
        { { last = { [""] = { "a" } } }, "owl.core: sse_pick last names must be 1 to 64 bytes" },
        { { last = { a = "a" } }, "owl.core: sse_pick last.a must be a path (an array of names and indexes), not string" },
        { { last = { a = {} } }, "owl.core: sse_pick last.a must have 1 to 8 steps, not 0" },
        { { last = { a = { 1, 2, 3, 4, 5, 6, 7, 8, 9 } } }, "owl.core: sse_pick last.a must have 1 to 8 steps, not 9" },
        { { last = { a = { "a", true } } },
          "owl.core: sse_pick last.a step 2 must be a name (string) or an index (integer from 1), not boolean" },
        { { last = { a = { "a", 0 } } }, "owl.core: sse_pick last.a step 2 must be an integer from 1 to 9007199254740991, got 0" },
        { { last = { a = { 1.5 } } }, "owl.core: sse_pick last.a step 1 must be an integer from 1 to 9007199254740991, got 1.5" },
        { { absent = { { "a" } } }, "owl.core: sse_pick needs a field to pick (join or last)" },
        { { last = { a = { "a" } }, absent = "error" }, "owl.core: sse_pick absent must be an array of paths, not string" },
        { { last = { a = { "a" } }, absent = { "error" } },
          "owl.core: sse_pick absent[1] must be a path (an array of names and indexes), not string" },
        { { join = { a = { "a" } }, last = { a = { "b" } } }, "owl.core: sse_pick field 'a' is named twice (join and last)" },
      }
      for _, c in ipairs(cases) do
        assert.has_error(function() core.sse_pick(c[1]) end, c[2])
      end
      local absent = {}
      for i = 1, 32 do absent[i] = { "x" .. i } end
      assert.has_error(function() core.sse_pick{ last = { a = { "a" } }, absent = absent } end,
        "owl.core: sse_pick takes at most 32 paths")
    end)
  end)

  describe("picking", function()
    it("takes the values of its paths out of each event, one item per event", function()
      local evs = events(sse{ chunk('"Hel"'), chunk('"lo"') })
      assert.same({ picked{ text = "Hel", id = "c1", model = "m" }, picked{ text = "lo", id = "c1", model = "m" } }, evs)
    end)

    it("gives what owl's decoder gives: escapes, surrogate pairs, UTF-8 as it came", function()
      local s = '"a\\n\\t\\"\\\\\\/\\u00e9\\ud83d\\ude00 caf\195\169"'
      local evs = events(sse{ chunk(s) })
      assert.equal(json.decode(s), evs[1].pick.text)
      assert.equal('a\n\t"\\/\195\169\240\159\152\128 caf\195\169', evs[1].pick.text)
    end)

    it("reads null, a missing path and a path through a non-container as absent", function()
      local evs = events(sse{
        '{"id":null,"model":"m","choices":[{"delta":{"content":null}}]}',
        '{"id":"c","choices":[]}',
        '{"id":"c","choices":"none"}',
        '{"id":"c","choices":[{"delta":{"content":"x"}}],"usage":null,"error":null}',
      })
      assert.same({ picked{ model = "m" }, picked{ id = "c" }, picked{ id = "c" }, picked{ id = "c", text = "x" } }, evs)
    end)

    -- What reading the paths of PICK out of json.decode(data) gives, as
    -- openai_stream did before the picker: nil when the event must come
    -- whole (not an object, an absent path present, a wanted value not a
    -- string, or not JSON at all).
    local function by_decoding(data)
      local ok, doc = pcall(json.decode, data)
      if not ok or type(doc) ~= "table" or json.is_array(doc) then return nil end
      local function at(path)
        local v = doc
        for _, step in ipairs(path) do
          if type(v) ~= "table" then return nil end
          if type(step) == "number" and not json.is_array(v) then return nil end
          if type(step) == "string" and json.is_array(v) then return nil end
          v = v[step]
        end
        if v == json.null then return nil end
        return v
      end
      for _, path in ipairs(PICK.absent) do
        if at(path) ~= nil then return nil end
      end
      local out = {}
      for name, path in pairs(PICK.join) do out[name] = at(path) end
      for name, path in pairs(PICK.last) do out[name] = at(path) end
      for _, v in pairs(out) do
        if type(v) ~= "string" then return nil end
      end
      return out
    end

    local WHOLE = {
      "[DONE]",                                               -- not JSON
      '["choices"]',                                          -- not an object
      chunk('"x"', ',"usage":{"total_tokens":3}'),            -- an absent path present
      chunk('"x"', ',"error":false'),                         -- present, if false
      chunk("5"),                                             -- a number where a string is wanted
      chunk('{"a":1}'),                                       -- a container where a string is wanted
      '{"id":"a","id":"b"}',                                  -- a repeated name on a path
      '{"choices":[{"delta":{"content":"x"}}],"choices":null}', -- a repeated name above a path
      '{"\\u0069d":"x"}',                                   -- an escaped name where a path may be
      chunk('"x"') .. " x",                                   -- trailing garbage
      chunk('"x"', ',"n":01'),                                -- a number owl's decoder refuses
      chunk('"x"', ',"n":-'),
      chunk('"x"', ',"n":1.'),
      chunk('"x"', ',"n":1e'),
      chunk('"x"', ',"n":tru'),                               -- a broken literal
      chunk('"\\u00"'),                                     -- a broken escape
      chunk('"\\ud83d"'),                                   -- a lone surrogate
      chunk('"\\udc00"'),
      chunk('"\\x"'),                                       -- an unknown escape
      chunk('"a\1b"'),                                       -- a raw control character
      chunk('"\255"'),                                       -- not UTF-8
      chunk('"\237\160\128"'),                             -- an encoded surrogate
      chunk('"\192\175"'),                                  -- an overlong
      chunk('"x"', ',"deep":' .. string.rep("[", 70) .. string.rep("]", 70)), -- deeper than 64
      '{"id":"c"',                                            -- cut short
      '{"id":"c",}',                                          -- a trailing comma
      "",
    }

    it("hands an event whole when it cannot answer for it exactly", function()
      local p = core.sse_pick(PICK)
      for _, data in ipairs(WHOLE) do
        assert.is_nil(p:pick(data), data)
        assert.is_nil(by_decoding(data) and p:pick(data), data)
      end
      -- through a transfer: whole events come as they would without a picker
      assert.same({ whole(WHOLE[1]), whole(WHOLE[3]), whole(WHOLE[7]) }, events(sse{ WHOLE[1], WHOLE[3], WHOLE[7] }))
    end)

    -- A stream's events are read through a memo of the last one's shape
    -- (pick.h, owl_pick_memo): an event with the same bytes around its
    -- joined string reads only that string. These cases have the memo's
    -- prefix and suffix and something else between them: each must come out
    -- as the walk alone gives it.
    it("gives the same as a walk for events that share the last one's shape", function()
      local first = chunk('"Hel"', ',"usage":null')
      local cases = {
        chunk('"lo"', ',"usage":1234'),             -- the suffix's absent path present, same length
        chunk('"lo \\u00e9\\n\\""'),            -- escapes: read by the decoder's unescape
        chunk('"x","extra":"y"'),                  -- a quote inside: another member, walked
        chunk('"a","model":"other"'),              -- and one that changes a picked value
        chunk('"a\1b"'),                            -- a raw control character: handed whole
        chunk('"unterminated'),                    -- no closing quote where the suffix begins
        chunk('""'),                               -- empty
        '{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"ok"}}],"usage":{"n":1}}', -- another suffix
        chunk('"ok"'),                             -- a shorter suffix
      }
      for _, c in ipairs(cases) do
        local p = core.sse_pick(PICK)
        local alone = p:pick(c)
        local evs = events(sse{ first, c, first })
        assert.same(picked{ text = "Hel", id = "c1", model = "m" }, evs[1], c)
        if alone then assert.same(picked(alone), evs[2], c) else assert.same(whole(c), evs[2], c) end
        assert.same(picked{ text = "Hel", id = "c1", model = "m" }, evs[3], c)
      end
    end)

    it("never picks what decoding would read otherwise (generated documents)", function()
      local p = core.sse_pick(PICK)
      local parts = { '"id":"c"', '"id":null', '"id":5', '"model":"m"', '"usage":null', '"usage":{}', '"error":null',
        '"choices":[]', '"choices":[{"delta":{"content":"a\\nb"}}]', '"choices":[{"delta":{"content":null}}]',
        '"choices":[{"delta":{}},{"delta":{"content":"2nd"}}]', '"choices":{"1":{"delta":{"content":"x"}}}',
        '"choices":[{"delta":{"content":["x"]}}]', '"x":[1,{"id":"inner"}]', '"\\u0078":1' }
      local seed, checked, picked_n = 7, 0, 0
      local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
      for _ = 1, 3000 do
        local members = {}
        for j = 1, rand(4) do members[j] = parts[rand(#parts)] end
        local data = "{" .. table.concat(members, ",") .. "}"
        local want, got = by_decoding(data), p:pick(data)
        if got ~= nil then
          picked_n = picked_n + 1
          assert.same(want, got, data) -- picked: exactly what decoding reads
        end
        checked = checked + 1
      end
      assert.equal(3000, checked)
      assert.is_true(picked_n > 300, "picked " .. picked_n) -- the fast road is taken, too
    end)

    it("skips what it does not look for, wherever it is, and validates it", function()
      local data = '{"x":[1,-2.5e+3,0.0,true,false,null,{"y":["\\u00e9",{}]},[]],' ..
        '"id" : "c" , "choices":[{"delta":{"role":"assistant","content":"z"},"logprobs":null}, 7]}'
      assert.same({ picked{ id = "c", text = "z" } }, events(sse{ data }))
    end)

    it("picks only events of its type, when it names one", function()
      local picker = { event = "delta", last = { text = { "text" } } }
      local text = "event: delta\ndata: {\"text\":\"a\"}\n\nevent: other\ndata: {\"text\":\"b\"}\n\n"
      assert.same({ { event = "delta", pick = { text = "a" } }, { event = "other", data = '{"text":"b"}' } },
        events(text, picker))
    end)

    it("merges picked events in a row: joined fields concatenated, the others the last value", function()
      local evs = events(sse{
        chunk('"a"'), '{"id":"c2","model":"m","choices":[{"delta":{"content":"b"}}]}', chunk('"c"', ',"usage":{}'),
        chunk('"d"'), '{"id":"a-longer-id","choices":[{"delta":{"content":"e"}}]}', '{"model":"m2"}',
      }, nil, true)
      assert.same({
        picked{ text = "ab", id = "c2", model = "m" },
        whole(chunk('"c"', ',"usage":{}')),
        picked{ text = "de", id = "a-longer-id", model = "m2" },
      }, evs)
    end)

    it("merges with several joined fields, and across event types never", function()
      local picker = { join = { a = { "a" }, b = { "b" } } }
      local text = 'data: {"a":"1","b":"x"}\n\ndata: {"b":"y"}\n\ndata: {"a":"2"}\n\n' ..
        'event: e\ndata: {"a":"3"}\n\ndata: {"a":"4"}\n\n'
      assert.same({
        { event = "message", pick = { a = "12", b = "xy" } },
        { event = "e", pick = { a = "3" } },
        { event = "message", pick = { a = "4" } },
      }, events(text, picker, true))
    end)

    it("with merge, reports a transfer only for events that come whole, or its end", function()
      local loop = core.loop()
      local text = sse{ chunk('"a"'), chunk('"b"'), chunk('"c"'), chunk('"d"') }
      server:script{ { body = text, fault = "drip", drip_ms = 3 } }
      local t = loop:request{ url = server.url .. "/chat/completions", headers = {}, timeout = 10, body = BODY, sse = true }
      t:sse_pick(core.sse_pick(PICK), true)
      local reports, running = 0, 0
      repeat
        for _, r in ipairs(loop:step(-1)) do
          assert.equal(t, r)
          reports = reports + 1
          if t:state() == "running" then running = running + 1 end
        end
      until t:state() == "done"
      assert.equal(0, running) -- the bytes came in many reads, none of them news
      assert.same({ picked{ text = "abcd", id = "c1", model = "m" } }, t:events())
      loop:close()
    end)

    it("leaves events queued before it as they came, and stops with nil", function()
      local loop = core.loop()
      server:script{ { body = sse{ chunk('"a"') } }, { body = sse{ chunk('"b"') } } }
      local spec = { url = server.url .. "/chat/completions", headers = {}, timeout = 10, body = BODY, sse = true }
      local t = loop:request(spec)
      loop:run()
      t:sse_pick(core.sse_pick(PICK))
      assert.same({ whole(chunk('"a"')) }, t:events())
      local u = loop:request(spec)
      u:sse_pick(core.sse_pick(PICK))
      u:sse_pick(nil)
      loop:run()
      assert.same({ whole(chunk('"b"')) }, u:events())
      loop:close()
    end)

    it("misuse raises", function()
      local loop = core.loop()
      server:script{ { body = sse{ chunk('"a"') } }, { body = "{}" } }
      local spec = { url = server.url .. "/chat/completions", headers = {}, timeout = 10, body = BODY, sse = true }
      local t = loop:request(spec)
      local p = core.sse_pick(PICK)
      assert.has_error(function() t:sse_pick({}) end)
      assert.has_error(function() t:sse_pick(p, "yes") end, "owl.core: t:sse_pick merge must be a boolean, not string")
      t:sse_pick(p)
      loop:run()
      -- the queued record names p's fields: another picker cannot read it
      assert.has_error(function() t:sse_pick(core.sse_pick(PICK)) end,
        "owl.core: t:sse_pick() while picked events wait (take them with t:events() first)")
      t:sse_pick(p, true) -- the same picker is fine
      assert.equal(1, #t:events())
      t:sse_pick(core.sse_pick(PICK))
      spec.sse = nil
      local u = loop:request(spec)
      loop:run()
      assert.has_error(function() u:sse_pick(p) end, "owl.core: t:sse_pick() is for a transfer made with spec.sse")
      loop:close()
    end)
  end)
end)
