-- owl.validate: a JSON Schema (draft 2020-12) validator for values decoded by
-- owl.json or built by hand. It covers the applicator and validation
-- vocabularies and $ref / $defs / $id / $anchor within one document; it
-- ignores annotations (title, description, default, format, ...).
--
--   local ok, errors = require("owl.validate").validate(schema, value)
--   -- true, or false and { { path = "/subtasks/0/name", message = "..." }, ... }
--
-- A plain recursive interpreter: each keyword is looked up in the schema table
-- as the value is walked, and nothing is allocated while a value is valid
-- except the one state table per call. A value is first checked in "fast"
-- mode (stop at the first failure, build no message); only a value that fails
-- is walked again to collect every error with its path.
--
-- Values follow owl.json: a table with json.array_mt is an array; a plain
-- non-empty table whose keys are exactly 1..n is an array; any other table
-- (an empty plain table too) is an object; json.null (and a Lua nil) is null.
--
-- A schema is treated as immutable once it has been validated against: what
-- its $id / $anchor / $ref resolve to is cached per root schema table.

local json = require("owl.json")
-- a long array (a plan of a thousand subtasks) pauses at a checkpoint now
-- and then, so that a host's frame budget holds (owl.task.checkpoint)
local checkpoint = require("owl.task").checkpoint
local CHECKPOINT_EVERY = 8 -- items: a subtask object costs a few microseconds, 10 when cold

local null = json.null
local array_mt = json.array_mt
local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local getmetatable, setmetatable = getmetatable, setmetatable
local floor, huge = math.floor, math.huge
local mtype = math.type -- nil before 5.3
local find, sub, gsub, byte, char, format = string.find, string.sub, string.gsub, string.byte, string.char, string.format
local concat = table.concat

local M = {}

-- Values ------------------------------------------------------------------

-- The JSON kind of a Lua value: "null", "boolean", "number", "string",
-- "array", "object", or the Lua type for values JSON cannot hold.
local function kind(v)
  local t = type(v)
  if t == "table" then
    if getmetatable(v) == array_mt then return "array" end
    local n = #v
    if n == 0 then return "object" end
    -- keys exactly 1..n: n distinct keys, every one an integer in [1, n]
    local count = 0
    for k in pairs(v) do
      if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then return "object" end
      count = count + 1
    end
    return count == n and "array" or "object"
  elseif t == "nil" or v == null then
    return "null"
  end
  return t
end

-- An integer is a number with a zero fractional part (1.0 is one), finite.
local function is_integer(v)
  if mtype and mtype(v) == "integer" then return true end
  return v == floor(v) and v - v == 0
end

-- Length in Unicode code points: every byte that is not a UTF-8
-- continuation byte (10xxxxxx) starts one.
local function length(s)
  if not find(s, "[\128-\255]") then return #s end
  local _, continuation = gsub(s, "[\128-\191]", "")
  return #s - continuation
end

-- Deep JSON equality: 1 == 1.0, true ~= 1, an array never equals an object.
local function equal(a, b)
  if a == b then return true end
  local ka = kind(a)
  if ka ~= "array" and ka ~= "object" then
    return ka == "null" and kind(b) == "null"
  end
  if kind(b) ~= ka then return false end
  if ka == "array" then
    local n = #a
    if #b ~= n then return false end
    for i = 1, n do
      if not equal(a[i], b[i]) then return false end
    end
    return true
  end
  local count = 0
  for k, av in pairs(a) do
    local bv = b[k]
    if bv == nil or not equal(av, bv) then return false end
    count = count + 1
  end
  for _ in pairs(b) do
    count = count - 1
    if count < 0 then return false end
  end
  return count == 0
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- A string quoted as JSON writes it, so a message stays on one line.
local function quote(s)
  return '"' .. gsub(s, '[%c"\\]', function(c) return ESCAPES[c] or format("\\u%04x", byte(c)) end) .. '"'
end

