-- The data-analysis example's pieces (examples/analysis/): the CSV reader,
-- the dataset's cleaning rules, the SVG writer, and each tool with good and
-- bad arguments. A bad call gives a reason naming what to fix, and owl
-- hands it back to the model as that call's error (the last test, through
-- owl.agent and the mock).
local owl = require("owl")
local json = require("owl.json")
local mock = require("support.mock")
local files = require("support.files")

package.path = mock.root .. "/examples/?.lua;" .. package.path
local csv = require("analysis.csv")
local dataset = require("analysis.dataset")
local svg = require("analysis.svg")
local tools_mod = require("analysis.tools")

local SALES = mock.root .. "/examples/data/sales.csv"
local q = mock.shell_quote

local function temp_dir()
  local _, _, out = mock.run('mktemp -d "${TMPDIR:-/tmp}/owl-analysis-tools.XXXXXX"')
  return (out:match("^[^\n]*"))
end

-- A tool called as owl.agent calls it: the arguments checked against its
-- schema first, then the handler.
local function call(tool, args)
  local ok, why = tool:check(args)
  if not ok then return nil, "invalid arguments: " .. why end
  return tool.handler(args, {})
end

local function by_name(list)
  local t = {}
  for _, x in ipairs(list) do t[x.name] = x end
  return t
end

describe("analysis csv", function()
  it("reads quoted fields, doubled quotes, line breaks in quotes, CRLF, and skips blank lines", function()
    local header, records = csv.parse('a,b,c\r\n1,"x, y","say ""hi"""\r\n\r\n2,"two\nlines",\n3,,z')
    assert.same({ "a", "b", "c" }, header)
    assert.same({
      { line = 2, fields = { "1", "x, y", 'say "hi"' } },
      { line = 4, fields = { "2", "two\nlines", "" } },
      { line = 6, fields = { "3", "", "z" } },
    }, records)
  end)

  it("names the line of a quote never closed, an empty file and a nameless column", function()
    assert.same({ nil, 'line 3: a quoted field is never closed' }, { csv.parse('a\n1\n"open\n') })
    assert.same({ nil, "the file is empty: no header line" }, { csv.parse("") })
    assert.same({ nil, "line 1: column 2 of the header has no name" }, { csv.parse("a,,c\n1,2,3\n") })
    local ds, err = dataset.load("/nonexistent/owl.csv")
    assert.is_nil(ds)
    assert.matches("^cannot open the data file: ", err)
  end)
end)

