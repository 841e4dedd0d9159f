-- spec/core_hardening_spec.lua: regressions from the hostile review "owl 2
-- of 6" of owl.core, one describe per bug, named after it. HTTP cases run
-- against a tiny raw server (node, 127.0.0.1 only) that does what the mock
-- LLM server will not: megabyte headers, a body that stops half-way, silence
-- before the first byte.
local core = require("owl.core")
local json = require("owl.json")
local socket = require("socket")

local SERVER_JS = [[
const net = require('net');
const srv = net.createServer((c) => {
  let buf = '';
  c.on('error', () => {});
  c.on('data', (d) => {
    buf += d;
    if (buf.indexOf('\r\n\r\n') < 0) return;
    const path = buf.split(' ')[1] || '/';
    const arg = Number(path.split('=')[1] || 0);
    buf = '';
    const ok = (body) => c.write('HTTP/1.1 200 OK\r\nContent-Length: ' + body.length + '\r\n\r\n' + body);
    if (path.startsWith('/bigheader')) {
      c.write('HTTP/1.1 200 OK\r\nX-Big: ' + 'a'.repeat(arg) + '\r\nContent-Length: 2\r\n\r\nok');
    } else if (path.startsWith('/manyheaders')) {
      let h = 'HTTP/1.1 200 OK\r\n';
      for (let i = 0; i < arg; i++) h += 'X-H' + i + ': ' + 'b'.repeat(1000) + '\r\n';
      c.write(h + 'Content-Length: 2\r\n\r\nok');
    } else if (path.startsWith('/stall')) {
      c.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome bytes');
    } else if (path.startsWith('/late')) {
      setTimeout(() => ok('late'), arg);
    } else if (path.startsWith('/body')) {
      ok('x'.repeat(arg));
    } // /hold: never answers
  });
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port + ' ' + process.pid));
setTimeout(() => process.exit(0), 600000).unref();
]]

-- Starts the server; returns its base URL and a function that stops it.
local function start_server()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(SERVER_JS)
  f:close()
  -- the suite may run with ASan preloaded: node must not inherit it
  local p = assert(io.popen("unset LD_PRELOAD; exec node " .. path, "r"))
  local port, pid = p:read("*l"):match("^(%d+) (%d+)$")
  os.remove(path)
  return "http://127.0.0.1:" .. port, function()
    os.execute("kill " .. pid)
    p:close()
  end
end

-- Runs one request to completion; returns the transfer and the seconds it took.
local function fetch(url, extra)
  local spec = { url = url, timeout = 20 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  local loop = core.loop()
  local t0 = socket.gettime()
  local t = loop:request(spec)
  loop:run()
  loop:close()
  return t, socket.gettime() - t0
end

local BAD_NUMBERS = { { "NaN", 0 / 0 }, { "inf", 1 / 0 }, { "-inf", -1 / 0 }, { "1e20", 1e20 }, { "2^53", 2 ^ 53 },
                      { "a fraction", 0.5 } }

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "no error")
  assert.truthy(tostring(err):find(pattern, 1, true), tostring(err))
end

describe("regression: float-to-int casts of NaN, inf and 1e20 (UB)", function()
  it("loop:step clamps its wait and refuses NaN", function()
    local loop = core.loop()
    raises("timeout_ms is NaN", loop.step, loop, 0 / 0)
    for _, w in ipairs({ 1 / 0, -1 / 0, 1e20, 2 ^ 53, 0.5 }) do assert.same({}, loop:step(w)) end
    loop:close()
  end)

  for _, case in ipairs(BAD_NUMBERS) do
    local name, v = case[1], case[2]
    it("raises naming the argument for " .. name, function()
      local loop = core.loop()
      raises("loop:action fd must be an integer", loop.action, loop, v)
      raises("max_in_flight must be a positive integer", core.loop, { max_in_flight = v })
      raises("spec.max_response_bytes must be an integer", loop.request, loop,
        { url = "http://127.0.0.1:9/", max_response_bytes = v })
      raises("budget max_bytes must be an integer", core.budget, v)
      raises("isatty fd must be an integer", core.isatty, v)
      if v ~= 0.5 then -- a fraction of a second is a fine timeout
        for _, field in ipairs({ "timeout", "connect_timeout", "stall_timeout" }) do
          raises("spec." .. field .. " must be between 0 and 1e9 seconds", loop.request, loop,
            { url = "http://127.0.0.1:9/", [field] = v })
        end
      end
      assert.equal(0, select(2, loop:pending()))
      loop:close()
    end)
  end

  it("t:body refuses a bad max_bytes", function()
    local loop = core.loop()
    local t = loop:request{ url = "http://127.0.0.1:9/", connect_timeout = 1 }
    loop:run()
    for _, case in ipairs(BAD_NUMBERS) do
      raises("t:body max_bytes must be an integer", t.body, t, case[2])
      raises("t:take max_bytes must be an integer", t.take, t, case[2])
    end
    loop:close()
  end)
end)