-- A short rendering of a value for messages (never the whole of a long one).
local function preview(v)
  local k = kind(v)
  if k == "string" then
    if #v > 40 then
      local cut = 37
      -- do not split a UTF-8 sequence
      while cut > 1 and byte(v, cut + 1) and byte(v, cut + 1) >= 128 and byte(v, cut + 1) < 192 do cut = cut - 1 end
      v = sub(v, 1, cut) .. "..."
    end
    return quote(v)
  elseif k == "number" then
    if is_integer(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
    return format("%.17g", v)
  elseif k == "boolean" then
    return tostring(v)
  end
  return k -- null, array, object, or a Lua type JSON cannot hold
end

local function list_preview(list)
  local parts = {}
  for i, v in ipairs(list) do
    if i > 10 then
      parts[#parts + 1] = "..."
      break
    end
    parts[#parts + 1] = preview(v)
  end
  return concat(parts, ", ")
end

-- Regexes -------------------------------------------------------------------

-- Compiled patterns by source, shared by every schema; an entry is the regex,
-- or the compile error as a string. Cleared when it grows past a bound, so a
-- stream of one-off patterns cannot grow it without limit.
local regexes, regex_count = {}, 0
local core_regex

local function regex(pattern)
  local re = regexes[pattern]
  if re == nil then
    if not core_regex then core_regex = require("owl.core").regex end
    local compiled, message = core_regex(pattern)
    re = compiled or message
    if regex_count >= 512 then
      regexes, regex_count = {}, 0
    end
    regexes[pattern] = re
    regex_count = regex_count + 1
  end
  if type(re) == "string" then return nil, re end
  return re
end

-- URIs (RFC 3986, enough for $id and $ref) -----------------------------------

-- The base URI of a root schema without $id: a document-local name no real
-- schema uses, so that relative references still resolve consistently.
local ROOT_BASE = "owl:/schema"

local function parse_uri(u)
  local scheme, rest = u:match("^(%a[%w+.-]*):(.*)$")
  if not scheme then rest = u end
  local fragment, query, authority
  local h = find(rest, "#", 1, true)
  if h then fragment, rest = sub(rest, h + 1), sub(rest, 1, h - 1) end
  local q = find(rest, "?", 1, true)
  if q then query, rest = sub(rest, q + 1), sub(rest, 1, q - 1) end
  if sub(rest, 1, 2) == "//" then
    local slash = find(rest, "/", 3, true)
    if slash then
      authority, rest = sub(rest, 3, slash - 1), sub(rest, slash)
    else
      authority, rest = sub(rest, 3), ""
    end
  end
  return scheme, authority, rest, query, fragment
end

local function remove_dots(path)
  if not find(path, ".", 1, true) then return path end
  local input, out = path, {}
  while input ~= "" do
    if sub(input, 1, 3) == "../" then
      input = sub(input, 4)
    elseif sub(input, 1, 2) == "./" then
      input = sub(input, 3)
    elseif sub(input, 1, 3) == "/./" then
      input = sub(input, 3)
    elseif input == "/." then
      input = "/"
    elseif sub(input, 1, 4) == "/../" then
      input = sub(input, 4)
      out[#out] = nil
    elseif input == "/.." then
      input = "/"
      out[#out] = nil
    elseif input == "." or input == ".." then
      input = ""
    else
      local segment = input:match("^/?[^/]*")
      out[#out + 1] = segment
      input = sub(input, #segment + 1)
    end
  end
  return concat(out)
end

-- RFC 3986 section 5.2.2: the target of reference ref against base.
local function resolve_uri(base, ref)
  local rs, ra, rp, rq, rf = parse_uri(ref)
  local s, a, p, q
  if rs then
    s, a, p, q = rs, ra, remove_dots(rp), rq
  else
    local bs, ba, bp, bq = parse_uri(base)
    s = bs
    if ra then
      a, p, q = ra, remove_dots(rp), rq
    else
      a = ba
      if rp == "" then
        p, q = bp, rq or bq
      else
        if sub(rp, 1, 1) == "/" then
          p = remove_dots(rp)
        elseif ba and bp == "" then
          p = remove_dots("/" .. rp)
        else
          local dir = bp:match("^(.*/)") or ""
          p = remove_dots(dir .. rp)
        end
        q = rq
      end
    end
  end
  local parts = {}
  if s then parts[#parts + 1] = s .. ":" end
  if a then parts[#parts + 1] = "//" .. a end
  parts[#parts + 1] = p
  if q then parts[#parts + 1] = "?" .. q end
  if rf then parts[#parts + 1] = "#" .. rf end
  return concat(parts)
end

local function split_fragment(uri)
  local h = find(uri, "#", 1, true)
  if not h then return uri, "" end
  return sub(uri, 1, h - 1), sub(uri, h + 1)
end

local function percent_decode(s)
  if not find(s, "%", 1, true) then return s end
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

-- Documents: where every $id and $anchor of a root schema leads ------------

-- Keywords whose values are schemas, by shape. Only these are walked for
-- $id and $anchor: an "$id" inside "const" or "enum" is data, not a schema.
local SCHEMA_MAPS = { "$defs", "definitions", "properties", "patternProperties", "dependentSchemas" }
local SCHEMA_LISTS = { "allOf", "anyOf", "oneOf", "prefixItems" }
local SCHEMA_ONES = {
  "items", "contains", "additionalProperties", "propertyNames", "not", "if", "then", "else",
  "unevaluatedItems", "unevaluatedProperties", "contentSchema",
}

-- One document per root schema table. Every table inside it is weak, so on
-- 5.1 and LuaJIT (no ephemerons) the cache never keeps a schema alive.
local documents = setmetatable({}, { __mode = "k" })

local function index(doc, s, base)
  if type(s) ~= "table" or doc.base_of[s] then return end
  local id = s["$id"]
  if type(id) == "string" then
    base = split_fragment(resolve_uri(base, id))
    doc.ids[base] = s
  end
  doc.base_of[s] = base
  local anchor = s["$anchor"]
  if type(anchor) == "string" then doc.ids[base .. "#" .. anchor] = s end
  anchor = s["$dynamicAnchor"] -- also a plain-name fragment in 2020-12
  if type(anchor) == "string" and doc.ids[base .. "#" .. anchor] == nil then doc.ids[base .. "#" .. anchor] = s end
  for _, kw in ipairs(SCHEMA_MAPS) do
    local map = s[kw]
    if type(map) == "table" then
      for _, sub_schema in pairs(map) do index(doc, sub_schema, base) end
    end
  end
  for _, kw in ipairs(SCHEMA_LISTS) do
    local list = s[kw]
    if type(list) == "table" then
      for _, sub_schema in ipairs(list) do index(doc, sub_schema, base) end
    end
  end
  for _, kw in ipairs(SCHEMA_ONES) do
    index(doc, s[kw], base)
  end
end

local function document(root)
  local doc = documents[root]
  if not doc then
    doc = {
      ids = setmetatable({}, { __mode = "v" }),      -- absolute URI (with #anchor) -> schema
      base_of = setmetatable({}, { __mode = "k" }),  -- schema -> its base URI
      target = setmetatable({}, { __mode = "kv" }),  -- schema with $ref -> resolved schema
      broken = setmetatable({}, { __mode = "k" }),   -- schema with $ref -> true: unresolvable
    }
    doc.ids[ROOT_BASE] = root
    index(doc, root, ROOT_BASE)
    documents[root] = doc
  end
  return doc
end

-- Follows a JSON pointer from node, tracking $id changes on the way so that
-- the target gets the right base even when it sits under an unknown keyword.
local function walk_pointer(doc, node, base, pointer)
  for token in (sub(pointer, 2) .. "/"):gmatch("([^/]*)/") do
    if type(node) ~= "table" then return nil end
    token = gsub(gsub(token, "~1", "/"), "~0", "~")
    if kind(node) == "array" then
      if not token:match("^%d+$") then return nil end
      node = node[tonumber(token) + 1]
    else
      node = node[token]
    end
    if type(node) == "table" then
      local b = doc.base_of[node]
      if b then
        base = b
      elseif type(node["$id"]) == "string" then
        base = split_fragment(resolve_uri(base, node["$id"]))
      end
    end
  end
  if node ~= nil and doc.base_of[node] == nil then index(doc, node, base) end
  return node
end

local function resolve_ref(doc, s, ref)
  local uri = resolve_uri(doc.base_of[s] or ROOT_BASE, ref)
  local resource, fragment = split_fragment(uri)
  fragment = percent_decode(fragment)
  if fragment == "" then return doc.ids[resource] end
  if sub(fragment, 1, 1) == "/" then
    local node = doc.ids[resource]
    if node == nil then return nil end
    return walk_pointer(doc, node, doc.base_of[node] or resource, fragment)
  end
  return doc.ids[resource .. "#" .. fragment]
end

-- Validation ----------------------------------------------------------------

-- The state of one validate call: the instance path as a stack of tokens
-- (array indexes as 0-based numbers, keys as strings), turned into a JSON
-- pointer only when an error is recorded.
local function pointer(st)
  local n = st.n
  if n == 0 then return "" end
  local parts = {}
  for i = 1, n do
    local token = st.path[i]
    if type(token) == "string" then
      if find(token, "[~/]") then token = gsub(gsub(token, "~", "~0"), "/", "~1") end
    else
      token = format("%d", token)
    end
    parts[i] = token
  end
  return "/" .. concat(parts, "/")
end

local function add(st, errs, message)
  errs[#errs + 1] = { path = pointer(st), message = message }
end

local function type_matches(t, k, v)
  if t == k then return true end
  if t == "integer" then return k == "number" and is_integer(v) end
  if t == "number" then return false end
  if type(t) == "table" then
    for _, one in ipairs(t) do
      if one == k or (one == "integer" and k == "number" and is_integer(v)) then return true end
    end
  end
  return false
end

local function type_names(t)
  if type(t) ~= "table" then return tostring(t) end
  local names = {}
  for i, one in ipairs(t) do names[i] = tostring(one) end
  return concat(names, " or ")
end

-- Is v a multiple of m? Integers exactly; floats to within rounding, since
-- 0.0075 / 0.0001 is 74.99999999999999 in binary.
local function multiple_of(v, m)
  if mtype and mtype(v) == "integer" and mtype(m) == "integer" then return v % m == 0 end
  local q = v / m
  if q - q ~= 0 then return false end -- inf or nan: not a representable multiple
  local r = floor(q + 0.5)
  local d = q - r
  if d < 0 then d = -d end
  return d <= 1e-9 * (r < 0 and -r or (r > 1 and r or 1))
end

local check -- forward: check(st, schema, value, errs) -> boolean

-- A name for a property key in messages and paths: JSON keys are strings.
local function key_string(k)
  if type(k) == "string" then return k end
  return tostring(k)
end

-- The first error of each failed branch, for the one summarising message of
-- anyOf / oneOf (only built when a value fails).
local function branch_reasons(st, list, v)
  local reasons = {}
  for i, branch in ipairs(list) do
    local errs = {}
    check(st, branch, v, errs)
    local first = errs[1]
    if first then
      local where = sub(first.path, #pointer(st) + 1)
      reasons[#reasons + 1] = format("%d: %s%s", i - 1, where ~= "" and (where .. ": ") or "", first.message)
    end
    if #reasons >= 5 then break end
  end
  if #reasons == 0 then return "" end
  return " (" .. concat(reasons, "; ") .. ")"
end

local function check_number(st, s, v, errs)
  local ok = true
  local limit = s.minimum
  if type(limit) == "number" and v < limit then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected a number >= %s, got %s", preview(limit), preview(v)))
  end
  limit = s.exclusiveMinimum
  if type(limit) == "number" and v <= limit then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected a number > %s, got %s", preview(limit), preview(v)))
  end
  limit = s.maximum
  if type(limit) == "number" and v > limit then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected a number <= %s, got %s", preview(limit), preview(v)))
  end
  limit = s.exclusiveMaximum
  if type(limit) == "number" and v >= limit then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected a number < %s, got %s", preview(limit), preview(v)))
  end
  limit = s.multipleOf
  if type(limit) == "number" and limit > 0 and not multiple_of(v, limit) then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected a multiple of %s, got %s", preview(limit), preview(v)))
  end
  return ok
end

-- A count against optional bounds (minLength/maxLength, minItems/maxItems,
-- minContains/maxContains, minProperties/maxProperties all read alike):
-- whether n is within them, and with errs, how it is not.
local function within(st, errs, n, min, max, one, many)
  local ok = true
  if type(min) == "number" and n < min then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected at least %s %s, got %d", preview(min), min == 1 and one or many, n))
  end
  if type(max) == "number" and n > max then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected at most %s %s, got %d", preview(max), max == 1 and one or many, n))
  end
  return ok
end

local function check_string(st, s, v, errs)
  local ok = true
  local min, max = s.minLength, s.maxLength
  local bytes = #v
  -- a code point takes 1 to 4 bytes, so the byte length often settles both
  -- bounds without counting
  if type(min) == "number" and bytes >= 4 * min then min = nil end
  if type(max) == "number" and bytes <= max then max = nil end
  if (type(min) == "number" or type(max) == "number")
      and not within(st, errs, length(v), min, max, "character", "characters") then
    if not errs then return false end
    ok = false
  end
  local pattern = s.pattern
  if type(pattern) == "string" then
    local re, err = regex(pattern)
    local matched
    if re then matched, err = re:test(v) end
    if not matched then
      if not errs then return false end
      ok = false
      if not re then
        add(st, errs, format("invalid pattern %s: %s", quote(pattern), err))
      elseif matched == nil then
        add(st, errs, format("cannot match pattern %s: %s", quote(pattern), err))
      else
        add(st, errs, format("expected a string matching %s, got %s", quote(pattern), preview(v)))
      end
    end
  end
  return ok
end

local function check_array(st, s, v, errs)
  local ok = true
  local n = #v
  if not within(st, errs, n, s.minItems, s.maxItems, "item", "items") then
    if not errs then return false end
    ok = false
  end
  if s.uniqueItems == true and n > 1 then
    -- scalars through a hash (1 and 1.0 are one key), containers pairwise
    local seen, containers = {}, nil
    for i = 1, n do
      local item = v[i]
      local t = type(item)
      local first
      if t == "table" then
        containers = containers or {}
        for _, j in ipairs(containers) do
          if equal(v[j], item) then
            first = j
            break
          end
        end
        if not first then containers[#containers + 1] = i end
      elseif item == item then -- NaN is never equal to anything
        local key = item == nil and null or item
        first = seen[key]
        if not first then seen[key] = i end
      end
      if first then
        if not errs then return false end
        ok = false
        add(st, errs, format("expected unique items, but items %d and %d are equal", first - 1, i - 1))
        break
      end
    end
  end
  local prefix = s.prefixItems
  local np = 0
  local path = st.path
  if type(prefix) == "table" then
    np = #prefix
    for i = 1, (np < n and np or n) do
      st.n = st.n + 1
      path[st.n] = i - 1
      local good = check(st, prefix[i], v[i], errs)
      st.n = st.n - 1
      if not good then
        if not errs then return false end
        ok = false
      end
    end
  end
  local items = s.items
  if items ~= nil and n > np then
    if items == false then
      if not errs then return false end
      ok = false
      add(st, errs, format("expected at most %d item%s, got %d", np, np == 1 and "" or "s", n))
    else
      for i = np + 1, n do
        if i % CHECKPOINT_EVERY == 0 then checkpoint() end
        st.n = st.n + 1
        path[st.n] = i - 1
        local good = check(st, items, v[i], errs)
        st.n = st.n - 1
        if not good then
          if not errs then return false end
          ok = false
        end
      end
    end
  end
  local contains = s.contains
  if contains ~= nil then
    local at_least = s.minContains
    if type(at_least) ~= "number" then at_least = 1 end
    local at_most = s.maxContains
    if type(at_most) ~= "number" then at_most = huge end
    local count = 0
    for i = 1, n do
      st.n = st.n + 1
      path[st.n] = i - 1
      if check(st, contains, v[i], nil) then count = count + 1 end
      st.n = st.n - 1
    end
    if not within(st, errs, count, at_least, at_most, 'item matching "contains"', 'items matching "contains"') then
      if not errs then return false end
      ok = false
    end
  end
  return ok
end

local function check_object(st, s, v, errs)
  local ok = true
  local path = st.path
  local min, max = s.minProperties, s.maxProperties
  if type(min) == "number" or type(max) == "number" then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if not within(st, errs, n, min, max, "property", "properties") then
      if not errs then return false end
      ok = false
    end
  end
  local required = s.required
  if type(required) == "table" then
    for _, name in ipairs(required) do
      if v[name] == nil then
        if not errs then return false end
        ok = false
        add(st, errs, format("missing required property %s", quote(tostring(name))))
      end
    end
  end
  local dependent = s.dependentRequired
  if type(dependent) == "table" then
    for name, needs in pairs(dependent) do
      if v[name] ~= nil and type(needs) == "table" then
        for _, need in ipairs(needs) do
          if v[need] == nil then
            if not errs then return false end
            ok = false
            add(st, errs, format("missing property %s, required when %s is present", quote(tostring(need)),
              quote(tostring(name))))
          end
        end
      end
    end
  end
  local props = s.properties
  if type(props) ~= "table" then props = nil end
  if props then
    for name, sub_schema in pairs(props) do
      local pv = v[name]
      if pv ~= nil then
        st.n = st.n + 1
        path[st.n] = name
        local good = check(st, sub_schema, pv, errs)
        st.n = st.n - 1
        if not good then
          if not errs then return false end
          ok = false
        end
      end
    end
  end
  local patterns = s.patternProperties
  if type(patterns) ~= "table" or next(patterns) == nil then patterns = nil end
  local additional = s.additionalProperties
  if patterns then
    for pattern in pairs(patterns) do
      local re, err = regex(pattern)
      if not re then
        if not errs then return false end
        ok = false
        add(st, errs, format("invalid pattern %s in patternProperties: %s", quote(tostring(pattern)), err))
      end
    end
  end
  if patterns or additional ~= nil then
    for k, pv in pairs(v) do
      local name = key_string(k)
      local matched = props ~= nil and props[name] ~= nil
      if patterns then
        for pattern, sub_schema in pairs(patterns) do
          local re = regex(pattern)
          if re then
            local hit, err = re:test(name)
            if hit == nil then
              if not errs then return false end
              ok = false
              add(st, errs, format("cannot match pattern %s: %s", quote(pattern), err))
            elseif hit then
              matched = true
              st.n = st.n + 1
              path[st.n] = name
              local good = check(st, sub_schema, pv, errs)
              st.n = st.n - 1
              if not good then
                if not errs then return false end
                ok = false
              end
            end
          end
        end
      end
      if not matched and additional ~= nil then
        if additional == false then
          if not errs then return false end
          ok = false
          add(st, errs, format("unexpected property %s", quote(name)))
        else
          st.n = st.n + 1
          path[st.n] = name
          local good = check(st, additional, pv, errs)
          st.n = st.n - 1
          if not good then
            if not errs then return false end
            ok = false
          end
        end
      end
    end
  end
  local names = s.propertyNames
  if names ~= nil then
    for k in pairs(v) do
      local name = key_string(k)
      if not check(st, names, name, nil) then
        if not errs then return false end
        ok = false
        local inner = {}
        check(st, names, name, inner)
        for _, e in ipairs(inner) do
          add(st, errs, format("property name %s: %s", quote(name), e.message))
        end
        if #inner == 0 then add(st, errs, format("property name %s is not allowed", quote(name))) end
      end
    end
  end
  local schemas = s.dependentSchemas
  if type(schemas) == "table" then
    for name, sub_schema in pairs(schemas) do
      if v[name] ~= nil and not check(st, sub_schema, v, errs) then
        if not errs then return false end
        ok = false
      end
    end
  end
  return ok
end

function check(st, s, v, errs)
  if s == true then return true end
  if s == false then
    if errs then add(st, errs, "no value is allowed here (the schema is false)") end
    return false
  end
  if type(s) ~= "table" then return true end
  local ok = true
  local k = kind(v)

  local ref = s["$ref"]
  if ref ~= nil then
    local doc = st.doc
    if not doc then
      doc = document(st.root)
      st.doc = doc
    end
    local target = doc.target[s]
    if target == nil and not doc.broken[s] then
      if type(ref) == "string" then target = resolve_ref(doc, s, ref) end
      if target == nil then doc.broken[s] = true else doc.target[s] = target end
    end
    if target == nil then
      if not errs then return false end
      ok = false
      add(st, errs, format("cannot resolve $ref %s within the schema", quote(tostring(ref))))
    else
      -- A $ref that comes back to itself without moving into the value
      -- would never end: the same target active at the same path depth.
      local active = st.active
      if not active then
        active = {}
        st.active = active
      end
      local depth = st.n
      local outer = active[target]
      if outer == depth then
        if not errs then return false end
        ok = false
        add(st, errs, format("$ref %s loops back to itself without reaching a value", quote(ref)))
      else
        active[target] = depth
        local good = check(st, target, v, errs)
        active[target] = outer
        if not good then
          if not errs then return false end
          ok = false
        end
      end
    end
  end

  local t = s.type
  if t ~= nil and not type_matches(t, k, v) then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected %s, got %s", type_names(t), k))
  end

  local enum = s.enum
  if type(enum) == "table" then
    local found = false
    for _, e in ipairs(enum) do
      if equal(e, v) then
        found = true
        break
      end
    end
    if not found then
      if not errs then return false end
      ok = false
      add(st, errs, format("expected one of %s, got %s", list_preview(enum), preview(v)))
    end
  end

  local const = s.const
  if const ~= nil and not equal(const, v) then
    if not errs then return false end
    ok = false
    add(st, errs, format("expected %s, got %s", preview(const), preview(v)))
  end

  local good = true
  if k == "string" then
    good = check_string(st, s, v, errs)
  elseif k == "number" then
    good = check_number(st, s, v, errs)
  elseif k == "object" then
    good = check_object(st, s, v, errs)
  elseif k == "array" then
    good = check_array(st, s, v, errs)
  end
  if not good then
    if not errs then return false end
    ok = false
  end

  local all = s.allOf
  if type(all) == "table" then
    for _, branch in ipairs(all) do
      if not check(st, branch, v, errs) then
        if not errs then return false end
        ok = false
      end
    end
  end

  local any = s.anyOf
  if type(any) == "table" then
    local found = false
    for _, branch in ipairs(any) do
      if check(st, branch, v, nil) then
        found = true
        break
      end
    end
    if not found then
      if not errs then return false end
      ok = false
      add(st, errs, format("expected a value matching at least one of the %d schemas in anyOf%s", #any,
        branch_reasons(st, any, v)))
    end
  end

  local one = s.oneOf
  if type(one) == "table" then
    local first, second
    for i, branch in ipairs(one) do
      if check(st, branch, v, nil) then
        if first then
          second = i
          break
        end
        first = i
      end
    end
    if not first or second then
      if not errs then return false end
      ok = false
      if second then
        add(st, errs, format("expected a value matching exactly one schema in oneOf, but schemas %d and %d both match",
          first - 1, second - 1))
      else
        add(st, errs, format("expected a value matching exactly one of the %d schemas in oneOf%s", #one,
          branch_reasons(st, one, v)))
      end
    end
  end

  local negated = s["not"]
  if negated ~= nil and check(st, negated, v, nil) then
    if not errs then return false end
    ok = false
    add(st, errs, "expected a value not matching the schema in \"not\"")
  end

  local condition = s["if"]
  if condition ~= nil then
    local branch
    if check(st, condition, v, nil) then branch = s["then"] else branch = s["else"] end
    if branch ~= nil and not check(st, branch, v, errs) then
      if not errs then return false end
      ok = false
    end
  end

  return ok
end

-- validate(schema, value) -> true, or false and a list of { path, message }.
function M.validate(schema, value)
  if type(schema) ~= "table" and type(schema) ~= "boolean" then
    error("owl.validate: the schema must be a table or a boolean, got " .. type(schema), 2)
  end
  local st = { root = schema, path = {}, n = 0 }
  if check(st, schema, value, nil) then return true end
  local errs = {}
  st.n, st.active = 0, nil
  check(st, schema, value, errs)
  if #errs == 0 then errs[1] = { path = "", message = "value does not match the schema" } end
  return false, errs
end

-- The kind rule, for modules that must agree with it (owl.schema, specs).
M.kind = kind

return M
