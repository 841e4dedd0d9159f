-- owl.schema: Pydantic-style declarations that become strict JSON Schemas
-- (the form OpenAI's structured outputs want), plus the validator.
--
--   local S = require("owl.schema")
--   local Subtask = S.object{
--     { "name", S.string{ description = "short identifier" } },
--     { "description", S.string() },
--   }
--   S.to_json(Subtask) --> { type = "object", properties = {...},
--                      --     required = ["name", "description"], additionalProperties = false }
--
-- Object fields are ordered { name, decl } pairs because their order is the
-- order the model writes them; `required` lists them in that order. Strict
-- mode requires every property, so S.optional(decl) means "required but may
-- be null". Misuse (a wrong option type, an unknown option, a keyed field)
-- raises an error naming the builder and the option.

local json = require("owl.json")
local validate = require("owl.validate")

local type, pairs, ipairs, tostring, setmetatable, getmetatable = type, pairs, ipairs, tostring, setmetatable, getmetatable
local error, format, floor = error, string.format, math.floor
local mtype = math.type -- nil before 5.3

local S = {}

-- Declarations are tables with this metatable; `kind` says which builder
-- made them and the other fields hold their checked options.
local Decl = {}
Decl.__index = Decl
function Decl:__tostring()
  return "owl.schema." .. self.kind
end

local function is_decl(x)
  return getmetatable(x) == Decl
end

local function new_decl(kind, fields)
  fields.kind = kind
  return setmetatable(fields, Decl)
end

-- Option checkers: each returns nil when v is acceptable, else what it
-- expected (for the message).
local function is_finite(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

local checks = {
  text = function(v) if type(v) ~= "string" then return "a string" end end,
  count = function(v)
    if not is_finite(v) or v < 0 or floor(v) ~= v then return "a non-negative integer" end
  end,
  number = function(v) if not is_finite(v) then return "a finite number" end end,
  positive = function(v) if not is_finite(v) or v <= 0 then return "a number greater than 0" end end,
  pattern = function(v)
    if type(v) ~= "string" then return "a string" end
    local re, message = require("owl.core").regex(v)
    if not re then return "a valid regular expression (" .. message .. ")" end
    re:close()
  end,
}

local function describe(v)
  local t = type(v)
  if t == "string" then return format("%q", v) end
  if t == "number" or t == "boolean" then return tostring(v) end
  if is_decl(v) then return "a declaration (" .. v.kind .. ")" end
  return t
end

-- Copies the options of builder `who` from opts into fields, checked against
-- `allowed` (option name -> checker name). Only string keys are options;
-- callers that also take positional entries skip those before calling.
-- Returns an error message, or nil.
local function read_options(who, opts, allowed, fields, skip_positional)
  if opts == nil then return nil end
  if type(opts) ~= "table" or is_decl(opts) then
    return format("%s: options must be a table, got %s", who, describe(opts))
  end
  for k, v in pairs(opts) do
    if not (skip_positional and type(k) == "number") then
      local check = type(k) == "string" and allowed[k]
      if not check then
        return format("%s: unknown option %s", who, describe(k))
      end
      local expected = checks[check](v)
      if expected then
        return format("%s: option %q must be %s, got %s", who, k, expected, describe(v))
      end
      fields[k] = v
    end
  end
  return nil
end

local function check_range(who, fields, low, high)
  local a, b = fields[low], fields[high]
  if a ~= nil and b ~= nil and a > b then
    return format("%s: %s (%s) is greater than %s (%s)", who, low, tostring(a), high, tostring(b))
  end
end

local STRING_OPTIONS = { description = "text", minLength = "count", maxLength = "count", pattern = "pattern" }
local NUMBER_OPTIONS = {
  description = "text", minimum = "number", maximum = "number", exclusiveMinimum = "number",
  exclusiveMaximum = "number", multipleOf = "positive",
}
local BOOLEAN_OPTIONS = { description = "text" }
local ARRAY_OPTIONS = { description = "text", minItems = "count", maxItems = "count" }
local ENUM_OPTIONS = { description = "text" }
local OBJECT_OPTIONS = { description = "text", title = "text" }

function S.string(opts)
  local fields = {}
  local err = read_options("S.string", opts, STRING_OPTIONS, fields)
    or check_range("S.string", fields, "minLength", "maxLength")
  if err then error(err, 2) end
  return new_decl("string", fields)
end

local function numeric(who, opts)
  local fields = {}
  local err = read_options(who, opts, NUMBER_OPTIONS, fields)
    or check_range(who, fields, "minimum", "maximum")
  return err, fields
end

function S.number(opts)
  local err, fields = numeric("S.number", opts)
  if err then error(err, 2) end
  return new_decl("number", fields)
end

function S.integer(opts)
  local err, fields = numeric("S.integer", opts)
  if err then error(err, 2) end
  return new_decl("integer", fields)
end

function S.boolean(opts)
  local fields = {}
  local err = read_options("S.boolean", opts, BOOLEAN_OPTIONS, fields)
  if err then error(err, 2) end
  return new_decl("boolean", fields)
end

function S.array(item, opts)
  if not is_decl(item) then
    error(format("S.array: the item must be a declaration (S.string(), S.object{...}, ...), got %s", describe(item)), 2)
  end
  local fields = { item = item }
  local err = read_options("S.array", opts, ARRAY_OPTIONS, fields)
    or check_range("S.array", fields, "minItems", "maxItems")
  if err then error(err, 2) end
  return new_decl("array", fields)
end

-- The JSON type of an enum value, or nil for one JSON Schema enums in strict
-- mode cannot hold.
local function enum_type(v)
  local t = type(v)
  if t == "string" or t == "boolean" then return t end
  if t == "number" and is_finite(v) then
    if (mtype and mtype(v) == "integer") or floor(v) == v then return "integer" end
    return "number"
  end
  return nil
end

function S.enum(spec)
  if type(spec) ~= "table" or is_decl(spec) then
    error(format("S.enum: expected a table of values, S.enum{ \"a\", \"b\" }, got %s", describe(spec)), 2)
  end
  local fields = { values = {} }
  local err = read_options("S.enum", spec, ENUM_OPTIONS, fields, true)
  if err then error(err, 2) end
  local n = #spec
  local seen = {}
  for k in pairs(spec) do
    if type(k) == "number" and (k < 1 or k > n or floor(k) ~= k) then
      error(format("S.enum: values must be a list without holes (key %s)", tostring(k)), 2)
    end
  end
  if n == 0 then error("S.enum: expected at least one value", 2) end
  for i = 1, n do
    local v = spec[i]
    if not enum_type(v) then
      error(format("S.enum: value %d must be a string, a finite number or a boolean, got %s", i, describe(v)), 2)
    end
    if seen[v] then error(format("S.enum: value %s is listed twice", describe(v)), 2) end
    seen[v] = true
    fields.values[i] = v
  end
  return new_decl("enum", fields)
end

function S.object(spec)
  if type(spec) ~= "table" or is_decl(spec) then
    error(format("S.object: expected a table of { name, decl } pairs, got %s", describe(spec)), 2)
  end
  local fields = { fields = {} }
  -- a keyed field is the likely mistake, so it gets its own explanation
  for k, v in pairs(spec) do
    if type(k) == "string" and is_decl(v) then
      error(format("S.object: field %q is given as a key; write fields as ordered pairs, "
        .. "S.object{ { %q, decl }, ... }, because a Lua table keeps no key order "
        .. "and the order of fields is the order the model writes them", k, k), 2)
    end
  end
  local err = read_options("S.object", spec, OBJECT_OPTIONS, fields, true)
  if err then error(err, 2) end
  local n = #spec
  for k in pairs(spec) do
    if type(k) == "number" and (k < 1 or k > n or floor(k) ~= k) then
      error(format("S.object: fields must be a list of pairs without holes (key %s)", tostring(k)), 2)
    end
  end
  local names = {}
  for i = 1, n do
    local pair = spec[i]
    if type(pair) ~= "table" or is_decl(pair) then
      error(format("S.object: field %d must be a pair { \"name\", decl }, got %s", i, describe(pair)), 2)
    end
    if type(pair[1]) ~= "string" then
      error(format("S.object: field %d must be a pair { \"name\", decl }: its name is %s, not a string", i,
        describe(pair[1])), 2)
    end
    if not is_decl(pair[2]) then
      error(format("S.object: field %q must be a pair { %q, decl }: its declaration is %s", pair[1], pair[1],
        pair[2] == nil and "missing" or describe(pair[2])), 2)
    end
    for k in pairs(pair) do
      if k ~= 1 and k ~= 2 then
        error(format("S.object: field %q has an extra entry (key %s); a field is { %q, decl }",
          pair[1], describe(k), pair[1]), 2)
      end
    end
    local name = pair[1]
    if names[name] then error(format("S.object: field %q is declared twice", name), 2) end
    names[name] = true
    fields.fields[i] = { name = name, decl = pair[2] }
  end
  return new_decl("object", fields)
end

-- optional(decl): required but nullable. optional(optional(x)) is optional(x).
function S.optional(d)
  if not is_decl(d) then
    error(format("S.optional: expected a declaration (S.string(), S.object{...}, ...), got %s", describe(d)), 2)
  end
  if d.kind == "optional" then return d end
  return new_decl("optional", { inner = d })
end

S.is_decl = is_decl

-- JSON Schema ---------------------------------------------------------------

local COPIED = {
  string = { "description", "minLength", "maxLength", "pattern" },
  number = { "description", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf" },
  boolean = { "description" },
  array = { "description", "minItems", "maxItems" },
  enum = { "description" },
  object = { "title", "description" },
}
COPIED.integer = COPIED.number

local to_json

local function build(d)
  local kind = d.kind
  if kind == "optional" then
    local s = build(d.inner)
    local t = s.type
    if type(t) == "string" then
      s.type = json.array{ t, "null" }
      if s.enum then
        -- the enum must admit null too, or the type list alone would not
        local values = json.array{}
        for i, v in ipairs(s.enum) do values[i] = v end
        values[#values + 1] = json.null
        s.enum = values
      end
      return s
    end
    return { anyOf = json.array{ s, { type = "null" } } }
  end
  local s = {}
  for _, option in ipairs(COPIED[kind]) do s[option] = d[option] end
  if kind == "array" then
    s.type = "array"
    s.items = build(d.item)
  elseif kind == "enum" then
    local types, seen = {}, {}
    for _, v in ipairs(d.values) do
      local t = enum_type(v)
      if t == "integer" then t = "number" end
      if not seen[t] then
        seen[t] = true
        types[#types + 1] = t
      end
    end
    s.type = #types == 1 and types[1] or json.array(types)
    s.enum = json.array{}
    for i, v in ipairs(d.values) do s.enum[i] = v end
  elseif kind == "object" then
    s.type = "object"
    s.required = json.array{}
    local props = {}
    for i, field in ipairs(d.fields) do
      props[field.name] = build(field.decl)
      s.required[i] = field.name
    end
    -- encoded in declaration order: the order the model writes the fields
    s.properties = json.object(props, s.required)
    s.additionalProperties = false
  else
    s.type = kind
  end
  return s
end

-- to_json(decl) -> a fresh JSON Schema table in strict form: every object has
-- additionalProperties = false and requires all of its properties, in
-- declaration order. Every JSON array in it is a json.array, so an empty one
-- still encodes as [].
function to_json(d)
  if not is_decl(d) then
    error(format("S.to_json: expected a declaration, got %s", describe(d)), 2)
  end
  return build(d)
end
S.to_json = to_json

-- validate(schema, value) -> true, or false and { { path, message }, ... }.
-- schema is a JSON Schema table or a declaration; a declaration is turned
-- into its JSON Schema once and that is kept for it (declarations are not
-- changed once built). Read as a JSON Schema, a declaration would have no
-- keyword owl.validate knows, and pass every value.
local converted = setmetatable({}, { __mode = "k" })
function S.validate(s, value)
  if is_decl(s) then
    local json_schema = converted[s]
    if json_schema == nil then
      json_schema = build(s)
      converted[s] = json_schema
    end
    s = json_schema
  end
  return validate.validate(s, value)
end

return S
