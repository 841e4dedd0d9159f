-- examples/analysis/tools.lua: the tools the data-analysis example's
-- workers call. The tools compute (in Lua, from the CSV file); the models
-- only decide what to ask. A call that cannot be answered (an unknown
-- column, a series of the wrong length, a file name with a slash) returns
-- nil and a reason, which owl hands back to the model as that call's
-- error, naming what to fix.
--
--   local tools = require("analysis.tools").new{ csv = "examples/data/sales.csv", out = "/tmp/out" }
--   tools.all            -- every tool
--   tools.sets.clean     -- the tools of a subtask by its plan role: clean, trends, chart
--   tools.charts         -- the SVG files written so far, { file, path }
local owl = require("owl")
local json = require("owl.json")
local dataset = require("analysis.dataset")
local svg = require("analysis.svg")

local S = owl.schema
local M = {}

local function round2(x)
  return math.floor(x * 100 + 0.5) / 100
end

local function basename(path)
  return (path:match("[^/]+$")) or path
end

-- What one group of numbers comes to.
local function summary(xs)
  local sum, lo, hi = 0, math.huge, -math.huge
  for _, x in ipairs(xs) do
    sum = sum + x
    if x < lo then lo = x end
    if x > hi then hi = x end
  end
  return { count = #xs, sum = round2(sum), min = lo, max = hi, mean = round2(sum / #xs) }
end

-- The values of `column` in the clean rows, grouped by `by` (nil: one
-- group "all"), groups in order of first appearance.
local function groups_of(ds, column, by)
  local order, values = {}, {}
  for _, row in ipairs(ds.clean) do
    local key = by and tostring(row.values[by]) or "all"
    if not values[key] then
      values[key] = {}
      order[#order + 1] = key
    end
    local list = values[key]
    list[#list + 1] = row.values[column]
  end
  return order, values
end

local function need_numeric(ds, column)
  local ok, why = ds:column(column)
  if not ok then return nil, why end
  if not ds.numeric[column] then
    local nums = {}
    for _, c in ipairs(ds.columns) do
      if ds.numeric[c] then nums[#nums + 1] = c end
    end
    return nil, string.format("column %q is not numeric; the numeric columns are: %s", column, table.concat(nums, ", "))
  end
  return true
end

-- M.new{ csv = path, out = folder } -> { all, sets, charts }
function M.new(opts)
  local cache
  -- the dataset, read once, when a tool first needs it
  local function data()
    if not cache then
      local ds, err = dataset.load(opts.csv)
      if not ds then return nil, err end
      cache = ds
    end
    return cache
  end
  local file = basename(opts.csv)
  local charts = {}

  local read_csv = owl.tool{
    name = "read_csv",
    description = "Reads rows of the sales CSV file as they are, dirty ones included: the columns, which of them "
      .. "are numeric, the number of rows, and up to `limit` rows (default 10) from `offset` (default 0), "
      .. "each with its line number in the file.",
    parameters = S.object{
      { "limit", S.optional(S.integer{ minimum = 1, maximum = 100, description = "rows to return (null: 10)" }) },
      { "offset", S.optional(S.integer{ minimum = 0, description = "rows to skip first (null: 0)" }) },
    },
    handler = function(args)
      local ds, err = data()
      if not ds then return nil, err end
      local limit = type(args.limit) == "number" and args.limit or 10
      local offset = type(args.offset) == "number" and args.offset or 0
      if offset >= #ds.rows and #ds.rows > 0 then
        return nil, string.format("offset %d is past the last row (the file has %d rows)", offset, #ds.rows)
      end
      local rows = json.array()
      for i = offset + 1, math.min(#ds.rows, offset + limit) do
        rows[#rows + 1] = { line = ds.rows[i].line, text = ds.rows[i].raw }
      end
      local numeric = json.array()
      for _, c in ipairs(ds.columns) do
        if ds.numeric[c] then numeric[#numeric + 1] = c end
      end
      return { file = file, columns = ds.columns, numeric_columns = numeric, row_count = #ds.rows, rows = rows }
    end,
  }

  local describe_problems = owl.tool{
    name = "describe_problems",
    description = "Checks every row of the sales CSV file and lists the dirty ones with why (a blank value, a "
      .. "value that is not a number in a numeric column, a duplicate of an earlier row). The statistics tools "
      .. "leave these rows out.",
    handler = function()
      local ds, err = data()
      if not ds then return nil, err end
      local problems = json.array()
      for i, p in ipairs(ds.problems) do
        problems[i] = { line = p.line, row = p.row, problems = p.problems }
      end
      return {
        file = file, rows = #ds.rows, clean_rows = #ds.clean, dirty_rows = #ds.problems, problems = problems,
        rules = { "no value may be blank", "a numeric column holds plain decimal numbers",
                  "a row equal to an earlier one is a duplicate (the first copy is kept)" },
      }
    end,
  }

  local column_stats = owl.tool{
    name = "column_stats",
    description = "Count, sum, min, max and mean of a numeric column over the clean rows, for all of them or "
      .. "grouped by the values of another column.",
    parameters = S.object{
      { "column", S.string{ description = "a numeric column, such as revenue" } },
      { "group_by", S.optional(S.string{ description = "a column to group by, such as region (null: no grouping)" }) },
    },
    handler = function(args)
      local ds, err = data()
      if not ds then return nil, err end
      local ok, why = need_numeric(ds, args.column)
      if not ok then return nil, why end
      local by = type(args.group_by) == "string" and args.group_by or nil
      if by then
        ok, why = ds:column(by)
        if not ok then return nil, "group_by: " .. why end
      end
      local order, values = groups_of(ds, args.column, by)
      local groups = json.array()
      for _, key in ipairs(order) do
        local g = summary(values[key])
        g.group = key
        groups[#groups + 1] = g
      end
      return { column = args.column, group_by = by or json.null, rows_used = #ds.clean,
               rows_left_out = #ds.problems, groups = groups }
    end,
  }

  local pivot = owl.tool{
    name = "pivot",
    description = "Aggregates a column of the clean rows by the values of an x column (such as month, in order) "
      .. "and optionally one series per value of another column (such as region): the x labels and each "
      .. "series' values, null where there is no clean row. Ready to chart.",
    parameters = S.object{
      { "value", S.string{ description = "the column to aggregate, such as revenue" } },
      { "x", S.string{ description = "the column along the x axis, such as month" } },
      { "series", S.optional(S.string{ description = "a column whose values are the series (null: one series)" }) },
      { "agg", S.enum{ "sum", "mean", "count", description = "how the values of a cell are combined" } },
    },
    handler = function(args)
      local ds, err = data()
      if not ds then return nil, err end
      local ok, why
      if args.agg == "count" then ok, why = ds:column(args.value) else ok, why = need_numeric(ds, args.value) end
      if not ok then return nil, why end
      ok, why = ds:column(args.x)
      if not ok then return nil, "x: " .. why end
      local by = type(args.series) == "string" and args.series or nil
      if by then
        ok, why = ds:column(by)
        if not ok then return nil, "series: " .. why end
      end
      local xs, seen_x, names, cells = {}, {}, {}, {}
      for _, row in ipairs(ds.clean) do
        local x, name = tostring(row.values[args.x]), by and tostring(row.values[by]) or args.value
        if not seen_x[x] then seen_x[x], xs[#xs + 1] = true, x end
        if not cells[name] then cells[name], names[#names + 1] = {}, name end
        local cell = cells[name][x] or {}
        cells[name][x] = cell
        cell[#cell + 1] = row.values[args.value]
      end
      table.sort(xs)
      local series = json.array()
      for _, name in ipairs(names) do
        local values = json.array()
        for i, x in ipairs(xs) do
          local cell = cells[name][x]
          if not cell then
            values[i] = json.null
          elseif args.agg == "count" then
            values[i] = #cell
          else
            values[i] = summary(cell)[args.agg]
          end
        end
        series[#series + 1] = { name = name, values = values }
      end
      return { value = args.value, agg = args.agg, x = args.x, x_labels = json.array(xs), series = series }
    end,
  }

  local write_svg_chart = owl.tool{
    name = "write_svg_chart",
    description = "Writes a line or bar chart of the given series as an SVG file in the report's folder and "
      .. "returns its file name, for the report to link. Each series has one value (or null) per x label.",
    parameters = S.object{
      { "file", S.string{ pattern = "^[A-Za-z0-9_-]{1,60}\\.svg$",
                          description = "the file name, letters, digits, _ or -, ending .svg" } },
      { "title", S.string{ minLength = 1, maxLength = 200 } },
      { "kind", S.enum{ "line", "bar" } },
      { "x_labels", S.array(S.string{ maxLength = 40 }, { minItems = 1, maxItems = 100 }) },
      { "series", S.array(S.object{
          { "name", S.string{ minLength = 1, maxLength = 60 } },
          { "values", S.array(S.optional(S.number())) },
        }, { minItems = 1, maxItems = svg.MAX_SERIES }) },
      { "y_label", S.optional(S.string{ maxLength = 60 }) },
    },
    handler = function(args)
      local n, points = #args.x_labels, 0
      for i, s in ipairs(args.series) do
        if #s.values ~= n then
          return nil, string.format("series %d (%q) has %d values, but there are %d x labels: give one value "
            .. "(or null) per label", i, s.name, #s.values, n)
        end
        for _, v in ipairs(s.values) do
          if type(v) == "number" then points = points + 1 end
        end
      end
      if points == 0 then return nil, "every value is null: there is nothing to chart" end
      local text = svg.chart{ title = args.title, kind = args.kind, x_labels = args.x_labels, series = args.series,
                              y_label = type(args.y_label) == "string" and args.y_label or nil }
      local path = opts.out .. "/" .. args.file
      local f, err = io.open(path, "wb")
      if not f then return nil, "cannot write the chart: " .. tostring(err) end
      f:write(text)
      f:close()
      charts[#charts + 1] = { file = args.file, path = path }
      return { file = args.file, path = path, bytes = #text, kind = args.kind, series = #args.series,
               points = points, markdown = "![" .. args.title .. "](" .. args.file .. ")" }
    end,
  }

  return {
    all = { read_csv, describe_problems, column_stats, pivot, write_svg_chart },
    sets = {
      clean = { read_csv, describe_problems },
      trends = { column_stats, pivot },
      chart = { pivot, write_svg_chart },
    },
    charts = charts,
  }
end

return M
