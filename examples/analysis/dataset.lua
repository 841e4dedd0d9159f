-- examples/analysis/dataset.lua: a CSV file as the analysis tools see it:
-- every row as read, the problems found in them, and the clean rows the
-- statistics are computed from. The rules are generic, so another file
-- works too: a value may not be blank; a column whose values are mostly
-- numbers is numeric, and a value there that is not a plain decimal number
-- is a bad number; a row equal to an earlier one is a duplicate. A row
-- with any problem is left out of the clean rows (a duplicate's first copy
-- stays).
local csv = require("analysis.csv")

local M = {}

local Dataset = {}
Dataset.__index = Dataset

-- A plain decimal number (no hex, exponent, spaces or thousands separator:
-- what a spreadsheet export writes), or nil.
function M.number(s)
  if type(s) ~= "string" then return nil end
  if s:find("^%-?%d+$") or s:find("^%-?%d+%.%d+$") or s:find("^%-?%.%d+$") then return tonumber(s) end
  return nil
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Which columns are numeric: more than half of their non-blank values are
-- numbers.
local function numeric_columns(header, records)
  local numeric = {}
  for k, name in ipairs(header) do
    local nums, filled = 0, 0
    for _, r in ipairs(records) do
      local v = trim(r.fields[k] or "")
      if v ~= "" then
        filled = filled + 1
        if M.number(v) then nums = nums + 1 end
      end
    end
    numeric[name] = filled > 0 and nums * 2 > filled
  end
  return numeric
end

-- M.load(path) -> a dataset, or nil and a message.
function M.load(path)
  local header, records = csv.read(path)
  if not header then return nil, records end
  local numeric = numeric_columns(header, records)
  local rows, problems, clean, seen = {}, {}, {}, {}
  for _, r in ipairs(records) do
    local row = { line = r.line, values = {}, raw = table.concat(r.fields, ",") }
    local why = {}
    if #r.fields ~= #header then
      why[#why + 1] = string.format("has %d fields, the header has %d", #r.fields, #header)
    end
    for k, name in ipairs(header) do
      local v = trim(r.fields[k] or "")
      if v == "" then
        why[#why + 1] = name .. " is blank"
      elseif numeric[name] then
        local x = M.number(v)
        if x == nil then why[#why + 1] = string.format("%s is not a number: %q", name, v) end
        v = x or v
      end
      row.values[name] = v
    end
    local first = seen[row.raw]
    if first then
      why[#why + 1] = "duplicate of line " .. first
    else
      seen[row.raw] = r.line
    end
    rows[#rows + 1] = row
    if #why > 0 then
      problems[#problems + 1] = { line = r.line, row = row.raw, problems = why }
    else
      clean[#clean + 1] = row
    end
  end
  return setmetatable({ path = path, columns = header, numeric = numeric, rows = rows, problems = problems,
                        clean = clean }, Dataset)
end

-- ds:column(name) -> true, or nil and a message naming the columns.
function Dataset:column(name)
  for _, c in ipairs(self.columns) do
    if c == name then return true end
  end
  return nil, string.format("unknown column %q; the columns are: %s", tostring(name), table.concat(self.columns, ", "))
end

return M