describe("regression: invalid UTF-8 passed through json.encode (invalid JSON on the wire)", function()
  local function encode_error(v, opts)
    local ok, err = pcall(json.encode, v, opts)
    assert.is_false(ok)
    return err
  end

  it("rejects overlongs, surrogates, > U+10FFFF, truncations and stray continuations, naming byte and path", function()
    for _, bad in ipairs({ "\192\175", "\224\128\175", "\237\160\128", "\244\144\128\128", "\248\136\128\128\128",
                           "\226\130", "\128", "ab\191", "\255" }) do
      assert.matches("^json: invalid UTF%-8 at byte %d+ of the string at %$$", encode_error(bad))
    end
    assert.equal("json: invalid UTF-8 at byte 3 of the string at $.messages[2].content",
      encode_error({ messages = { { content = "ok" }, { content = "ab\237\160\128" } } }))
    assert.equal("json: invalid UTF-8 at byte 4 of the key at $.x", encode_error({ x = { ["bad\192"] = 1 } }))
  end)

  it("accepts every well-formed sequence, at any offset of an 8-byte block", function()
    for _, good in ipairs({ "\194\128", "\223\191", "\224\160\128", "\237\159\191", "\238\128\128", "\240\144\128\128",
                            "\244\143\191\191", "\195\169\240\159\152\128" }) do
      for pad = 0, 9 do
        local s = string.rep("a", pad) .. good .. "z"
        assert.equal('"' .. s .. '"', json.encode(s))
        assert.equal(s, json.decode(json.encode(s)))
      end
    end
  end)

  it("checks a rope across its pieces (a character may be split between two)", function()
    assert.equal('"\195\169t\195\169"', json.encode(json.rope({ "\195", "\169t\195", "\169" })))
    assert.equal("json: invalid UTF-8 at byte 3 of the string at $.content",
      encode_error({ content = json.rope({ "ok", "\226\130", "!" }) }))
    assert.equal("json: invalid UTF-8 at byte 3 of the string at $", encode_error(json.rope({ "ab\195" })))
  end)

  it("replaces each maximal invalid subpart by U+FFFD with invalid_utf8 = \"replace\"", function()
    local R = "\239\191\189"
    -- Unicode 15, table 3-8
    local s = "a\224\128\128b\237\160\128c\244\144\128\128d\192\175e\128"
    local fixed = "a" .. R:rep(3) .. "b" .. R:rep(3) .. "c" .. R:rep(4) .. "d" .. R:rep(2) .. "e" .. R
    assert.equal('"' .. fixed .. '"', json.encode(s, { invalid_utf8 = "replace" }))
    assert.equal('{"k' .. R .. '":"ok \195\169' .. R .. '"}',
      json.encode({ ["k\255"] = json.rope({ "ok \195", "\169", "\226\130" }) }, { invalid_utf8 = "replace" }))
    assert.equal(fixed, json.fix_utf8(s))
    assert.equal("plain \195\169", json.fix_utf8("plain \195\169"))
    assert.has_error(function() json.encode("x", { invalid_utf8 = "drop" }) end)
  end)

  it("json.utf8_error gives the offset of the first invalid byte", function()
    assert.is_nil(json.utf8_error("abc \240\159\152\128"))
    assert.equal(3, json.utf8_error("ab\195"))
    assert.equal(1, json.utf8_error("\128abc"))
    assert.equal(2, json.utf8_error("a\237\160\128"))
    assert.equal(10, json.utf8_error("123456789\255"))
  end)

  it("decode rejects raw invalid UTF-8 with its offset, and lone surrogate escapes", function()
    local v, err = json.decode('["ok", "\237\160\128"]')
    assert.is_nil(v)
    assert.equal("json: invalid UTF-8 in string at byte 9 (line 1, column 9)", err)
    v, err = json.decode('"a\\n\255"')
    assert.is_nil(v)
    assert.matches("invalid UTF-8 in string at byte 5", err, 1, true)
    assert.matches("lone surrogate", select(2, json.decode('"\\ud800"')), 1, true)
  end)

  it("a request body with invalid UTF-8 raises at configure, naming the path", function()
    local loop = core.loop()
    raises("owl.core: request body: json: invalid UTF-8 at byte 1 of the string at $.messages[1].content",
      loop.request, loop, { url = "http://127.0.0.1:9/", body = { messages = { { content = "\255" } } } })
    raises("invalid UTF-8 at byte 2 of the string at $.input", core.work, loop, { url = "http://127.0.0.1:9/" },
      { { input = "ok" }, { input = "a\128" } })
    assert.equal(0, select(2, loop:pending()))
    loop:close()
  end)
end)

