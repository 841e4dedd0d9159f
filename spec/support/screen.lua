-- spec/support/screen.lua: a small terminal for the specs. It plays what a
-- program wrote to a pseudo-terminal and keeps what a person would see: the
-- rows on the screen and the rows that scrolled off its top.
--
--   local screen = require("support.screen").new(80, 24 [, { onlcr = true }])
--   screen:feed(bytes)
--   screen:text()      -- every row, scrolled-off ones first
--   screen.sequences   -- { ["\27[4A"] = 3, ... }: each escape sequence and its count
--   screen.unknown     -- escape sequences and raw controls it does not play
--
-- It plays only what owl's live progress may send: text, CR, LF, cursor up
-- (CSI n A), erase to the end of the line (CSI K), erase below (CSI J) and
-- autowrap off and on (CSI ?7l, CSI ?7h). Anything else (a screen clear, a
-- title, a bell, a C1 control) is kept in `unknown`, so a spec can insist
-- that nothing else reached the terminal. What a pseudo-terminal passes on
-- has its LF already made CR LF; bytes written straight to a fake stream
-- have not: onlcr does that translation here, as the terminal driver would.
local M = {}

local Screen = {}
Screen.__index = Screen

function M.new(columns, lines, o)
  local s = setmetatable({ columns = columns, lines = lines, row = 1, col = 1, wrap = true,
                           onlcr = o and o.onlcr or false,
                           rows = {}, scrolled = {}, sequences = {}, unknown = {} }, Screen)
  for i = 1, lines do s.rows[i] = {} end
  return s
end

local function row_text(cells, columns)
  local parts = {}
  for c = 1, columns do parts[c] = cells[c] or " " end
  return (table.concat(parts):gsub("%s+$", ""))
end

function Screen:newline()
  if self.row == self.lines then
    self.scrolled[#self.scrolled + 1] = row_text(table.remove(self.rows, 1), self.columns)
    self.rows[self.lines] = {}
  else
    self.row = self.row + 1
  end
end

function Screen:put(ch)
  if self.col > self.columns then
    if self.wrap then
      self.col = 1
      self:newline()
    else
      self.col = self.columns
    end
  end
  self.rows[self.row][self.col] = ch
  self.col = self.col + 1
end

function Screen:csi(params, final, seq)
  local n = tonumber(params:match("^%d+$") or "") or (params == "" and 1 or nil)
  if final == "A" and n then
    self.row = math.max(1, self.row - n)
  elseif final == "K" and params == "" then
    local cells = self.rows[self.row]
    for c = self.col, self.columns do cells[c] = nil end
  elseif final == "J" and params == "" then
    local cells = self.rows[self.row]
    for c = self.col, self.columns do cells[c] = nil end
    for r = self.row + 1, self.lines do self.rows[r] = {} end
  elseif params == "?7" and (final == "l" or final == "h") then
    self.wrap = final == "h"
  else
    self.unknown[#self.unknown + 1] = seq
    return
  end
  self.sequences[seq] = (self.sequences[seq] or 0) + 1
end

function Screen:feed(s)
  local i, n = 1, #s
  while i <= n do
    local b = s:byte(i)
    if b == 27 then
      local params, final, stop = s:match("^%[([%d;?]*)([@-~])()", i + 1)
      if final then
        self:csi(params, final, s:sub(i, stop - 1))
        i = stop
      else
        self.unknown[#self.unknown + 1] = s:sub(i, i + 1)
        i = i + 2
      end
    elseif b == 13 then
      self.col = 1
      i = i + 1
    elseif b == 10 then
      if self.onlcr then self.col = 1 end
      self:newline()
      i = i + 1
    elseif b < 32 or b == 127 then
      self.unknown[#self.unknown + 1] = string.char(b)
      i = i + 1
    else
      -- one character: a lead byte and its continuation bytes
      local j = i + 1
      while j <= n and s:byte(j) >= 0x80 and s:byte(j) < 0xC0 do j = j + 1 end
      local ch = s:sub(i, j - 1)
      if b == 0xC2 and #ch == 2 and ch:byte(2) < 0xA0 then
        self.unknown[#self.unknown + 1] = ch -- a C1 control as UTF-8
      else
        self:put(ch)
      end
      i = j
    end
  end
  return self
end

-- The rows on the screen now, without the empty ones at the bottom.
function Screen:visible()
  local out = {}
  for r = 1, self.lines do out[r] = row_text(self.rows[r], self.columns) end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  return out
end

-- Every row: those that scrolled off, then those on the screen.
function Screen:text()
  local out = {}
  for _, line in ipairs(self.scrolled) do out[#out + 1] = line end
  for _, line in ipairs(self:visible()) do out[#out + 1] = line end
  return table.concat(out, "\n")
end

return M
