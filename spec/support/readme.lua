-- spec/support/readme.lua: the fenced code blocks of a Markdown file, for
-- spec/readme_spec.lua. Each block comes with what the spec needs to run it
-- and to name it: its fence language and the words after it, its text, the
-- line of its opening fence, the heading it sits under, and the directive
-- of the HTML comment just before it (invisible in the rendered page).
--
--   local readme = require("support.readme")
--   local blocks = readme.blocks(text)
--   -- { { lang = "lua", attrs = {}, text = "...", line = 30, heading = "Use",
--   --     directive = { mock = {...} } or nil, error = nil or "why" }, ... }
--
-- A directive is `<!-- NAME: JSON -->` on the lines right above a fence
-- (blank lines between are allowed; the comment may span lines). A comment
-- that does not parse, or names a directive not in KNOWN, puts an `error`
-- on the block, so a typo fails the spec instead of being ignored.
local mock = require("support.mock")

local M = {}

-- The directives a README block may carry; see spec/readme_spec.lua.
M.KNOWN = { mock = "table", output = "string" }

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The directive in the comment text (between `<!--` and `-->`), or nil and
-- why it is not one. A comment that does not look like `NAME: ...` at all is
-- an ordinary comment: nil, nil.
local function parse_directive(body)
  local name, value = trim(body):match("^([%a_]+):%s*(.-)$")
  if not name then return nil, nil end
  local want = M.KNOWN[name]
  if not want then
    return nil, "unknown directive '" .. name .. "' (known: mock, output)"
  end
  if want == "string" then return { [name] = value } end
  local decoded, err = mock.json_decode(value, true)
  if decoded == nil then return nil, "directive '" .. name .. "' is not JSON: " .. tostring(err) end
  if type(decoded) ~= want then return nil, "directive '" .. name .. "' wants a JSON array or object" end
  -- mock: the replies as a list, written either bare or as the body of
  -- POST /_mock/script ({"replies": [...]})
  local replies = decoded.replies or decoded
  if type(replies) ~= "table" or #replies == 0 then
    return nil, "directive 'mock' wants [reply, ...] or {\"replies\": [reply, ...]}"
  end
  return { [name] = replies }
end

-- The HTML comment that ends on line i - 1 or above (over blank lines), as
-- its inner text, or nil.
local function comment_before(lines, i)
  local j = i - 1
  while j >= 1 and lines[j]:match("^%s*$") do j = j - 1 end
  if j < 1 or not lines[j]:match("%-%->%s*$") then return nil end
  local last = j
  while j >= 1 and not lines[j]:find("<!--", 1, true) do j = j - 1 end
  if j < 1 then return nil end
  local text = table.concat(lines, "\n", j, last)
  return text:match("<!%-%-(.-)%-%->%s*$")
end

-- Every fenced block of text (``` or ~~~ fences, indented up to three
-- spaces, as CommonMark allows), in order.
function M.blocks(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local blocks, heading, i = {}, nil, 1
  while i <= #lines do
    local line = lines[i]
    local indent, fence, info = line:match("^( ? ? ?)(```+)%s*([^`]*)$")
    if not fence then indent, fence, info = line:match("^( ? ? ?)(~~~+)%s*(.*)$") end
    if fence then
      local words = {}
      for w in info:gmatch("%S+") do words[#words + 1] = w end
      local block = { lang = table.remove(words, 1) or "", attrs = words, line = i, heading = heading or "(top)" }
      local body, closed = {}, false
      local j = i + 1
      while j <= #lines do
        local l = lines[j]
        local close = l:match("^ ? ? ?(" .. fence:sub(1, 1) .. "+)%s*$")
        if close and #close >= #fence then closed = true break end
        -- the fence's indentation is removed from each line, as CommonMark does
        if #indent > 0 and l:sub(1, #indent) == indent then l = l:sub(#indent + 1) end
        body[#body + 1] = l
        j = j + 1
      end
      block.text = table.concat(body, "\n") .. (#body > 0 and "\n" or "")
      if not closed then block.error = "the fence opened here is never closed" end
      local comment = comment_before(lines, i)
      if comment and not block.error then
        local d, err = parse_directive(comment)
        block.directive, block.error = d, err
      end
      blocks[#blocks + 1] = block
      i = j + 1
    else
      local h = line:match("^#+%s+(.-)%s*#*%s*$")
      if h then heading = h end
      i = i + 1
    end
  end
  return blocks
end

return M
