-- owl.text: small text helpers for model output. Models asked for "only
-- code" still wrap it in Markdown fences, sometimes with a sentence around
-- it; strip_fences recovers the code so it can be merged or written to a file.
local text = {}

-- Every function here takes untrusted text (model output, server bodies,
-- plan fields) and must stay linear in its length. Lua patterns backtrack:
-- an unanchored "%s+$" retries from every space of a long run, which is
-- quadratic. The rule followed below: a pattern that can match a run is
-- either anchored at the start, or its match is consumed (gsub moves past
-- it), or the search is plain.

-- s without trailing whitespace. ".*%S" is greedy: it runs to the end once
-- and backs up to the last non-space, which is linear.
function text.rtrim(s)
  return s:match("^.*%S") or ""
end

-- Control characters a terminal acts on: C0 but tab and newline, DEL, and
-- the C1 range as UTF-8 (U+0080..U+009F, which some terminals take as
-- escape sequences too). A person must see them, not have them run.
local function escape_control(c)
  return string.format("\\x%02x", c:byte())
end

-- text.printable(s [, keep_newlines]): s with every control character but
-- tab (and newline when keep_newlines) written as \xNN, so an escape
-- sequence from a model or a server shows as text and never moves the
-- cursor, clears the screen or sets the window title.
function text.printable(s, keep_newlines)
  s = tostring(s)
  local class = keep_newlines and "[%z\1-\8\11-\31\127]" or "[%z\1-\8\10-\31\127]"
  s = s:gsub(class, escape_control)
  s = s:gsub("\194([\128-\159])", function(c) return string.format("\\u%04x", c:byte()) end)
  return s
end

-- text.cap(s, max): s cut to at most max bytes (on a UTF-8 character
-- boundary) with a note of how much was cut, or s itself when it fits.
function text.cap(s, max)
  if #s <= max then return s end
  local head = text.head(s, max)
  return head .. string.format("... (%d more bytes)", #s - #head)
end

-- text.head(s, max): at most the first max bytes of s, never splitting a
-- UTF-8 character (it backs up over continuation bytes).
function text.head(s, max)
  if #s <= max then return s end
  local cut = max
  while cut > 0 do
    local b = s:byte(cut + 1)
    if b < 0x80 or b >= 0xC0 then break end
    cut = cut - 1
  end
  return s:sub(1, cut)
end

-- An opening fence: up to three spaces, then three or more backticks (with
-- an info string free of backticks) or three or more tildes (any info), as
-- CommonMark has it.
local function opening(line)
  local indent, fence = line:match("^( ? ? ?)(```+)[^`]*$")
  if not fence then indent, fence = line:match("^( ? ? ?)(~~~+)") end
  if not fence then return nil end
  return { indent = #indent, char = fence:sub(1, 1), len = #fence, lines = {} }
end

-- A closing fence: the same character, at least as long as the opening one,
-- and nothing after it but spaces.
local function closes(block, line)
  local fence = line:match("^ ? ? ?(" .. (block.char == "`" and "`" or "~") .. "+)%s*$")
  return fence ~= nil and #fence >= block.len
end

-- Content lines lose up to the opening fence's indentation (CommonMark).
local function unindent(block, line)
  if block.indent == 0 then return line end
  local lead = #line:match("^ *")
  return line:sub(math.min(lead, block.indent) + 1)
end

local function split_lines(s)
  local lines, pos = {}, 1
  while true do
    local nl = s:find("\n", pos, true)
    if not nl then
      lines[#lines + 1] = s:sub(pos)
      return lines
    end
    lines[#lines + 1] = s:sub(pos, nl - 1)
    pos = nl + 1
  end
end

local function code_of(block)
  if #block.lines == 0 then return "" end
  return table.concat(block.lines, "\n") .. "\n"
end

-- A block left open at the end of the text: a truncated answer, or a model
-- that put the closing fence on the last code line ("end```"). The code runs
-- to the end; a fence glued to the last line is cut off.
local function finish_open(block)
  local lines = block.lines
  while #lines > 0 and not lines[#lines]:find("%S") do lines[#lines] = nil end
  if #lines == 0 then return false end
  local fence = string.rep(block.char, block.len)
  local last = text.rtrim(lines[#lines])
  if #last > #fence and last:sub(-#fence) == fence then
    lines[#lines] = last:sub(1, -#fence - 1)
  end
  return true
end

-- The shape models send almost always: one ``` block at column 0 with only
-- whitespace around it and no other fence line inside. Found with a few
-- anchored searches instead of a pass over every line, which matters when
-- a thousand worker outputs come back at once. nil when s is not that shape
-- (the general pass below then decides).
local function single_block(s)
  local lead, after_open = s:match("^(%s-)```[^`\n]*\n()")
  if not lead or (lead ~= "" and lead:sub(-1) ~= "\n") then return nil end
  -- plain finds: the first ``` after the opening must be the closing fence,
  -- at the start of its line with only whitespace after it
  local close = s:find("```", after_open, true)
  if not close or close == after_open or s:byte(close - 1) ~= 10 then return nil end
  if not s:find("^`*%s*$", close) then return nil end
  if s:find("~~~", after_open, true) then return nil end
  return s:sub(after_open, close - 1)
end

-- strip_fences(s): one fenced block, alone but for whitespace -> its code;
-- fenced blocks with prose around them -> their code joined by a blank line;
-- no fenced block -> s unchanged.
function text.strip_fences(s)
  if type(s) ~= "string" then
    error("owl.text: strip_fences needs a string, got " .. type(s), 2)
  end
  if not s:find("```", 1, true) and not s:find("~~~", 1, true) then return s end
  local code = single_block(s)
  if code then return code end
  local blocks, prose, block = {}, false, nil
  for _, raw in ipairs(split_lines(s)) do
    local line = raw:gsub("\r$", "")
    if block then
      if closes(block, line) then
        blocks[#blocks + 1] = block
        block = nil
      else
        block.lines[#block.lines + 1] = unindent(block, raw)
      end
    else
      block = opening(line)
      if not block and line:find("%S") then prose = true end
    end
  end
  if block and finish_open(block) then blocks[#blocks + 1] = block end

  if #blocks == 0 then return s end
  if #blocks == 1 and not prose then return code_of(blocks[1]) end
  local codes = {}
  for _, b in ipairs(blocks) do
    local body = code_of(b)
    if body:find("%S") then codes[#codes + 1] = body end
  end
  -- each code ends with a newline, so "\n" between them leaves a blank line
  return table.concat(codes, "\n")
end

return text
