-- spec/readme_spec.lua: every example in README.md runs as written against
-- the mock server. It reads the README's fenced blocks when it starts, so a
-- new section's examples are picked up with no change here.
--
-- The rule, by fence language (the first word after the opening fence):
--
--   ```lua       runs, every one of them: as a file, in a fresh process of
--                the Lua running the spec (make test runs the spec on 5.4,
--                5.3, 5.1 and LuaJIT), after a prelude that sets the globals
--                the README's first example sets up: `owl`, `client` (an
--                OpenAI client, model gpt-4o-mini) and `problem` (a string).
--   ```sh        runs, every one of them: under `sh -e`, in a scratch copy of
--                the checkout (its entries linked, so `bin/owl ...`, `lua
--                examples/...` and `make ...` work as written and any file
--                an example writes lands there; bin/owl runs under the Lua
--                running the spec).
--   ```sh setup  machine setup that a test cannot run as written (it installs
--                packages or owl itself, or runs the whole suite): only
--                parsed (sh -n) and checked for URLs past loopback.
--   ```text      what a program shows, not code: not run. With an
--                `<!-- output: stdout -->` (or `stderr`, or `terminal`) just
--                above it, the nearest runnable block above is run and must
--                show it (see "stable parts" below).
--   ```json      data, not code: not run.
--
-- Any other fence, or a fence with no language, fails the spec: a block is
-- either code that runs or says what else it is.
--
-- Every runnable block gets:
--   - stdin empty, 60 s at most, an environment of its own (env -i): the
--     checkout's lua/ and build/<version>/ on LUA_PATH and LUA_CPATH,
--     OPENAI_BASE_URL and ANTHROPIC_BASE_URL at the mock, test keys in
--     OPENAI_API_KEY and ANTHROPIC_API_KEY (a real key is never inherited);
--   - the mock as every proxy (http_proxy, https_proxy, ALL_PROXY; no_proxy
--     is loopback): a request for any other host reaches the mock as a
--     CONNECT or an absolute URL, is refused, and fails the spec.
-- It must: name no URL outside loopback; exit 0; send the mock only
-- requests to the LLM paths it serves (and some, when it calls owl: `:chat`,
-- `owl.run`, `owl.spawn`, `bin/owl run`); a Lua block must write nothing on
-- stderr and, when it prints (`print`, `io.write`), print something.
--
-- Directives: an HTML comment on the lines just above a fence, invisible
-- in the rendered README:
--   <!-- mock: [ {"fault": "500"}, {} ] -->   the replies the mock gives the
--       block's first requests, in order (entries as Server:script takes
--       them, see spec/support/mock.lua; {"replies": [...]} works too);
--       the block must use all of them, later requests get the default
--   <!-- output: stdout -->   on a ```text block: see above
-- A comment that looks like a directive but is not one fails the spec.
--
-- Stable parts: every non-blank line of the shown output must be a line of
-- the real one, in order; a decimal number (a time, "1.2 s") matches any
-- number and runs of spaces stretch; integers and words must be as shown.
--
-- docs/api.md's Lua blocks are reference shapes (`{ ... }`, `"a" | "b"`),
-- not programs, and are not run.
local mock = require("support.mock")
local files = require("support.files")
local readme = require("support.readme")
local example = require("support.example")
local screen = require("support.screen")

local README = mock.root .. "/README.md"
local LLM_PATHS = { ["/v1/chat/completions"] = true, ["/chat/completions"] = true, ["/v1/messages"] = true }
local SHOWN = { text = true, json = true }
local OUTPUTS = { stdout = true, stderr = true, terminal = true }

-- What a block is: "run", "setup", "shown", or nil and why not any.
local function kind(block)
  local attrs = table.concat(block.attrs, " ")
  if block.lang == "lua" and attrs == "" then return "run" end
  if block.lang == "sh" and attrs == "" then return "run" end
  if block.lang == "sh" and attrs == "setup" then return "setup" end
  if SHOWN[block.lang] then return "shown" end
  return nil, "a fence must say lua, sh, sh setup, text or json (spec/readme_spec.lua), not '"
    .. (block.lang .. " " .. attrs):gsub("%s+$", "") .. "'"
end

local function calls_owl(block)
  local t = block.text
  if block.lang == "sh" then return t:find("bin/owl run", 1, true) ~= nil end
  return t:find(":chat%s*[{(]") or t:find("owl%.run%s*%(") or t:find("owl%.spawn%s*%(")
end

