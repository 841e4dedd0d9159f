-- owl.tool: a tool a model may call. A declaration is checked once, when it
-- is made, so a bad one fails at the line that wrote it and never as a 400
-- from the server halfway through a run. The tool holds its arguments'
-- JSON Schema (from an owl.schema declaration or given as it is), which
-- both validates a call's arguments (owl.validate) and goes on the wire.
--
--   local weather = owl.tool{
--     name = "weather",
--     description = "The weather in a city today.",
--     parameters = owl.schema.object{ { "city", owl.schema.string() } },
--     handler = function(args, ctx) return "sunny in " .. args.city end,
--   }
local schema = require("owl.schema")
local validate = require("owl.validate")

local M = {}

local Tool = {}
Tool.__index = Tool
Tool.__name = "owl.tool"

function Tool:__tostring()
  return "owl.tool (" .. self.name .. ")"
end

local FIELDS = { name = true, description = true, parameters = true, handler = true }

-- The schema of a tool that takes no arguments.
local function no_arguments()
  return { type = "object", properties = {} }
end

-- A JSON Schema (or declaration) for a tool's arguments: both APIs want an
-- object at the top, since the arguments are a JSON object.
local function parameters_schema(name, p)
  if p == nil then return no_arguments() end
  if schema.is_decl(p) then
    if p.kind ~= "object" then
      error("owl.tool '" .. name .. "': parameters must be an owl.schema.object declaration, got a "
        .. p.kind .. " declaration", 3)
    end
    return schema.to_json(p)
  end
  if type(p) ~= "table" then
    error("owl.tool '" .. name .. "': parameters must be an owl.schema declaration or a JSON Schema table, got "
      .. type(p), 3)
  end
  if p.type ~= "object" then
    error("owl.tool '" .. name .. "': parameters must be a JSON Schema with type \"object\", got type "
      .. (p.type == nil and "none" or string.format("%q", tostring(p.type))), 3)
  end
  -- a schema the validator cannot read is found now, not at the first call
  local ok, why = pcall(validate.validate, p, {})
  if not ok then error("owl.tool '" .. name .. "': parameters is not a usable JSON Schema: " .. tostring(why), 3) end
  return p
end

-- owl.tool{ name, description, parameters, handler } -> a tool. Raises
-- naming the field on misuse: a name that is not 1 to 64 letters, digits,
-- '_' or '-' (what both APIs accept), a description that is not a
-- non-empty string, parameters that are not an object schema, a handler
-- that is not a function, or a field it does not know.
function M.new(decl)
  if type(decl) ~= "table" then error("owl.tool: expected a table { name, description, parameters, handler }, got "
    .. type(decl), 2) end
  for k in pairs(decl) do
    if not FIELDS[k] then error("owl.tool: unknown field '" .. tostring(k) .. "'", 2) end
  end
  local name = decl.name
  if type(name) ~= "string" or not name:find("^[%w_%-]+$") or #name > 64 then
    error("owl.tool: name must be 1 to 64 letters, digits, '_' or '-', got " .. string.format("%q", tostring(name)), 2)
  end
  if type(decl.description) ~= "string" or decl.description:find("^%s*$") then
    error("owl.tool '" .. name .. "': description must be a non-empty string (the model reads it to choose the tool)",
      2)
  end
  if type(decl.handler) ~= "function" then
    error("owl.tool '" .. name .. "': handler must be a function(args, ctx), got " .. type(decl.handler), 2)
  end
  return setmetatable({
    name = name,
    description = decl.description,
    parameters = parameters_schema(name, decl.parameters),
    handler = decl.handler,
  }, Tool)
end

function M.is_tool(v)
  return getmetatable(v) == Tool
end

-- M.any(list) -> whether any entry of list is an owl.tool (false for a
-- value that is not a table). Each provider writes a request's tools in its
-- own shape only when this holds: a list of the API's own entries goes on
-- the wire as it is, the same table.
function M.any(list)
  if type(list) ~= "table" then return false end
  for _, t in ipairs(list) do
    if M.is_tool(t) then return true end
  end
  return false
end

-- tool:check(args) -> true, or false and "path: message; ..." naming every
-- way the arguments fail the tool's schema.
function Tool:check(args)
  local ok, errs = validate.validate(self.parameters, args)
  if ok then return true end
  local parts = {}
  for i, e in ipairs(errs) do
    parts[i] = (e.path == "" and "(the arguments)" or e.path) .. ": " .. e.message
  end
  return false, table.concat(parts, "; ")
end

-- M.list(tools, who, level) -> name -> tool for a list of tools; raises on
-- a value that is not an owl.tool or two tools of one name (the model could
-- not tell them apart).
function M.list(tools, who, level)
  if type(tools) ~= "table" then error(who .. ": tools must be a list of owl.tool, got " .. type(tools), level + 1) end
  local by_name = {}
  for i, t in ipairs(tools) do
    if not M.is_tool(t) then
      error(who .. ": tools[" .. i .. "] is not an owl.tool (make it with owl.tool{...}), got " .. type(t), level + 1)
    end
    if by_name[t.name] then error(who .. ": two tools are named '" .. t.name .. "'", level + 1) end
    by_name[t.name] = t
  end
  for k in pairs(tools) do
    if type(k) ~= "number" or k < 1 or k > #tools or k ~= math.floor(k) then
      error(who .. ": tools must be a list (keys 1..n), it has key " .. tostring(k), level + 1)
    end
  end
  return by_name
end

return M
