-- examples/analysis.lua run as a user would, against the suite's mock
-- playing examples/analysis/mock_session.json (loaded as the launcher
-- loads it: the file's bytes posted to /_mock/script): it exits 0, writes
-- a Markdown report linking the chart and a well-formed SVG, its workers
-- really call the tools (the results are in the follow-up requests), the
-- cleaning finds the dirty rows, and the scripted answers agree with what
-- the tools compute on examples/data/sales.csv. Runs on every Lua.
local mock = require("support.mock")
local files = require("support.files")
local example = require("support.example")

local q = mock.shell_quote
local ROOT = mock.root
local FLAVOR = type(jit) == "table" and "jit" or _VERSION:match("Lua (%d+%.%d+)")

-- A minimal XML reader for the chart: the root element, every tag balanced,
-- and every element with its attributes. Raises on a malformed file.
local function parse_svg(text)
  text = text:gsub("^<%?xml[^>]*%?>%s*", "")
  local stack, elements, root = {}, {}, nil
  local pos = 1
  while true do
    local s, e, tag = text:find("<([^>]*)>", pos)
    if not s then break end
    local between = text:sub(pos, s - 1)
    -- character data: only entities, never a bare & or <
    assert(not between:find("<"), "a bare < in the text")
    for amp in between:gmatch("&[^;]*;?") do
      assert(amp:find("^&[%a#][%w]*;$"), "a bare & in the text: " .. amp)
    end
    if tag:sub(1, 1) == "/" then
      local name = tag:sub(2):match("^%s*([%w:-]+)%s*$")
      assert(#stack > 0 and stack[#stack].name == name, "</" .. tostring(name) .. "> closes nothing open")
      stack[#stack] = nil
    else
      local name, rest = tag:match("^([%w:-]+)(.-)$")
      assert(name, "a tag without a name: <" .. tag .. ">")
      local closed = rest:sub(-1) == "/"
      if closed then rest = rest:sub(1, -2) end
      local attrs = {}
      local left = rest:gsub('%s([%w:-]+)="([^"<]*)"', function(k, v)
        assert(attrs[k] == nil, "attribute " .. k .. " twice in <" .. name .. ">")
        attrs[k] = v
        return ""
      end)
      assert(not left:find("%S"), "junk in <" .. name .. ">: " .. left)
      local el = { name = name, attrs = attrs }
      if root == nil then root = el else assert(#stack > 0, "a second root element <" .. name .. ">") end
      elements[#elements + 1] = el
      if not closed then stack[#stack + 1] = el end
    end
    pos = e + 1
  end
  assert(#stack == 0, "unclosed <" .. (stack[1] and stack[1].name or "?") .. ">")
  assert(not text:sub(pos):find("%S"), "text after the root element")
  return root, elements
end

-- Every tool call the model made, by id ({ name, args }), and every result
-- sent back ({ text, is_error }), from the requests of either provider.
local function tool_results(requests)
  local calls, results = {}, {}
  for _, r in ipairs(requests) do
    local body = mock.json_decode(r.body)
    for _, m in ipairs(body.messages or {}) do
      if m.role == "assistant" and type(m.tool_calls) == "table" then -- OpenAI
        for _, tc in ipairs(m.tool_calls) do
          calls[tc.id] = { name = tc["function"].name, args = mock.json_decode(tc["function"].arguments) }
        end
      elseif m.role == "tool" then
        results[m.tool_call_id] = { text = m.content, is_error = m.content:find("^Error") ~= nil }
      elseif type(m.content) == "table" then -- Anthropic's blocks
        for _, b in ipairs(m.content) do
          if b.type == "tool_use" then
            calls[b.id] = { name = b.name, args = b.input }
          elseif b.type == "tool_result" then
            local text = b.content
            if type(text) == "table" then text = text[1].text end
            results[b.tool_use_id] = { text = text, is_error = b.is_error == true }
          end
        end
      end
    end
  end
  return calls, results
end

-- Runs the example as a user would: with no key against the mock (the
-- launcher's way, OWL_DEMO_MOCK_URL), or with an Anthropic key against
-- the same mock standing in for the API (ANTHROPIC_BASE_URL), so the
-- session plays through the Anthropic provider too.
local function run_example(server, provider)
  local _, _, out = mock.run('mktemp -d "${TMPDIR:-/tmp}/owl-analysis-spec.XXXXXX"')
  local dir = out:match("^[^\n]*")
  server:reset()
  local script = files.read(ROOT .. "/examples/analysis/mock_session.json")
  local r = server:send{ path = "/_mock/script", body = script }:response()
  assert(r.status == 200, "the mock refused the session: " .. tostring(r.body))
  local build = ROOT .. "/" .. (os.getenv("OWL_BUILD_DIR") or ("build/" .. FLAVOR))
  -- env -i: no API key from the caller's environment reaches the example
  local env = {
    "env -i", "PATH=" .. q(os.getenv("PATH") or "/usr/bin:/bin"), "HOME=" .. q(dir), "TMPDIR=" .. q(dir),
    "LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
    "LUA_CPATH=" .. q(build .. "/?.so;;"), "LUA_CPATH_5_4=" .. q(build .. "/?.so;;"),
    "LUA_CPATH_5_3=" .. q(build .. "/?.so;;"),
  }
  if provider == "openai" then
    env[#env + 1] = "OWL_DEMO_MOCK_URL=" .. q(server.url)
  else
    env[#env + 1] = "ANTHROPIC_API_KEY=sk-ant-analysis-test"
    env[#env + 1] = "ANTHROPIC_BASE_URL=" .. q(server.base)
  end
  local _, code = mock.run("cd " .. q(ROOT) .. " && " .. table.concat(env, " ") .. " timeout 60 " .. example.lua
    .. " examples/analysis.lua " .. q(dir .. "/out") .. " </dev/null >" .. q(dir .. "/stdout") .. " 2>"
    .. q(dir .. "/stderr"))
  return { dir = dir, code = code, out = files.read(dir .. "/stdout"), err = files.read(dir .. "/stderr"),
           requests = server:requests(), pending = server:stats().script_pending }
end

for _, provider in ipairs({ "openai", "anthropic" }) do
  describe("examples/analysis.lua against the mock (" .. provider .. ")", function()
    local server, run, dir
    setup(function()
      server = mock.start()
      run = run_example(server, provider)
      dir = run.dir
    end)
    teardown(function()
      if dir then mock.run("rm -rf " .. q(dir)) end
      server:stop()
    end)

    it("exits 0, says where it talks, and uses the whole session", function()
      assert.equal(0, run.code, run.err)
      if provider == "openai" then
        assert.matches("MOCK MODE", run.err)
        assert.matches("SCRIPTED", run.err)
      else
        assert.matches("REAL API: anthropic at " .. server.base:gsub("%p", "%%%0"), run.err)
      end
      assert.matches("report: " .. dir:gsub("%p", "%%%0") .. "/out/report%.md", run.err)
      -- plan, two calls per worker (three for the chart), the aggregator
      assert.equal(9, #run.requests)
      assert.equal(0, run.pending)
      -- the key never reaches the output
      assert.is_nil((run.err .. run.out):find("sk-ant-analysis-test", 1, true))
    end)

    it("writes report.md: Markdown that links the chart it wrote", function()
      local report = files.read(dir .. "/out/report.md")
      assert.matches("^# [^\n]+\n", report)
      assert.matches("\n## Data quality\n", report)
      assert.matches("\n| line | row | problem |\n", report, 1, true)
      local target = report:match("!%[[^%]]+%]%(([^)]+)%)")
      assert.equal("revenue_by_region.svg", target)
      assert.is_truthy(io.open(dir .. "/out/" .. target, "rb"))
      assert.equal(report, run.out)
    end)

    it("writes a well-formed SVG whose coordinates are inside it", function()
      local root, elements = parse_svg(files.read(dir .. "/out/revenue_by_region.svg"))
      assert.equal("svg", root.name)
      assert.equal("http://www.w3.org/2000/svg", root.attrs.xmlns)
      local W, H = tonumber(root.attrs.width), tonumber(root.attrs.height)
      assert.equal("0 0 " .. W .. " " .. H, root.attrs.viewBox)
      local count = {}
      for _, el in ipairs(elements) do
        count[el.name] = (count[el.name] or 0) + 1
        for k, v in pairs(el.attrs) do
          local limit = (k == "x" or k == "x1" or k == "x2" or k == "cx" or k == "width") and W
            or (k == "y" or k == "y1" or k == "y2" or k == "cy" or k == "height") and H
          if limit then
            local n = tonumber(v)
            assert(n and n >= 0 and n <= limit, el.name .. " " .. k .. "=" .. v .. " is outside 0.." .. limit)
          end
        end
        for x, y in (el.attrs.points or ""):gmatch("([^,%s]+),([^,%s]+)") do
          assert(tonumber(x) >= 0 and tonumber(x) <= W and tonumber(y) >= 0 and tonumber(y) <= H, x .. "," .. y)
        end
      end
      -- 34 clean points; North one unbroken line, South and East broken by their dirty month
      assert.equal(34, count.circle)
      assert.equal(5, count.polyline)
    end)

    it("really called every tool: the results are in the follow-up requests", function()
      local calls, results = tool_results(run.requests)
      local called = {}
      for id, fn in pairs(calls) do
        assert(results[id], "no result sent back for " .. fn.name)
        assert.is_string(results[id].text)
        assert(not results[id].is_error, fn.name .. " failed: " .. results[id].text)
        called[fn.name] = (called[fn.name] or 0) + 1
      end
      assert.same({ describe_problems = 1, read_csv = 1, column_stats = 2, pivot = 3, write_svg_chart = 1 }, called)
    end)

    it("found the dirty rows: the blank, the bad number, the duplicate, the missing region", function()
      local calls, results = tool_results(run.requests)
      local found
      for id, fn in pairs(calls) do
        if fn.name == "describe_problems" then found = mock.json_decode(results[id].text) end
      end
      assert.equal(38, found.rows)
      assert.equal(34, found.clean_rows)
      local got = {}
      for _, p in ipairs(found.problems) do got[#got + 1] = p.line .. ": " .. table.concat(p.problems, "; ") end
      assert.same({
        "12: revenue is blank",
        '22: revenue is not a number: "13O95.00"',
        "27: duplicate of line 26",
        "36: region is blank",
      }, got)
    end)

    it("has scripted answers that agree with what the tools computed", function()
      local calls, results = tool_results(run.requests)
      local all, pivot_by_region, chart_args = {}, nil, nil
      for id, fn in pairs(calls) do
        all[#all + 1] = results[id].text
        local args = fn.args
        if fn.name == "pivot" and args.series == "region" then pivot_by_region = mock.json_decode(results[id].text) end
        if fn.name == "write_svg_chart" then chart_args = args end
      end
      -- the chart was drawn from the pivot's numbers, exactly
      assert.same(pivot_by_region.x_labels, chart_args.x_labels)
      for i, s in ipairs(pivot_by_region.series) do
        assert.equal(s.name, chart_args.series[i].name)
        for k, v in ipairs(s.values) do
          if v == mock.null then assert.equal(mock.null, chart_args.series[i].values[k])
          else assert.equal(v, chart_args.series[i].values[k]) end
        end
      end
      -- every figure of the report's trends is in some tool's result
      local text = table.concat(all, "\n")
      local report = files.read(dir .. "/out/report.md")
      for _, n in ipairs({ "219720", "158950", "150120", "18310", "14450", "13647.27", "528790", "28035", "37850",
                           "22920", "19250", "10530", "19170", "11550" }) do
        assert.is_truthy(text:find(n, 1, true), n .. " is in no tool result")
        assert.is_truthy(report:find(n, 1, true), n .. " is not in the report")
      end
    end)
  end)
end

describe("examples/analysis.sh", function()
  -- the launcher runs lua5.4 with build/5.4, whatever Lua runs the suite
  -- (each suite builds build/5.4 first, so it is there): no skip
  it("starts its own mock, loads the session into it and runs the example", function()
    local _, _, out = mock.run('mktemp -d "${TMPDIR:-/tmp}/owl-analysis-sh.XXXXXX"')
    local dir = out:match("^[^\n]*")
    local ok, code, log = mock.run("cd " .. q(ROOT) .. " && env -i PATH=" .. q(os.getenv("PATH") or "/usr/bin:/bin")
      .. " HOME=" .. q(dir) .. " timeout 60 examples/analysis.sh " .. q(dir .. "/out") .. " </dev/null")
    local report = io.open(dir .. "/out/report.md", "rb")
    local chart = io.open(dir .. "/out/revenue_by_region.svg", "rb")
    if report then report:close() end
    if chart then chart:close() end
    mock.run("rm -rf " .. q(dir))
    assert(ok, "exit " .. code .. ": " .. log)
    assert.matches("starting owl's MOCK LLM server", log)
    assert.is_truthy(report)
    assert.is_truthy(chart)
  end)
end)
