-- spec/json_spec.lua: owl.json, the C codec. Most of these pin what
-- Debian's lua-cjson 2.1.0 gets wrong for owl: [] turning into {}, integers
-- turning into floats, doubles rounded past 14 digits.
local json = require("owl.json")

local has_integers = math.type ~= nil

-- Deep equality that also tells integers from floats, -0.0 from 0 and
-- arrays from objects, which assert.same does not.
local function same(expected, actual, path)
  path = path or "$"
  assert.are.equal(type(expected), type(actual), path .. ": type")
  if type(expected) == "number" then
    if has_integers then
      assert.are.equal(math.type(expected), math.type(actual), path .. ": number subtype")
    end
    assert.are.equal(expected, actual, path)
    if expected == 0 then
      assert.are.equal(1 / expected, 1 / actual, path .. ": sign of zero")
    end
  elseif type(expected) == "table" then
    assert.are.equal(json.is_array(expected), json.is_array(actual), path .. ": array mark")
    for k, v in pairs(expected) do
      same(v, actual[k], path .. "." .. tostring(k))
    end
    for k in pairs(actual) do
      assert.is_not_nil(expected[k], path .. ": unexpected key " .. tostring(k))
    end
  else
    assert.are.equal(expected, actual, path)
  end
end

local function roundtrip(v)
  return json.decode(json.encode(v))
end

-- A deterministic byte string holding every byte value, for binary safety.
local function bytes(n, seed)
  local t, x = {}, seed or 1
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(math.floor(x / 65536) % 256)
  end
  return table.concat(t)
end

local function nested_arrays(n)
  local t = json.array()
  local inner = t
  for _ = 2, n do
    local next_level = json.array()
    inner[1] = next_level
    inner = next_level
  end
  return t
end

