-- examples/analysis/csv.lua: a small CSV reader (RFC 4180: quoted fields,
-- "" inside quotes, LF or CRLF line ends) for the data-analysis example.
-- Blank lines are skipped; every record keeps the line it started on, so a
-- problem can be reported where a person would look for it.
local M = {}

-- M.parse(text) -> header (array of names), records ({ line, fields }),
-- or nil and a message naming the line.
function M.parse(text)
  local records, fields, field = {}, {}, {}
  local line, start_line = 1, 1
  local i, n = 1, #text
  local quoted, was_quoted = false, false
  local function end_field()
    fields[#fields + 1] = table.concat(field)
    field, was_quoted = {}, false
  end
  local function end_record()
    end_field()
    -- a blank line is one empty, unquoted field
    if not (#fields == 1 and fields[1] == "" and not quoted) then
      records[#records + 1] = { line = start_line, fields = fields }
    end
    fields = {}
  end
  while i <= n do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' then
        if text:sub(i + 1, i + 1) == '"' then
          field[#field + 1] = '"'
          i = i + 1
        else
          quoted = false
        end
      else
        if c == "\n" then line = line + 1 end
        field[#field + 1] = c
      end
    elseif c == '"' and #field == 0 and not was_quoted then
      quoted, was_quoted = true, true
    elseif c == "," then
      end_field()
    elseif c == "\n" or c == "\r" then
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      end_record()
      line = line + 1
      start_line = line
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  if quoted then return nil, "line " .. start_line .. ": a quoted field is never closed" end
  if #field > 0 or #fields > 0 then end_record() end
  if #records == 0 then return nil, "the file is empty: no header line" end
  local header = table.remove(records, 1).fields
  for k, name in ipairs(header) do
    if name == "" then return nil, "line 1: column " .. k .. " of the header has no name" end
  end
  return header, records
end

-- M.read(path) -> header, records, or nil and a message.
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot open the data file: " .. tostring(err) end
  local text = f:read("*a")
  f:close()
  return M.parse(text)
end

return M