describe("analysis dataset", function()
  it("finds blanks, bad numbers, duplicates and short rows, and keeps the rest as clean rows", function()
    local dir = temp_dir()
    files.write(dir .. "/d.csv", "k,n\na,1\nb,x\na,1\nc,\n,2\nd,0x10\ne,1e3\nf,-2.5\ng\n")
    local ds = assert(dataset.load(dir .. "/d.csv"))
    mock.run("rm -rf " .. q(dir))
    assert.same({ k = false, n = true }, ds.numeric)
    local got = {}
    for _, p in ipairs(ds.problems) do got[#got + 1] = p.line .. ": " .. table.concat(p.problems, "; ") end
    assert.same({
      '3: n is not a number: "x"',
      "4: duplicate of line 2",
      "5: n is blank",
      "6: k is blank",
      '7: n is not a number: "0x10"',
      '8: n is not a number: "1e3"',
      "10: has 1 fields, the header has 2; n is blank",
    }, got)
    local clean = {}
    for _, r in ipairs(ds.clean) do clean[#clean + 1] = r.values.k .. "=" .. r.values.n end
    assert.same({ "a=1", "f=-2.5" }, clean)
  end)
end)

describe("analysis svg", function()
  it("escapes markup and control characters in every text", function()
    assert.equal("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; e f", svg.escape("a <b> & \"c\" 'd' e\1f"))
    local text = svg.chart{ title = "<script>&", kind = "line", x_labels = { "a<" },
                            series = { { name = "s&", values = { 1 } } } }
    assert.is_nil(text:find("<script>", 1, true))
    assert.truthy(text:find("&lt;script&gt;&amp;", 1, true))
    assert.truthy(text:find(">s&amp;<", 1, true))
  end)

  it("leaves a gap at a missing value and draws bars below zero inside the picture", function()
    local line = svg.chart{ title = "t", kind = "line", x_labels = { "a", "b", "c", "d", "e" },
                            series = { { name = "s", values = { 1, 2, json.null, 4, 5 } } } }
    local _, polylines = line:gsub("<polyline", "")
    local _, circles = line:gsub("<circle", "")
    assert.equal(2, polylines)
    assert.equal(4, circles)
    local bars = svg.chart{ title = "t", kind = "bar", x_labels = { "a", "b" },
                            series = { { name = "s", values = { -30, 70 } }, { name = "u", values = { 5, json.null } } } }
    local n = 0
    for y, h in bars:gmatch('<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)" fill="#') do
      n = n + 1
      assert.is_true(tonumber(y) >= 0 and tonumber(y) + tonumber(h) <= svg.HEIGHT)
    end
    -- three bars and two legend keys
    assert.equal(5, n)
  end)
end)

describe("analysis tools", function()
  local dir, t
  setup(function()
    dir = temp_dir()
    t = by_name(tools_mod.new{ csv = SALES, out = dir }.all)
  end)
  teardown(function() mock.run("rm -rf " .. q(dir)) end)

  it("read_csv: rows with their lines, a limit and an offset", function()
    local r = assert(call(t.read_csv, { limit = 2, offset = 10 }))
    assert.same({ "month", "region", "units", "revenue" }, r.columns)
    assert.same({ "units", "revenue" }, r.numeric_columns)
    assert.equal(38, r.row_count)
    assert.same({ { line = 12, text = "2025-04,South,124," }, { line = 13, text = "2025-04,East,85,11475.00" } }, r.rows)
    assert.equal(10, #assert(call(t.read_csv, { limit = json.null, offset = json.null })).rows)
    assert.same({ nil, "offset 38 is past the last row (the file has 38 rows)" }, { call(t.read_csv, { limit = 1, offset = 38 }) })
    assert.matches("^invalid arguments: /limit: ", select(2, call(t.read_csv, { limit = 0, offset = 0 })))
    assert.matches("^invalid arguments: /limit: ", select(2, call(t.read_csv, { limit = "5", offset = 0 })))
  end)

  it("describe_problems: the four dirty rows of sales.csv", function()
    local r = assert(call(t.describe_problems, {}))
    assert.equal(38, r.rows)
    assert.equal(34, r.clean_rows)
    assert.equal(4, r.dirty_rows)
    local lines = {}
    for _, p in ipairs(r.problems) do lines[#lines + 1] = p.line end
    assert.same({ 12, 22, 27, 36 }, lines)
  end)

  it("column_stats: grouped or not; an unknown or non-numeric column is named", function()
    local r = assert(call(t.column_stats, { column = "revenue", group_by = "region" }))
    assert.equal(34, r.rows_used)
    assert.equal(4, r.rows_left_out)
    local north = r.groups[1]
    assert.same({ "North", 12, 219720, 14400, 22920, 18310 },
      { north.group, north.count, north.sum, north.min, north.max, north.mean })
    local all = assert(call(t.column_stats, { column = "units", group_by = json.null })).groups
    assert.same({ "all", 34 }, { all[1].group, all[1].count })
    assert.same({ nil, 'unknown column "price"; the columns are: month, region, units, revenue' },
      { call(t.column_stats, { column = "price", group_by = json.null }) })
    assert.same({ nil, 'column "region" is not numeric; the numeric columns are: units, revenue' },
      { call(t.column_stats, { column = "region", group_by = json.null }) })
    assert.matches('^group_by: unknown column "area"', select(2, call(t.column_stats, { column = "units", group_by = "area" })))
    assert.matches("^invalid arguments: %(the arguments%): ", select(2, call(t.column_stats, { group_by = json.null })))
  end)

  it("pivot: a series per value, null where there is no clean row; bad columns and aggregations named", function()
    local r = assert(call(t.pivot, { value = "revenue", x = "month", series = "region", agg = "sum" }))
    assert.equal(12, #r.x_labels)
    assert.equal("2025-01", r.x_labels[1])
    assert.same({ "North", "South", "East" }, { r.series[1].name, r.series[2].name, r.series[3].name })
    assert.equal(json.null, r.series[2].values[4])  -- South, April: its revenue is blank
    assert.equal(json.null, r.series[3].values[7])  -- East, July: a bad number
    local count = assert(call(t.pivot, { value = "region", x = "region", series = json.null, agg = "count" }))
    -- x labels sorted; the row without a region counts nowhere (it is dirty)
    assert.same({ "East", "North", "South" }, count.x_labels)
    assert.same({ 11, 12, 11 }, count.series[1].values)
    assert.matches('^x: unknown column "day"',
      select(2, call(t.pivot, { value = "units", x = "day", series = json.null, agg = "sum" })))
    assert.matches('^series: unknown column "zone"',
      select(2, call(t.pivot, { value = "units", x = "month", series = "zone", agg = "sum" })))
    assert.matches('is not numeric',
      select(2, call(t.pivot, { value = "region", x = "month", series = json.null, agg = "mean" })))
    assert.matches("^invalid arguments: /agg: ",
      select(2, call(t.pivot, { value = "units", x = "month", series = json.null, agg = "median" })))
  end)

  it("write_svg_chart: writes the file and names it; bad shapes and file names are refused", function()
    local args = { file = "c.svg", title = "T", kind = "bar", x_labels = { "a", "b" }, y_label = json.null,
                   series = { { name = "s", values = { 1, json.null } } } }
    local r = assert(call(t.write_svg_chart, args))
    assert.same({ "c.svg", dir .. "/c.svg", 1, "![T](c.svg)" }, { r.file, r.path, r.points, r.markdown })
    assert.matches("^<%?xml", files.read(dir .. "/c.svg"))
    args.series[1].values = { 1 }
    assert.equal('series 1 ("s") has 1 values, but there are 2 x labels: give one value (or null) per label',
      select(2, call(t.write_svg_chart, args)))
    args.series[1].values = { json.null, json.null }
    assert.equal("every value is null: there is nothing to chart", select(2, call(t.write_svg_chart, args)))
    args.series[1].values = { 1, 2 }
    for _, bad in ipairs({ "../evil.svg", "/tmp/x.svg", "c.html", "a b.svg" }) do
      args.file = bad
      assert.matches("^invalid arguments: /file: ", select(2, call(t.write_svg_chart, args)))
    end
    args.file, args.kind = "c.svg", "pie"
    assert.matches("^invalid arguments: /kind: ", select(2, call(t.write_svg_chart, args)))
    args.kind = "line"
    args.series = {}
    for i = 1, svg.MAX_SERIES + 1 do args.series[i] = { name = "s" .. i, values = { 1, 2 } } end
    assert.matches("^invalid arguments: /series: ", select(2, call(t.write_svg_chart, args)))
    assert.is_nil(io.open(mock.root .. "/evil.svg", "rb"))
    local nowhere = by_name(tools_mod.new{ csv = SALES, out = dir .. "/missing" }.all)
    args.series = { { name = "s", values = { 1, 2 } } }
    assert.matches("^cannot write the chart: ", select(2, call(nowhere.write_svg_chart, args)))
  end)

  it("every data tool names a missing CSV file", function()
    local none = by_name(tools_mod.new{ csv = dir .. "/none.csv", out = dir }.all)
    for _, c in ipairs({ { none.read_csv, { limit = 1, offset = 0 } }, { none.describe_problems, {} },
                         { none.column_stats, { column = "a", group_by = json.null } },
                         { none.pivot, { value = "a", x = "b", series = json.null, agg = "sum" } } }) do
      assert.matches("^cannot open the data file: ", select(2, call(c[1], c[2])))
    end
  end)
end)

describe("analysis tools in owl.agent", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() server:stop() end)

  it("send a bad call's reason back to the model as that call's error, and the loop goes on", function()
    server:reset()
    local dir = temp_dir()
    local t = tools_mod.new{ csv = SALES, out = dir }
    server:script{
      { tool_calls = {
        { id = "c1", name = "column_stats", arguments = { column = "price", group_by = "region" } },
        { id = "c2", name = "write_svg_chart", arguments = { file = "../evil.svg", title = "x", kind = "line",
          x_labels = { "a" }, series = { { name = "s", values = { 1 } } }, y_label = "y" } },
      } },
      { text = "I will use the revenue column." },
    }
    local client = owl.client{ base_url = server.url, api_key = "sk-analysis", model = "m" }
    local res, err = owl.agent(client, { messages = { { role = "user", content = "stats please" } } },
      { tools = t.all, max_steps = 3 })
    mock.run("rm -rf " .. q(dir))
    assert.is_nil(err)
    assert.equal("I will use the revenue column.", res.text)
    local follow = mock.json_decode(server:requests()[2].body).messages
    local results = {}
    for _, m in ipairs(follow) do
      if m.role == "tool" then results[m.tool_call_id] = m.content end
    end
    assert.matches('^Error: unknown column "price"; the columns are: month, region, units, revenue', results.c1)
    assert.matches("^Error: invalid arguments for tool 'write_svg_chart': /file: ", results.c2)
    assert.is_nil(io.open(dir .. "/../evil.svg", "rb"))
  end)
end)