describe("owl.json", function()
  describe("module", function()
    it("is core.json", function()
      assert.are.equal(require("owl.core").json, json)
    end)

    it("keeps the array metatable in the registry and marks it for debugging", function()
      assert.are.equal(json.array_mt, debug.getregistry()["owl.json.array"])
      assert.are.equal("owl.json.array", json.array_mt.__name)
      local rope_mt = getmetatable(json.rope({}))
      assert.are.equal(rope_mt, debug.getregistry()["owl.json.rope"])
      assert.are.equal("owl.json.rope", rope_mt.__name)
      assert.are_not.equal(json.array_mt, rope_mt)
    end)
  end)

  describe("round trips", function()
    it("keeps nested values", function()
      local v = {
        name = "owl",
        list = { 1, 2.5, "three", { four = 4 }, json.null, true, false },
        empty_array = json.array(),
        empty_object = {},
        deep = { a = { b = { c = { "d" } } } },
        text = "line 1\nline \"2\"\t\195\169",
      }
      local back = roundtrip(v)
      -- plain sequences come back marked as arrays
      v.list = json.array(v.list)
      v.deep.a.b.c = json.array(v.deep.a.b.c)
      same(v, back)
    end)

    it("re-encodes a decoded document to the same text", function()
      for _, s in ipairs({
        '[1,2.5,"x",null,true,false,[],{},[[]],{"a":[]}]',
        '{"required":[]}',
        '{"a":{"b":{"c":[1,{"d":"e"}]}}}',
        '"\\"\\\\\\n\\u0001\226\130\172"',
        "-0.5",
      }) do
        assert.are.equal(s, json.encode(json.decode(s)))
      end
    end)
  end)

  describe("[] and {}", function()
    it("decodes [] as a marked array and {} as a plain table", function()
      local a, o = json.decode("[]"), json.decode("{}")
      assert.is_true(json.is_array(a))
      assert.are.equal(json.array_mt, getmetatable(a))
      assert.is_false(json.is_array(o))
      assert.is_nil(getmetatable(o))
      assert.are.equal("[]", json.encode(a))
      assert.are.equal("{}", json.encode(o))
    end)

    it("keeps an empty required list an array through a round trip", function()
      local body = json.decode('{"type":"object","required":[],"properties":{}}')
      local back = json.decode(json.encode(body))
      assert.is_true(json.is_array(back.required))
      assert.is_false(json.is_array(back.properties))
      assert.are.equal('{"required":[]}', json.encode({ required = body.required }))
      assert.are.equal('{"properties":{}}', json.encode({ properties = body.properties }))
    end)

    it("encodes an empty plain table as {} and json.array() as []", function()
      assert.are.equal("{}", json.encode({}))
      assert.are.equal("[]", json.encode(json.array()))
      assert.are.equal("[]", json.encode(json.array({})))
    end)

    it("array() marks the given table and returns it", function()
      local t = { 1, 2 }
      assert.are.equal(t, json.array(t))
      assert.is_true(json.is_array(t))
      assert.are.equal("[1,2]", json.encode(t))
      assert.has_error(function() json.array("x") end)
    end)

    it("is_array is false for plain tables and non-tables", function()
      assert.is_false(json.is_array({ 1, 2 }))
      assert.is_false(json.is_array("[]"))
      assert.is_false(json.is_array(nil))
      assert.is_false(json.is_array(setmetatable({}, {})))
    end)

    it("encodes a plain sequence as an array and string keys as an object", function()
      assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.are.equal('{"a":1}', json.encode({ a = 1 }))
      assert.are.equal('[[1],{"k":[]}]', json.encode({ { 1 }, { k = json.array() } }))
    end)

    it("decodes null inside arrays as json.null, so arrays have no holes", function()
      local a = json.decode("[1,null,3,null]")
      assert.are.equal(4, #a)
      assert.are.equal(json.null, a[2])
      assert.are.equal(json.null, a[4])
      assert.are.equal("[1,null,3,null]", json.encode(a))
    end)

    it("encodes a marked array over 1..#t", function()
      assert.are.equal('[1,"x",{}]', json.encode(json.array({ 1, "x", {} })))
    end)
  end)

  describe("numbers", function()
    if has_integers then
      it("keeps integers past 2^53 exact (5.3+)", function()
        local big = 9007199254740993 -- 2^53 + 1, an integer literal on 5.3+
        assert.are.equal("integer", math.type(big))
        assert.are.equal("9007199254740993", json.encode(big))
        local back = json.decode("9007199254740993")
        assert.are.equal("integer", math.type(back))
        assert.are.equal(big, back)
      end)

      it("keeps math.maxinteger and math.mininteger (5.3+)", function()
        assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
        assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
        same(math.maxinteger, roundtrip(math.maxinteger))
        same(math.mininteger, roundtrip(math.mininteger))
        same(json.array({ math.mininteger, 0, -1 }), json.decode("[-9223372036854775808,0,-1]"))
      end)

      it("decodes integers beyond lua_Integer as floats (5.3+)", function()
        same(9223372036854775808.0, json.decode("9223372036854775808"))
        same(-9223372036854775809.0, json.decode("-9223372036854775809"))
        same(1e30, json.decode("1000000000000000000000000000000"))
      end)

      it("keeps an integral float a float (5.3+)", function()
        assert.are.equal("1.0", json.encode(1.0))
        assert.are.equal("-3.0", json.encode(-3.0))
        assert.are.equal("9007199254740992.0", json.encode(2 ^ 53))
        assert.are.equal("12345678901234568.0", json.encode(12345678901234568.0))
        assert.are.equal("1e+16", json.encode(1e16)) -- already has an exponent
        same(1.0, roundtrip(1.0))
        same(1e16, roundtrip(1e16))
        same(1, json.decode("1"))
        same(1.0, json.decode("1.0"))
        same(100.0, json.decode("1e2"))
        same(100.0, json.decode("1E+2"))
      end)
    else
      it("uses doubles, exact up to 2^53 (5.1, LuaJIT)", function()
        assert.are.equal("9007199254740992", json.encode(2 ^ 53))
        assert.are.equal(2 ^ 53, json.decode("9007199254740992"))
        assert.are.equal("-9007199254740992", json.encode(-2 ^ 53))
        -- 2^53 + 1 has no double: it rounds to nearest even, as strtod does
        assert.are.equal(2 ^ 53, json.decode("9007199254740993"))
        assert.are.equal(2 ^ 53 + 2, json.decode("9007199254740994"))
      end)

      it("encodes integral doubles without a fraction (5.1, LuaJIT)", function()
        assert.are.equal("1", json.encode(1.0))
        assert.are.equal("-3", json.encode(-3))
        assert.are.equal("123456789012345", json.encode(123456789012345))
        assert.are.equal(1e16, json.decode(json.encode(1e16)))
        assert.are.equal(2 ^ 63, json.decode("9223372036854775808"))
      end)
    end

    it("round-trips doubles exactly", function()
      for _, x in ipairs({
        0.1, 1 / 3, 2 / 3, 1e300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
        0.1 + 0.2, math.pi, -math.pi, 123.456, -2.5e-7, 1e-7, 1e21, 1e22, 1e23, 2 ^ 60 + 2 ^ 8,
        4.35, 0.3, 1234567.891, 9007199254740993.5,
      }) do
        local back = roundtrip(x)
        assert.are.equal(x, back, "round trip of " .. string.format("%.17g", x))
        if has_integers and math.type(x) == "float" then
          assert.are.equal("float", math.type(back))
        end
      end
    end)

    it("prints the shortest text that reads back exactly", function()
      assert.are.equal("0.1", json.encode(0.1))
      assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
      assert.are.equal("0.3333333333333333", json.encode(1 / 3))
      assert.are.equal("1.5", json.encode(1.5))
      assert.are.equal("1e+300", json.encode(1e300))
    end)

    it("keeps the sign of -0.0", function()
      local z = roundtrip(-0.0)
      assert.are.equal(0, z)
      assert.are.equal(-math.huge, 1 / z)
      assert.are.equal(-math.huge, 1 / json.decode("-0"))
      assert.are.equal(-math.huge, 1 / json.decode("-0.0"))
      assert.are.equal(math.huge, 1 / json.decode("0"))
      if has_integers then
        assert.are.equal("float", math.type(json.decode("-0")))
      end
    end)

    it("decodes every number form as strtod would, correctly rounded", function()
      for _, s in ipairs({
        "0.1", "1E3", "1e-3", "-12.5e+2", "123456789.123456789", "4.9e-324", "1.7976931348623157e308",
        "2.2250738585072014e-308", "0.30000000000000004", "3.141592653589793238462643383279",
        "1e23", "8.98846567431158e307", "0.000001", "12345678901234567890.5", "1.00000000000000011102230246251565404236316680908203125",
        "7.3177701707893310e+15", "9007199254740993.0", "0e500", "-0e-500",
      }) do
        local expected = tonumber(s)
        local got = json.decode(s)
        assert.are.equal(expected, got, s)
        if has_integers then
          assert.are.equal("float", math.type(got), s)
        end
      end
    end)

    it("decodes a number out of double range as infinity, as tonumber does", function()
      assert.are.equal(math.huge, json.decode("1e400"))
      assert.are.equal(-math.huge, json.decode("-1e400"))
    end)
  end)

  describe("strings", function()
    it("escapes quote, backslash and control characters, and nothing else", function()
      assert.are.equal([["\"\\/\b\f\n\r\t"]], json.encode('"\\/\b\f\n\r\t'))
      assert.are.equal([["\u0000\u0001\u001f"]], json.encode("\0\1\31"))
      assert.are.equal('"\127 ~"', json.encode("\127 ~"))
      assert.are.equal('"\195\169\240\159\152\128"', json.encode("\195\169\240\159\152\128"))
    end)

    it("decodes every escape", function()
      assert.are.equal('"\\/\b\f\n\r\t', json.decode([["\"\\\/\b\f\n\r\t"]]))
      assert.are.equal("\195\169", json.decode('"\\u00e9"'))
      assert.are.equal("\195\169", json.decode('"\\u00E9"'))
      assert.are.equal("A\0B", json.decode('"A\\u0000B"'))
      assert.are.equal("\226\130\172", json.decode('"\\u20ac"'))
      assert.are.equal("x\195\169y\nz", json.decode('"x\\u00e9y\\nz"'))
    end)

    it("combines a surrogate pair into the 4-byte UTF-8 of U+1F600", function()
      assert.are.equal("\240\159\152\128", json.decode('"\\ud83d\\ude00"'))
      assert.are.equal("a\240\159\152\128b", json.decode('"a\\uD83D\\uDE00b"'))
    end)

    it("rejects a lone surrogate", function()
      for _, s in ipairs({ '"\\ud83d"', '"\\ude00"', '"\\ud83d\\u0041"', '"\\ud83dx"', '"\\ud83d\\ud83d"' }) do
        local v, err = json.decode(s)
        assert.is_nil(v, s)
        assert.matches("surrogate", err, 1, true)
        assert.matches("at byte %d+", err)
      end
    end)

    it("rejects raw control characters inside strings", function()
      for _, s in ipairs({ '"a\nb"', '"\1"', '"tab\there"', '"\31"' }) do
        local v, err = json.decode(s)
        assert.is_nil(v)
        assert.matches("control character", err, 1, true)
      end
      local _, err = json.decode('"ab\ncd"')
      assert.are.equal("json: control character 0x0A in string at byte 4 (line 1, column 4)", err)
    end)

    it("round-trips arbitrary text: every byte value, made valid UTF-8 where it was not", function()
      local raw = bytes(100000, 7)
      assert.is_not_nil(json.utf8_error(raw)) -- random bytes are not UTF-8 ...
      local s = json.fix_utf8(raw)            -- ... until each bad byte becomes U+FFFD
      assert.is_nil(json.utf8_error(s))
      assert.are.equal(s, json.decode(json.encode(s)))
      assert.are.equal(s, json.decode(json.encode({ s }))[1])
      assert.are.equal(s, json.decode(json.encode(raw, { invalid_utf8 = "replace" })))
    end)

    it("finds a special byte at any offset of an 8-byte block", function()
      local expected = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\0"] = "\\u0000", ["\31"] = "\\u001f",
        ["\127"] = "\127", ["\195\169"] = "\195\169", [" "] = " " }
      for c, esc in pairs(expected) do
        for len = 1, 19 do
          for pos = 1, len do
            local s = string.rep("a", pos - 1) .. c .. string.rep("b", len - pos)
            local text = '"' .. string.rep("a", pos - 1) .. esc .. string.rep("b", len - pos) .. '"'
            assert.are.equal(text, json.encode(s))
            assert.are.equal(s, json.decode(text))
            if c:byte() < 32 then -- raw, it must be refused wherever it is
              local v, err = json.decode('"' .. s .. '"')
              assert.is_nil(v)
              assert.are.equal(string.format("json: control character 0x%02X in string at byte %d (line 1, column %d)",
                c:byte(), pos + 1, pos + 1), err)
            end
          end
        end
      end
    end)

    it("decodes long plain and escaped strings", function()
      local plain = string.rep("abcdefgh", 50000)
      assert.are.equal(plain, json.decode('"' .. plain .. '"'))
      local escaped = string.rep('a\\"b\\n', 50000)
      assert.are.equal(string.rep('a"b\n', 50000), json.decode('"' .. escaped .. '"'))
    end)
  end)

  describe("depth", function()
    it("decodes 1000 levels and refuses 1001, naming the limit", function()
      local ok = json.decode(string.rep("[", 1000) .. string.rep("]", 1000))
      assert.is_true(json.is_array(ok))
      local v, err = json.decode(string.rep("[", 1001) .. string.rep("]", 1001))
      assert.is_nil(v)
      assert.are.equal("json: nesting deeper than 1000 at byte 1001 (line 1, column 1001)", err)
      v, err = json.decode(string.rep('{"a":', 1001) .. "1" .. string.rep("}", 1001))
      assert.is_nil(v)
      assert.matches("nesting deeper than 1000", err, 1, true)
    end)

    it("encodes 1000 levels and refuses 1001, naming the limit", function()
      assert.are.equal(string.rep("[", 1000) .. string.rep("]", 1000), json.encode(nested_arrays(1000)))
      local ok, err = pcall(json.encode, nested_arrays(1001))
      assert.is_false(ok)
      assert.matches("nesting deeper than 1000", err, 1, true)
    end)

    it("takes max_depth from the options", function()
      assert.is_nil(json.decode("[[[1]]]", { max_depth = 2 }))
      assert.is_not_nil(json.decode("[[[1]]]", { max_depth = 3 }))
      local _, err = json.decode("[[[1]]]", { max_depth = 2 })
      assert.matches("nesting deeper than 2", err, 1, true)
      assert.has_error(function() json.encode({ { { 1 } } }, { max_depth = 2 }) end)
      assert.are.equal("[[[1]]]", json.encode({ { { 1 } } }, { max_depth = 3 }))
    end)

    it("fails on a cycle instead of looping", function()
      local t = { name = "loop" }
      t.self = t
      local ok, err = pcall(json.encode, t)
      assert.is_false(ok)
      assert.matches("nesting deeper than 1000", err, 1, true)
      assert.matches("cycle", err, 1, true)
      local a = json.array()
      a[1] = a
      assert.is_false((pcall(json.encode, a)))
    end)
  end)

  describe("malformed input", function()
    local cases = {
      "", " ", "[", "]", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[,1]", "[1 2]",
      "{a:1}", "{'a':1}", "'a'", "{\"a\" 1}", "{1:2}", "nul", "tru", "fals", "True", "NULL",
      "NaN", "Infinity", "-Infinity", "+1", "01", "-01", "00", "1.", ".5", "1.e3", "1e", "1e+",
      "-", "--1", "0x10", "1 2", "[1]]", "{}}", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
      "\"\\", "\"\\u", "/* c */ 1", "// c\n1", "[1,2", "{\"a\":1", "\"a\tb\"", "\v1", "\f1",
      "\0", "1\0", "\239\187\191{}", "[1,\n2,\n]", "{\"a\":1 \"b\":2}", "[\"a\",]", "truefalse",
    }
    for _, s in ipairs(cases) do
      it(string.format("rejects %q with a byte offset", s), function()
        local v, err = json.decode(s)
        assert.is_nil(v)
        assert.is_string(err)
        assert.matches("^json: .* at byte %d+ %(line %d+, column %d+%)$", err)
      end)
    end

    it("names the character, byte, line and column", function()
      local _, err = json.decode("[1, x]")
      assert.are.equal("json: unexpected character 'x' at byte 5 (line 1, column 5)", err)
      _, err = json.decode("[1,\n 2,\n ]")
      assert.are.equal("json: unexpected character ']' at byte 10 (line 3, column 2)", err)
      _, err = json.decode('{"a": "abc')
      assert.are.equal("json: unterminated string starting at byte 7 (line 1, column 7)", err)
      _, err = json.decode("{} x")
      assert.are.equal("json: unexpected character 'x' at byte 4 (line 1, column 4)", err)
      _, err = json.decode("[1,")
      assert.are.equal("json: unexpected end of input at byte 4 (line 1, column 4)", err)
      _, err = json.decode("[01]")
      assert.matches("leading zero", err, 1, true)
    end)

    it("accepts the whitespace RFC 8259 allows, around any token", function()
      same({ a = json.array({ 1, 2 }) }, json.decode(' \t\r\n{ "a" :\n[ 1 ,\t2 ] }\r\n '))
      assert.are.equal("", json.decode('""'))
    end)

    it("lets the last of repeated keys win", function()
      assert.are.equal(2, json.decode('{"a":1,"a":2}').a)
    end)
  end)

  describe("null", function()
    it("is a NULL light userdata distinct from nil", function()
      assert.are.equal("userdata", type(json.null))
      assert.is_false(json.null == nil)
      assert.is_true(json.null ~= nil)
    end)

    it("round-trips at the top level and inside values", function()
      assert.are.equal(json.null, json.decode("null"))
      assert.are.equal("null", json.encode(json.null))
      assert.are.equal("null", json.encode(nil))
      assert.are.equal('{"a":null}', json.encode({ a = json.null }))
      assert.are.equal(json.null, json.decode('{"a":null}').a)
      assert.are.equal(json.null, roundtrip({ json.null })[1])
    end)

    it("requires a value to encode", function()
      assert.has_error(function() json.encode() end)
    end)
  end)

  describe("rope", function()
    it("encodes its pieces as one escaped string", function()
      local r = json.rope({ 'say "hi"', "\nline 2\\", "\195\169", "" })
      assert.are.equal([["say \"hi\"\nline 2\\]] .. "\195\169" .. '"', json.encode(r))
      assert.are.equal('say "hi"\nline 2\\\195\169', json.decode(json.encode(r)))
    end)

    it("returns the table it marks and encodes inside a structure", function()
      local pieces = { "a", "b" }
      assert.are.equal(pieces, json.rope(pieces))
      assert.are.equal('{"content":"ab"}', json.encode({ content = pieces }))
      assert.are.equal('""', json.encode(json.rope({})))
      assert.are.equal('["x\\ny"]', json.encode({ json.rope({ "x\n", "y" }) }))
    end)

    it("writes large pieces exactly", function()
      local big = string.rep('0123456789"\n', 100000)
      local mixed = json.fix_utf8(bytes(300000, 3))
      local r = json.rope({ big, mixed, big })
      assert.are.equal(big .. mixed .. big, json.decode(json.encode(r)))
    end)

    it("fails on a non-string piece, naming its index", function()
      local ok, err = pcall(json.encode, { body = json.rope({ "a", "b", 3 }) })
      assert.is_false(ok)
      assert.matches("rope piece 3 is a number", err, 1, true)
      ok, err = pcall(json.encode, json.rope({ {} }))
      assert.is_false(ok)
      assert.matches("rope piece 1 is a table", err, 1, true)
    end)
  end)

  describe("encode errors", function()
    local function encode_error(v)
      local ok, err = pcall(json.encode, v)
      assert.is_false(ok)
      return err
    end

    it("names a function, a thread, a userdata", function()
      assert.matches("cannot encode a function", encode_error(print), 1, true)
      assert.matches("cannot encode a thread", encode_error(coroutine.create(function() end)), 1, true)
      assert.matches("cannot encode a userdata", encode_error(io.stdout), 1, true)
    end)

    it("names NaN and infinities", function()
      assert.matches("cannot encode NaN", encode_error(0 / 0), 1, true)
      assert.matches("cannot encode inf", encode_error(math.huge), 1, true)
      assert.matches("cannot encode -inf", encode_error(-math.huge), 1, true)
    end)

    it("names mixed, sparse and non-string keys", function()
      local err = encode_error({ 1, 2, x = 1 })
      assert.matches("mixed keys", err, 1, true)
      err = encode_error({ [1] = "a", [3] = "c" })
      assert.matches("sparse keys (key 3", err, 1, true)
      assert.matches("key of type boolean", encode_error({ [true] = 1 }), 1, true)
    end)

    it("names a fractional or non-positive number key", function()
      assert.matches("key 1.5", encode_error({ [1.5] = 1 }), 1, true)
      assert.matches("key 0", encode_error({ [0] = 1 }), 1, true)
    end)

    it("says where in the value the problem is", function()
      local err = encode_error({ messages = { { role = "user" }, { content = print } } })
      assert.matches("at $.messages[2].content", err, 1, true)
      err = encode_error({ ["odd key"] = { 0 / 0 } })
      assert.matches('at $["odd key"][1]', err, 1, true)
    end)

    it("leaves the codec usable after a failure", function()
      encode_error({ a = { b = print } })
      assert.are.equal('{"a":{"b":1}}', json.encode({ a = { b = 1 } }))
    end)
  end)

  describe("options", function()
    it("decode raises on an unknown option or a wrong type", function()
      assert.has_error(function() json.decode("1", { foo = 1 }) end)
      local ok, err = pcall(json.decode, "1", { foo = 1 })
      assert.is_false(ok)
      assert.matches("unknown option 'foo'", err, 1, true)
      assert.has_error(function() json.decode("1", { max_depth = "10" }) end)
      assert.has_error(function() json.decode("1", { max_depth = 1.5 }) end)
      assert.has_error(function() json.decode("1", { max_depth = 0 }) end)
      assert.has_error(function() json.decode("1", { max_depth = 10001 }) end) -- the C stack's ceiling
      assert.has_error(function() json.decode("1", { max_bytes = -1 }) end)
      assert.has_error(function() json.decode("1", 5) end)
      assert.has_error(function() json.decode(123) end)
      assert.has_error(function() json.decode() end)
    end)

    it("encode raises on an unknown option", function()
      assert.has_error(function() json.encode(1, { bogus = true }) end)
      assert.has_error(function() json.encode(1, { max_depth = -1 }) end)
    end)

    it("decode refuses a document larger than max_bytes", function()
      local v, err = json.decode("[1,2]", { max_bytes = 4 })
      assert.is_nil(v)
      assert.are.equal("json: document of 5 bytes exceeds max_bytes 4", err)
      same(json.array({ 1, 2 }), json.decode("[1,2]", { max_bytes = 5 }))
    end)
  end)

  describe("locale", function()
    -- A host may set LC_NUMERIC to a locale with a decimal comma; the codec
    -- must still read and write '.'.
    local function comma_locale()
      for _, name in ipairs({ "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR" }) do
        -- all of these write 0.5 as "0,5" (LuaJIT's own string.format
        -- ignores the locale, so it cannot be used to check)
        if os.setlocale(name, "numeric") then return name end
      end
    end

    it("ignores a decimal comma in LC_NUMERIC", function()
      -- tools/install-deps generates de_DE.UTF-8 for the test run
      local name = comma_locale()
      os.setlocale("C", "numeric")
      assert.is_string(name, "no locale with a decimal comma is installed (tools/install-deps test makes one)")
      os.setlocale(name, "numeric")
      finally(function() os.setlocale("C", "numeric") end)
      assert.are.equal("0.5", json.encode(0.5))
      assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
      assert.are.equal("1.5e+300", json.encode(1.5e300))
      assert.are.equal(0.5, json.decode("0.5"))
      assert.are.equal(1.5e300, json.decode("1.5e300"))
      assert.are.equal(0.1 + 0.2, json.decode("0.30000000000000004"))
      assert.are.equal(1 / 3, json.decode(json.encode(1 / 3)))
    end)
  end)

  describe("object", function()
    it("encodes the listed keys first, in their order, then the others", function()
      local t = json.object({ zeta = 1, alpha = 2, mid = 3, extra = true }, { "zeta", "mid", "alpha", "absent" })
      local out = json.encode(t)
      assert.are.equal('{"zeta":1,"mid":3,"alpha":2,"extra":true}', out)
      assert.are.equal(out, json.encode(t)) -- stable
    end)

    it("keeps the order when nested and with a new table", function()
      local inner = json.object({ b = "x", a = json.array() }, { "b", "a" })
      local outer = json.object({ "second", "first" })
      outer.first, outer.second = inner, 2
      assert.are.equal('{"second":2,"first":{"b":"x","a":[]}}', json.encode(outer))
    end)

    it("names a bad key list or a bad key", function()
      assert.has_error(function() json.object({}, { 1 }) end, "json.object: keys[1] must be a string")
      local t = json.object({ a = 1 }, { "a" })
      t[5] = true
      assert.has_error(function() json.encode(t) end)
    end)
  end)
end)