local function prints(block)
  return block.lang == "lua" and (block.text:find("print%s*%(") or block.text:find("io%.write%s*%("))
end

local function where(block)
  return "README.md:" .. block.line
end

-- What the run shows: its output, the mock's log, and for a failure message.
local function report(r)
  return "exit " .. tostring(r.code) .. "\n--- stdout\n" .. r.out .. "\n--- stderr\n" .. r.err
    .. (r.tty ~= "" and ("\n--- terminal\n" .. r.tty) or "")
end

-- The requests that tried to leave loopback through the proxy.
local function escapes(requests)
  local out = {}
  for _, req in ipairs(requests) do
    if req.method == "CONNECT" or req.url:sub(1, 1) ~= "/" then out[#out + 1] = req.method .. " " .. req.url end
  end
  return out
end

describe("README.md examples", function()
  local server, box

  setup(function()
    server = mock.start()
    box = example.box(server)
  end)
  teardown(function()
    if box then box:close() end
    if server then server:stop() end
  end)

  -- Runs block with its mock script; returns the run and the mock's log.
  local function run(block, opts)
    server:reset()
    local script = block.directive and block.directive.mock
    if script then server:script(script) end
    local r = box:run(block, opts)
    return r, server:requests(), server:stats()
  end

  local blocks = readme.blocks(files.read(README))
  local last_runnable

  it("has examples to run", function()
    local n = 0
    for _, b in ipairs(blocks) do if kind(b) == "run" then n = n + 1 end end
    assert.is_true(n >= 5, "README.md: only " .. n .. " runnable blocks found")
  end)

  for _, block in ipairs(blocks) do
    local k, why = kind(block)
    local name = block.heading .. " (" .. where(block) .. ", " .. block.lang .. ")"
    if block.error or not k then
      it("has a well-formed block: " .. name, function()
        error(where(block) .. ": " .. (block.error or why), 0)
      end)
    elseif k == "run" then
      last_runnable = block
      it("runs " .. name, function()
        local public = example.outside_loopback(block.text)
        assert.are.same({}, public, where(block) .. " names a URL outside loopback")
        assert.is_nil(block.directive and block.directive.output,
          where(block) .. ": an output directive belongs on the ```text block that shows the output")
        local r, requests, stats = run(block)
        assert.are.same({}, escapes(requests), where(block) .. " tried to reach a host past loopback")
        assert.are.equal(0, r.code, where(block) .. " failed:\n" .. report(r))
        for _, req in ipairs(requests) do
          assert.is_true(LLM_PATHS[req.path] ~= nil,
            where(block) .. " called " .. req.method .. " " .. req.path .. ", which no provider serves")
        end
        if calls_owl(block) then
          assert.is_true(#requests > 0, where(block) .. " calls owl but the mock saw no request:\n" .. report(r))
        end
        if block.directive and block.directive.mock then
          assert.are.equal(0, stats.script_pending, where(block) .. " left scripted mock replies unused")
        end
        if block.lang == "lua" then
          assert.are.equal("", r.err, where(block) .. " wrote on stderr")
          if prints(block) then assert.is_true(r.out:find("%S") ~= nil, where(block) .. " printed nothing") end
        end
      end)
    elseif k == "setup" then
      it("parses " .. name, function()
        assert.are.same({}, example.outside_loopback(block.text), where(block) .. " names a URL outside loopback")
        local path = os.tmpname()
        local f = assert(io.open(path, "wb"))
        f:write(block.text)
        f:close()
        local ok, _, out = mock.run("sh -n " .. mock.shell_quote(path))
        os.remove(path)
        assert.is_true(ok, where(block) .. " is not valid sh: " .. out)
      end)
    elseif k == "shown" and block.directive and block.directive.output then
      local source = last_runnable
      it("shows what it prints: " .. name, function()
        local stream = block.directive.output
        assert.is_true(OUTPUTS[stream] ~= nil,
          where(block) .. ": output must be stdout, stderr or terminal, not '" .. stream .. "'")
        assert.is_not_nil(source, where(block) .. ": no runnable block above it")
        local r = run(source, { terminal = stream == "terminal" })
        assert.are.equal(0, r.code, where(source) .. " failed:\n" .. report(r))
        local actual = ({ stdout = r.out, stderr = r.err })[stream]
        if stream == "terminal" then actual = screen.new(80, 24):feed(r.tty):text() end
        local ok, missing = example.shows(block.text, actual)
        assert.is_true(ok, where(block) .. " shows a line " .. where(source) .. " does not print:\n  "
          .. tostring(missing) .. "\n--- it printed\n" .. actual)
      end)
    elseif block.directive and block.directive.mock then
      it("has a mock script only on a block that runs: " .. name, function()
        error(where(block) .. ": a mock directive on a block that does not run", 0)
      end)
    end
  end
end)

-- The harness must be able to fail: an example that reaches past loopback,
-- a directive with a typo, output that differs.
describe("the README harness", function()
  local server, box
  setup(function()
    server = mock.start()
    box = example.box(server)
  end)
  teardown(function()
    box:close()
    server:stop()
  end)

  it("finds public URLs in an example and lets loopback ones be", function()
    assert.are.same({ "https://api.openai.com/v1", "http://example.com:8080/x" },
      example.outside_loopback('base_url = "https://api.openai.com/v1" curl http://example.com:8080/x'))
    assert.are.same({}, example.outside_loopback("http://127.0.0.1:11434/v1 http://localhost:8080 http://[::1]:1/"))
  end)

  for _, url in ipairs({ "https://api.openai.com/v1", "http://api.openai.com/v1" }) do
    it("fails an example that calls " .. url .. ", and the mock sees the attempt", function()
      server:reset()
      local r = box:run({ lang = "lua", line = 0, text = 'local c = owl.client{ model = "m", base_url = "' .. url .. '" }\n'
        .. 'local res, err = c:chat{ messages = { { role = "user", content = "hi" } } }\n'
        .. "assert(res, tostring(err))\n" })
      assert.are_not.equal(0, r.code)
      -- at least one attempt (a client that retries a refused connection
      -- makes more), each to the public host
      local tried = escapes(server:requests())
      assert.is_true(#tried >= 1, report(r))
      for _, t in ipairs(tried) do assert.truthy(t:find("api.openai.com", 1, true), t) end
    end)
  end

  it("gives an example test keys and the mock's base URLs, never the caller's", function()
    server:reset()
    local r = box:run({ lang = "lua", line = 0, text = 'for _, k in ipairs{ "OPENAI_API_KEY", "OPENAI_BASE_URL",'
      .. ' "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OWL_MODEL" } do print(k, os.getenv(k)) end\n' })
    assert.are.equal(0, r.code, report(r))
    assert.truthy(r.out:find("OPENAI_API_KEY\t" .. example.KEYS.OPENAI_API_KEY .. "\n", 1, true), r.out)
    assert.truthy(r.out:find("OPENAI_BASE_URL\t" .. server.url .. "\n", 1, true), r.out)
    assert.truthy(r.out:find("ANTHROPIC_BASE_URL\t" .. server.base .. "\n", 1, true), r.out)
    assert.truthy(r.out:find("OWL_MODEL\tnil\n", 1, true), r.out)
  end)

  it("reads a directive from the comment above a fence, and refuses an unknown or malformed one", function()
    local b = readme.blocks("# H\n\n<!-- mock: [{\"fault\": \"500\"}] -->\n```lua\nx()\n```\n"
      .. "<!-- mokc: [] -->\n```lua\n```\n<!-- mock: [ -->\n```sh\n```\n<!-- a plain comment -->\n```text\n```\n")
    assert.are.equal(4, #b)
    assert.are.same({ mock = { { fault = "500" } } }, b[1].directive)
    local wrapped = readme.blocks('<!-- mock: {"replies": [{"status": 429}, {}]} -->\n```lua\n```\n')
    assert.are.same({ mock = { { status = 429 }, {} } }, wrapped[1].directive)
    assert.are.equal("H", b[1].heading)
    assert.are.equal(4, b[1].line)
    assert.are.equal("x()\n", b[1].text)
    assert.truthy(b[2].error:find("unknown directive 'mokc'", 1, true))
    assert.truthy(b[3].error:find("not JSON", 1, true))
    assert.is_nil(b[4].error)
    assert.is_nil(b[4].directive)
  end)

  it("compares shown output by its stable parts", function()
    local shown = "owl: usage      calls  input\n  total             5     50\nowl: wall time 1.2 s\n"
    assert.is_true(example.shows(shown, "noise\nowl: usage calls input\n  total   5   50\nowl: wall time 0.03 s\n"))
    local ok, missing = example.shows(shown, "owl: usage calls input\n  total 6 50\nowl: wall time 1.2 s\n")
    assert.is_false(ok)
    assert.are.equal("  total             5     50", missing)
    assert.is_false((example.shows("b\na\n", "a\nb\n")))
  end)
end)