describe("regression: json.array{1, 2, x = 3} dropped x, json.object emitted a repeated key", function()
  it("raises on a marked array or rope with other keys, naming the key", function()
    raises('cannot encode a json.array with key "x"', json.encode, json.array({ 1, 2, x = 3 }))
    raises("cannot encode a json.array with sparse keys (key 3", json.encode, { a = json.array({ [1] = 1, [3] = 3 }) })
    raises('cannot encode a json.rope with key "x"', json.encode, json.rope({ "a", x = "b" }))
    assert.equal("[]", json.encode(json.array()))
  end)

  it("json.object refuses a repeated key and copies its list", function()
    raises('json.object: keys[3] repeats "a" (keys[1])', json.object, {}, { "a", "b", "a" })
    local keys = { "b", "a" }
    local t = json.object({ a = 1, b = 2 }, keys)
    keys[3] = "b" -- too late: the list was copied
    assert.equal('{"b":2,"a":1}', json.encode(t))
    -- a listed key absent from the table is skipped (optional properties)
    assert.equal('{"c":3}', json.encode(json.object({ c = 3 }, { "absent", "c" })))
  end)
end)

describe("responses over HTTP", function()
  local base, stop
  setup(function() base, stop = start_server() end)
  teardown(function() stop() end)

  describe("regression: a 1 MB response header gave 'Out of memory'", function()
    it("says a header line was too large", function()
      local kind, message = fetch(base .. "/bigheader=1000000"):failure()
      assert.equal("protocol", kind)
      assert.equal("a response header line is larger than libcurl accepts (100 KB)", message)
    end)

    it("caps the headers a transfer keeps at 256 KiB", function()
      local kind, message = fetch(base .. "/manyheaders=300"):failure()
      assert.equal("protocol", kind)
      assert.equal("the response headers are larger than 256 KiB", message)
      assert.is_nil(fetch(base .. "/manyheaders=200"):failure())
    end)
  end)

  describe("regression: no memory budget across transfers", function()
    it("fails the transfer that would pass the shared budget", function()
      local b = core.budget(250)
      assert.equal(250, b:limit())
      local loop = core.loop()
      local first = loop:request{ url = base .. "/body=100", budget = b }
      loop:run()
      assert.is_nil(first:failure())
      local used = b:used()
      assert.is_true(used > 100 and used < 250)
      local second = loop:request{ url = base .. "/body=100", budget = b }
      b = nil -- luacheck: ignore 311 (the transfer keeps the budget alive)
      collectgarbage("collect")
      loop:run()
      local kind, message = second:failure()
      assert.equal("protocol", kind)
      assert.equal("the responses of this run passed their budget of 250 bytes (max_total_response_bytes)", message)
      loop:close()
    end)

    it("is taken by core.work and refused when not a budget", function()
      local b = core.budget(1000000)
      local loop = core.loop()
      core.work(loop, { url = base .. "/body=1000", budget = b }, { "a", "b", "c" })
      loop:run()
      assert.is_true(b:used() > 3000)
      raises("spec.budget must be a budget made by core.budget", loop.request, loop, { url = base, budget = {} })
    end)

    it("max_response_bytes defaults to 64 MiB", function()
      local kind, message = fetch(base .. "/body=" .. (64 * 1024 * 1024 + 1)):failure()
      assert.equal("protocol", kind)
      assert.matches("max_response_bytes (67108864 bytes)", message, 1, true)
    end)
  end)

  describe("an sse framing error (spec.sse)", function()
    it("fails the transfer as 'protocol' with the parser's message", function()
      local t = fetch(base .. "/body=" .. (16 * 1024 * 1024 + 10), { sse = true })
      local kind, message = t:failure()
      assert.equal("protocol", kind)
      assert.equal("sse: a line is longer than max_event_bytes (16777216 bytes)", message)
      assert.equal(200, t:status())
      assert.same({}, t:events())
      assert.equal(1024, #t:body()) -- the first 1 KiB kept for diagnostics
    end)
  end)

  describe("regression: a 200 MB error body could only be read whole", function()
    it("t:body(max_bytes) returns a prefix and t:size() the length", function()
      local t = fetch(base .. "/body=1000")
      assert.equal(1000, t:size())
      assert.equal(string.rep("x", 10), t:body(10))
      assert.equal("", t:body(0))
      assert.equal(1000, #t:body(5000))
      assert.equal(1000, #t:body())
    end)
  end)

  describe("regression: a stalled stream waited for the whole timeout", function()
    it("fails as 'timeout' about stall_timeout after the last byte", function()
      local t, took = fetch(base .. "/stall", { stall_timeout = 1 })
      local kind, message = t:failure()
      assert.equal("timeout", kind)
      assert.equal("no data from the server for 1 s (stall_timeout)", message)
      assert.is_true(took >= 1 and took < 4, "took " .. took)
      assert.equal("some bytes", t:body())
    end)

    it("does not apply before the first byte", function()
      local t = fetch(base .. "/late=2500", { stall_timeout = 1 })
      assert.is_nil(t:failure())
      assert.equal("late", t:body())
    end)

    it("applies from the start for a stream (spec.stream), whose server answers at once", function()
      local t, took = fetch(base .. "/late=2500", { stall_timeout = 1, stream = true })
      local kind, message = t:failure()
      assert.equal("timeout", kind)
      assert.equal("no data from the server for 1 s (stall_timeout)", message)
      assert.is_true(took >= 1 and took < 2.5, "took " .. took)
    end)
  end)

  describe("regression: loop:close dropped the transfers it cancelled", function()
    it("returns the unreported and cancelled transfers, reported ones first", function()
      local loop = core.loop{ max_in_flight = 2 }
      local a = loop:request{ url = base .. "/hold" }
      local b = loop:request{ url = base .. "/hold" }
      local c = loop:request{ url = base .. "/hold" }
      loop:step(50)
      b:cancel()
      assert.is_false(loop:is_closed())
      local ended = loop:close()
      assert.is_true(loop:is_closed())
      assert.same({ b, a, c }, ended)
      for _, t in ipairs(ended) do assert.equal("cancelled", (t:failure())) end
      assert.same({}, loop:close())
    end)
  end)
end)

describe("regression: no way to ask the process for its limits and terminals", function()
  it("core.fd_limit and core.isatty", function()
    local n, open = core.fd_limit()
    assert.is_true(n == nil or (n > 0 and n == math.floor(n)))
    if n then
      -- stdin, stdout and stderr at least; one more while a file is open
      assert.is_true(open >= 3 and open < n, tostring(open))
      local f = assert(io.open("README.md"))
      local _, more = core.fd_limit()
      f:close()
      assert.equal(open + 1, more)
    end
    assert.is_boolean(core.isatty(1))
    assert.is_false(core.isatty(1000))
  end)
end)
