-- examples/analysis/svg.lua: a small SVG chart writer (a line or grouped
-- bar chart of a few series over labelled x positions), for the
-- data-analysis example. Every text a model gave (title, labels, series
-- names) is escaped, and control characters XML forbids become spaces, so
-- the file is well-formed whatever the model wrote. Missing values (nil or
-- json.null) leave a gap.
local M = {}

M.WIDTH, M.HEIGHT = 760, 440
local LEFT, RIGHT, TOP, BOTTOM = 80, 160, 56, 76
local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf" }
M.MAX_SERIES = #COLORS

function M.escape(s)
  -- XML 1.0 allows no C0 control character but tab, LF and CR
  s = tostring(s):gsub("%c", function(ch) return (ch == "\t" or ch == "\n" or ch == "\r") and ch or " " end)
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }))
end

local function num(x)
  local s = string.format("%.1f", x)
  return s == "-0.0" and "0.0" or s
end

local function present(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

-- A tick label: thousands as "12k" keep the axis narrow.
local function label(v)
  if math.abs(v) >= 1000 and v % 100 == 0 then return (string.format("%gk", v / 1000)) end
  return (string.format("%g", v))
end

-- A step of 1, 2 or 5 times a power of ten giving about `ticks` intervals.
local function nice_step(span, ticks)
  local raw = span / ticks
  local p = 10 ^ math.floor(math.log(raw) / math.log(10) + 1e-9)
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * p >= raw then return m * p end
  end
  return 10 * p
end

-- M.chart{ title, kind = "line" | "bar", x_labels, series = { { name, values } }, y_label }
-- -> the SVG text. The caller has checked the shapes (tools.lua does).
function M.chart(c)
  local W, H = M.WIDTH, M.HEIGHT
  local pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
  local lo, hi = 0, nil
  for _, s in ipairs(c.series) do
    for i = 1, #c.x_labels do
      local v = s.values[i]
      if present(v) then
        if v < lo then lo = v end
        if hi == nil or v > hi then hi = v end
      end
    end
  end
  hi = hi or 1
  if hi <= lo then hi = lo + 1 end
  local step = nice_step(hi - lo, 5)
  lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
  local n = #c.x_labels
  local band = pw / n
  local function y_of(v) return TOP + ph - (v - lo) / (hi - lo) * ph end
  local function x_of(i) return LEFT + (i - 0.5) * band end

  local out = {
    '<?xml version="1.0" encoding="UTF-8"?>',
    string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
      .. 'font-family="sans-serif" font-size="12">', W, H, W, H),
    string.format('<rect x="0" y="0" width="%d" height="%d" fill="white"/>', W, H),
    string.format('<text x="%s" y="28" text-anchor="middle" font-size="16" font-weight="bold">%s</text>',
      num(W / 2), M.escape(c.title)),
  }
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  -- the y grid and its labels
  local v = lo
  while v <= hi + step / 2 do
    local y = y_of(v)
    add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#dddddd"/>', num(LEFT), num(y), num(LEFT + pw), num(y))
    add('<text x="%s" y="%s" text-anchor="end">%s</text>', num(LEFT - 8), num(y + 4), M.escape(label(v)))
    v = v + step
  end
  if c.y_label and c.y_label ~= "" then
    add('<text x="18" y="%s" text-anchor="middle" transform="rotate(-90 18 %s)">%s</text>',
      num(TOP + ph / 2), num(TOP + ph / 2), M.escape(c.y_label))
  end
  add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="black"/>', num(LEFT), num(TOP + ph), num(LEFT + pw), num(TOP + ph))
  for i, name in ipairs(c.x_labels) do
    local x, y = x_of(i), TOP + ph + 16
    add('<text x="%s" y="%s" text-anchor="end" transform="rotate(-40 %s %s)">%s</text>',
      num(x), num(y), num(x), num(y), M.escape(name))
  end
  -- the series
  local k = #c.series
  for si, s in ipairs(c.series) do
    local color = COLORS[si]
    if c.kind == "bar" then
      local bw = band * 0.8 / k
      local base = y_of(math.max(lo, math.min(0, hi)))
      for i = 1, n do
        local val = s.values[i]
        if present(val) then
          local y = y_of(val)
          add('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>', num(LEFT + (i - 1) * band + band * 0.1
            + (si - 1) * bw), num(math.min(y, base)), num(bw), num(math.abs(base - y)), color)
        end
      end
    else
      local run = {}
      local function flush()
        if #run > 1 then
          add('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', color, table.concat(run, " "))
        end
        run = {}
      end
      for i = 1, n do
        local val = s.values[i]
        if present(val) then
          run[#run + 1] = num(x_of(i)) .. "," .. num(y_of(val))
          add('<circle cx="%s" cy="%s" r="3" fill="%s"/>', num(x_of(i)), num(y_of(val)), color)
        else
          flush()
        end
      end
      flush()
    end
    local ly = TOP + 10 + (si - 1) * 20
    add('<rect x="%s" y="%s" width="12" height="12" fill="%s"/>', num(W - RIGHT + 20), num(ly - 10), color)
    add('<text x="%s" y="%s">%s</text>', num(W - RIGHT + 38), num(ly), M.escape(s.name))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

return M
