-- spec/schema_spec.lua: owl.schema declarations and their strict JSON Schema,
-- owl.validate's errors (paths, messages, code-point lengths, refs, patterns)
-- and the core.regex binding underneath "pattern".
local json = require("owl.json")
local S = require("owl.schema")
local core = require("owl.core")

local validate = S.validate

-- The errors of a failed validation, as "path: message" lines, sorted so a
-- spec does not depend on the order pairs() visits properties in.
local function failures(schema, value)
  local ok, errors = validate(schema, value)
  assert.is_false(ok, "expected the value to be invalid")
  local lines = {}
  for i, e in ipairs(errors) do lines[i] = e.path .. ": " .. e.message end
  table.sort(lines)
  return lines
end

local function valid(schema, value)
  local ok, errors = validate(schema, value)
  assert.is_true(ok, errors and errors[1] and (errors[1].path .. ": " .. errors[1].message) or "")
  assert.is_nil(errors)
end

describe("owl.schema declarations", function()
  it("turn a nested object into a strict schema, fields in declaration order", function()
    local Subtask = S.object{
      { "name", S.string{ description = "short identifier", minLength = 1, maxLength = 40, pattern = "^[a-z_]+$" } },
      { "description", S.string() },
      { "priority", S.integer{ minimum = 1, maximum = 5 } },
      description = "one unit of work",
    }
    local Plan = S.object{
      { "objective", S.string() },
      { "subtasks", S.array(Subtask, { minItems = 1, maxItems = 20 }) },
      { "ready", S.boolean{ description = "can start now" } },
      { "budget", S.number{ exclusiveMinimum = 0, multipleOf = 0.5 } },
      title = "Plan",
    }
    local expected = {
      type = "object",
      title = "Plan",
      properties = {
        objective = { type = "string" },
        subtasks = {
          type = "array",
          minItems = 1,
          maxItems = 20,
          items = {
            type = "object",
            description = "one unit of work",
            properties = {
              name = { type = "string", description = "short identifier", minLength = 1, maxLength = 40,
                pattern = "^[a-z_]+$" },
              description = { type = "string" },
              priority = { type = "integer", minimum = 1, maximum = 5 },
            },
            required = { "name", "description", "priority" },
            additionalProperties = false,
          },
        },
        ready = { type = "boolean", description = "can start now" },
        budget = { type = "number", exclusiveMinimum = 0, multipleOf = 0.5 },
      },
      required = { "objective", "subtasks", "ready", "budget" },
      additionalProperties = false,
    }
    local schema = S.to_json(Plan)
    assert.same(expected, schema)
    assert.is_true(json.is_array(schema.required))
    assert.is_true(json.is_array(schema.properties.subtasks.items.required))
  end)

  it("keep the order of fields whatever their names", function()
    local names = { "zeta", "alpha", "mid", "beta", "omega", "a" }
    local pairs_list = {}
    for i, name in ipairs(names) do pairs_list[i] = { name, S.string() } end
    local schema = S.to_json(S.object(pairs_list))
    assert.same(names, schema.required)
    -- and on the wire: a structured-output model writes them in this order
    local text = json.encode(schema.properties)
    local last = 0
    for _, name in ipairs(names) do
      local at = text:find('"' .. name .. '":', 1, true)
      assert.truthy(at and at > last, name .. " out of order in " .. text)
      last = at
    end
  end)

  it("write an empty object with required [] and properties {}", function()
    local schema = S.to_json(S.object{})
    assert.same({ type = "object", properties = {}, required = {}, additionalProperties = false }, schema)
    local text = json.encode(schema)
    assert.truthy(text:find('"required":[]', 1, true), text)
    assert.truthy(text:find('"properties":{}', 1, true), text)
    assert.truthy(text:find('"additionalProperties":false', 1, true), text)
  end)

  it("write an enum with its type", function()
    local schema = S.to_json(S.enum{ "low", "high", description = "urgency" })
    assert.same({ type = "string", enum = { "low", "high" }, description = "urgency" }, schema)
    assert.is_true(json.is_array(schema.enum))
    local mixed = S.to_json(S.enum{ 1, "one", true })
    assert.same({ "number", "string", "boolean" }, mixed.type)
    assert.is_true(json.is_array(mixed.type))
  end)

  it("make optional fields required but nullable", function()
    local schema = S.to_json(S.object{
      { "note", S.optional(S.string{ maxLength = 10 }) },
      { "level", S.optional(S.enum{ "a", "b" }) },
      { "tags", S.optional(S.array(S.string())) },
    })
    assert.same({ "note", "level", "tags" }, schema.required)
    local note = schema.properties.note
    assert.same({ "string", "null" }, note.type)
    assert.is_true(json.is_array(note.type))
    assert.equal(10, note.maxLength)
    local level = schema.properties.level
    assert.same({ "string", "null" }, level.type)
    assert.equal(3, #level.enum)
    assert.equal(json.null, level.enum[3])
    assert.same({ "array", "null" }, schema.properties.tags.type)

    valid(schema, { note = json.null, level = json.null, tags = json.null })
    valid(schema, { note = "short", level = "a", tags = { "x" } })
    assert.same({ "/level: expected one of \"a\", \"b\", null, got \"c\"" },
      failures(schema, { note = json.null, level = "c", tags = json.null }))
    -- optional is not "may be absent": strict mode wants every key
    assert.same({ ": missing required property \"note\"" },
      failures(schema, { level = json.null, tags = json.null }))
  end)

  it("treat optional(optional(x)) as optional(x)", function()
    local once = S.optional(S.string())
    assert.equal(once, S.optional(once))
  end)

  it("return fresh tables from every to_json call", function()
    local decl = S.object{ { "a", S.string() } }
    local one, two = S.to_json(decl), S.to_json(decl)
    assert.are_not.equal(one, two)
    one.properties.a.type = "number"
    assert.equal("string", two.properties.a.type)
  end)

  it("tell declarations from other values", function()
    assert.is_true(S.is_decl(S.string()))
    assert.is_true(S.is_decl(S.optional(S.boolean())))
    assert.is_false(S.is_decl({ type = "string" }))
    assert.is_false(S.is_decl("string"))
    assert.is_false(S.is_decl(nil))
  end)

  describe("raise on misuse", function()
    local function raises(fn, text)
      local ok, err = pcall(fn)
      assert.is_false(ok, "expected an error containing: " .. text)
      assert.truthy(tostring(err):find(text, 1, true), "got: " .. tostring(err))
    end

    it("a keyed field, explaining the pair form", function()
      raises(function() S.object{ name = S.string() } end,
        'S.object: field "name" is given as a key; write fields as ordered pairs, S.object{ { "name", decl }, ... }')
    end)

    it("unknown options, naming them", function()
      raises(function() S.object{ { "a", S.string() }, strict = true } end, 'S.object: unknown option "strict"')
      raises(function() S.string{ max_length = 3 } end, 'S.string: unknown option "max_length"')
      raises(function() S.integer{ min = 1 } end, 'S.integer: unknown option "min"')
      raises(function() S.array(S.string(), { length = 3 }) end, 'S.array: unknown option "length"')
      raises(function() S.enum{ "a", label = "x" } end, 'S.enum: unknown option "label"')
      raises(function() S.boolean{ default = true } end, 'S.boolean: unknown option "default"')
    end)

    it("wrong option types, naming the option", function()
      raises(function() S.string{ minLength = "3" } end, 'S.string: option "minLength" must be a non-negative integer, got "3"')
      raises(function() S.string{ maxLength = 1.5 } end, 'S.string: option "maxLength" must be a non-negative integer, got 1.5')
      raises(function() S.string{ description = 7 } end, 'S.string: option "description" must be a string, got 7')
      raises(function() S.number{ minimum = "0" } end, 'S.number: option "minimum" must be a finite number, got "0"')
      raises(function() S.number{ multipleOf = 0 } end, 'S.number: option "multipleOf" must be a number greater than 0, got 0')
      raises(function() S.array(S.string(), { minItems = -1 }) end,
        'S.array: option "minItems" must be a non-negative integer, got -1')
      raises(function() S.object{ title = false } end, 'S.object: option "title" must be a string, got false')
      raises(function() S.string("a description") end, 'S.string: options must be a table, got "a description"')
    end)

    it("a pattern that does not compile", function()
      raises(function() S.string{ pattern = "a(b" } end, 'S.string: option "pattern" must be a valid regular expression')
    end)

    it("contradictory bounds", function()
      raises(function() S.string{ minLength = 5, maxLength = 2 } end, "S.string: minLength (5) is greater than maxLength (2)")
      raises(function() S.array(S.string(), { minItems = 3, maxItems = 1 }) end,
        "S.array: minItems (3) is greater than maxItems (1)")
    end)

    it("malformed fields", function()
      raises(function() S.object{ "name", S.string() } end, 'S.object: field 1 must be a pair { "name", decl }, got "name"')
      raises(function() S.object{ { "a" } } end, 'S.object: field "a" must be a pair { "a", decl }: its declaration is missing')
      raises(function() S.object{ { 1, S.string() } } end, "S.object: field 1 must be a pair { \"name\", decl }: its name is 1")
      raises(function() S.object{ { "a", S.string(), description = "x" } } end,
        'S.object: field "a" has an extra entry (key "description")')
      raises(function() S.object{ { "a", S.string() }, { "a", S.number() } } end, 'S.object: field "a" is declared twice')
      raises(function() S.object{ { "a", { type = "string" } } } end,
        'S.object: field "a" must be a pair { "a", decl }: its declaration is table')
    end)

    it("bad arguments to array, enum, optional and to_json", function()
      raises(function() S.array({ type = "string" }) end, "S.array: the item must be a declaration")
      raises(function() S.enum{} end, "S.enum: expected at least one value")
      raises(function() S.enum{ "a", "a" } end, 'S.enum: value "a" is listed twice')
      raises(function() S.enum{ "a", {} } end, "S.enum: value 2 must be a string, a finite number or a boolean, got table")
      raises(function() S.optional({ type = "string" }) end, "S.optional: expected a declaration")
      raises(function() S.to_json({ type = "string" }) end, "S.to_json: expected a declaration, got table")
    end)
  end)
end)

describe("owl.validate", function()
  local Plan = S.to_json(S.object{
    { "objective", S.string{ minLength = 1 } },
    { "subtasks", S.array(S.object{
      { "name", S.string{ pattern = "^[a-z][a-z0-9_]*$" } },
      { "description", S.string{ maxLength = 200 } },
      { "depends_on", S.optional(S.array(S.string())) },
    }, { minItems = 1 }) },
  })

  it("accepts a decoded plan", function()
    local value = assert(json.decode([[{"objective":"ship","subtasks":[
      {"name":"write_code","description":"do it","depends_on":null},
      {"name":"test","description":"check it","depends_on":["write_code"]}]}]]))
    valid(Plan, value)
  end)

  -- Regression: S.validate(declaration, value) used to read the declaration
  -- as a JSON Schema with no keyword it knew, and passed every value.
  it("takes a declaration as well as its JSON Schema, with the same verdicts", function()
    local decl = S.object{ { "name", S.string{ minLength = 1 } } }
    assert.is_true((S.validate(decl, { name = "x" })))
    local ok, problems = S.validate(decl, { name = 5 })
    assert.is_false(ok)
    assert.equal("/name", problems[1].path)
    assert.is_false((S.validate(decl, { name = "" })))
    assert.is_false((S.validate(decl, { name = "x", extra = 1 })))
  end)

  it("collects every error with its JSON pointer", function()
    local value = assert(json.decode([[{"objective":"","subtasks":[
      {"name":"ok","description":"fine","depends_on":null},
      {"name":"Bad Name","description":7,"depends_on":[1],"extra":true},
      {"description":"no name","depends_on":null}],"note":"x"}]]))
    assert.same({ -- sorted as strings: "/" sorts before ":"
      "/objective: expected at least 1 character, got 0",
      "/subtasks/1/depends_on/0: expected string, got number",
      "/subtasks/1/description: expected string, got number",
      "/subtasks/1/name: expected a string matching \"^[a-z][a-z0-9_]*$\", got \"Bad Name\"",
      "/subtasks/1: unexpected property \"extra\"",
      "/subtasks/2: missing required property \"name\"",
      ": unexpected property \"note\"",
    }, failures(Plan, value))
  end)

  it("reports the root as the empty pointer", function()
    local ok, errors = validate({ type = "string" }, 5)
    assert.is_false(ok)
    assert.same({ { path = "", message = "expected string, got number" } }, errors)
  end)

  it("escapes ~ and / in pointer tokens", function()
    assert.same({ "/a~1b~0c: expected string, got boolean" },
      failures({ properties = { ["a/b~c"] = { type = "string" } } }, { ["a/b~c"] = true }))
  end)

  it("names JSON types in type errors", function()
    assert.same({ ": expected object, got array" }, failures({ type = "object" }, json.array{}))
    assert.same({ ": expected array, got object" }, failures({ type = "array" }, {}))
    assert.same({ ": expected string or null, got boolean" }, failures({ type = { "string", "null" } }, false))
    assert.same({ ": expected integer, got number" }, failures({ type = "integer" }, 1.5))
    assert.same({ ": expected boolean, got null" }, failures({ type = "boolean" }, json.null))
  end)

  it("counts 1.0 as an integer and compares numbers by value", function()
    valid({ type = "integer" }, 1.0)
    valid({ type = "integer" }, json.decode("1.0"))
    valid({ const = 1 }, 1.0)
    valid({ enum = { 2.0 } }, 2)
    failures({ const = 1 }, true)
    failures({ const = true }, 1)
  end)

  it("keeps arrays and objects apart in const and enum", function()
    failures({ const = json.array{} }, {})
    failures({ const = {} }, json.array{})
    valid({ const = { a = { 1, 2 } } }, json.decode('{"a":[1,2]}'))
    failures({ const = { a = { 1, 2 } } }, json.decode('{"a":{"1":1,"2":2}}'))
    valid({ enum = { json.array{}, {} } }, {})
  end)

  it("classifies hand-built tables as the encoder does", function()
    local cases = {
      { {}, "object" },
      { json.array{}, "array" },
      { { 1, 2, 3 }, "array" },
      { { "x" }, "array" },
      { { a = 1 }, "object" },
      { { [2] = "b" }, "object" },
      { { [1] = "a", [2] = "b" }, "array" },
      { { [1] = "a", name = "b" }, "object" },
    }
    for _, case in ipairs(cases) do
      local value, expected = case[1], case[2]
      if expected == "array" then
        valid({ type = "array" }, value)
      else
        valid({ type = "object" }, value)
      end
      -- the encoder writes arrays as [...] and objects as {...}
      local ok, text = pcall(json.encode, value)
      if ok then
        assert.equal(expected == "array" and "[" or "{", text:sub(1, 1), "encoded as " .. text)
      end
    end
  end)

  it("counts string lengths in code points, not bytes", function()
    local schema = { type = "string", minLength = 2, maxLength = 3 }
    valid(schema, "日本")            -- 6 bytes, 2 code points
    valid(schema, "héé")             -- 5 bytes, 3 code points
    valid(schema, "😀😀😀")           -- 12 bytes, 3 code points
    assert.same({ ": expected at most 3 characters, got 4" }, failures(schema, "ñañá"))
    assert.same({ ": expected at least 2 characters, got 1" }, failures(schema, "😀"))
  end)

  it("checks numeric bounds and multiples", function()
    local schema = { minimum = 1, exclusiveMaximum = 10, multipleOf = 0.5 }
    valid(schema, 1)
    valid(schema, 9.5)
    assert.same({ ": expected a number >= 1, got 0.5" }, failures(schema, 0.5))
    assert.same({ ": expected a number < 10, got 10" }, failures(schema, 10))
    assert.same({ ": expected a multiple of 0.5, got 2.25" }, failures(schema, 2.25))
    valid({ multipleOf = 0.0001 }, 0.0075)
    failures({ multipleOf = 0.0001 }, 0.00751)
  end)

  it("checks array size, uniqueness, prefixItems, items and contains", function()
    assert.same({ ": expected unique items, but items 0 and 2 are equal" },
      failures({ uniqueItems = true }, { 1, "1", 1.0 }))
    -- 1 and 1.0 are the same JSON number, deep inside containers too
    assert.same({ ": expected unique items, but items 0 and 2 are equal" },
      failures({ uniqueItems = true }, json.decode('[{"a":[1]},{"a":[2]},{"a":[1.0]}]')))
    valid({ uniqueItems = true }, json.decode('[{"a":1},[1],1,true,"1",null]'))
    local tuple = { prefixItems = { { type = "string" }, { type = "integer" } }, items = false }
    valid(tuple, { "a", 1 })
    assert.same({ "/1: expected integer, got string" }, failures(tuple, { "a", "b" }))
    assert.same({ ": expected at most 2 items, got 3" }, failures(tuple, { "a", 1, 2 }))
    local contains = { contains = { type = "string" }, minContains = 2, maxContains = 3 }
    valid(contains, { "a", 1, "b" })
    assert.same({ ": expected at least 2 items matching \"contains\", got 1" }, failures(contains, { "a", 1 }))
    assert.same({ ": expected at most 3 items matching \"contains\", got 4" }, failures(contains, { "a", "b", "c", "d" }))
  end)

  it("checks object size, dependentRequired, patternProperties and propertyNames", function()
    assert.same({ ": expected at most 1 property, got 2" }, failures({ maxProperties = 1 }, { a = 1, b = 2 }))
    assert.same({ ": missing property \"b\", required when \"a\" is present" },
      failures({ dependentRequired = { a = { "b" } } }, { a = 1 }))
    local schema = { patternProperties = { ["^x_"] = { type = "number" } }, additionalProperties = { type = "string" } }
    valid(schema, { x_a = 1, other = "s" })
    assert.same({ "/other: expected string, got number", "/x_b: expected number, got string" },
      failures(schema, { x_b = "no", other = 2 }))
    assert.same({ ": property name \"toolong\": expected at most 3 characters, got 7" },
      failures({ propertyNames = { maxLength = 3 } }, { ok = 1, toolong = 2 }))
  end)

  it("applies allOf, not, if/then/else and dependentSchemas with their errors", function()
    local both = { allOf = { { type = "integer" }, { minimum = 3 } } }
    valid(both, 3)
    assert.same({ ": expected a number >= 3, got 2.5", ": expected integer, got number" }, failures(both, 2.5))
    assert.same({ ": expected a value not matching the schema in \"not\"" }, failures({ ["not"] = { type = "string" } }, "x"))
    local cond = { ["if"] = { type = "string" }, ["then"] = { minLength = 2 }, ["else"] = { minimum = 0 } }
    valid(cond, "ab")
    valid(cond, 5)
    assert.same({ ": expected at least 2 characters, got 1" }, failures(cond, "a"))
    assert.same({ ": expected a number >= 0, got -1" }, failures(cond, -1))
    assert.same({ ": missing required property \"b\"" },
      failures({ dependentSchemas = { a = { required = { "b" } } } }, { a = 1 }))
  end)

  it("gives anyOf and oneOf one summarising error", function()
    local any = { anyOf = { { type = "integer" }, { type = "string", minLength = 5 } } }
    local lines = failures(any, "abc")
    assert.equal(1, #lines)
    assert.truthy(lines[1]:find("expected a value matching at least one of the 2 schemas in anyOf", 1, true), lines[1])
    local lines2 = failures({ properties = { a = any } }, { a = true })
    assert.equal(1, #lines2)
    assert.equal("/a: ", lines2[1]:sub(1, 4))
    local one = { oneOf = { { type = "integer" }, { minimum = 0 } } }
    valid(one, -1)
    valid(one, 0.5)
    assert.same({ ": expected a value matching exactly one schema in oneOf, but schemas 0 and 1 both match" },
      failures(one, 3))
    local none = failures(one, -0.5)
    assert.equal(1, #none)
    assert.truthy(none[1]:find("exactly one of the 2 schemas in oneOf", 1, true), none[1])
  end)

  it("treats boolean schemas as always and never", function()
    valid(true, { anything = 1 })
    assert.same({ ": no value is allowed here (the schema is false)" }, failures(false, 1))
    assert.same({ "/b: no value is allowed here (the schema is false)" },
      failures({ properties = { a = true, b = false } }, { a = 1, b = 2 }))
  end)

  it("reports an invalid pattern by naming it, not by raising", function()
    assert.same({ ": invalid pattern \"a(b\": offset 3: missing closing parenthesis" },
      failures({ pattern = "a(b" }, "ab"))
    local lines = failures({ patternProperties = { ["[z-a]"] = true } }, { k = 1 })
    assert.equal(1, #lines)
    assert.truthy(lines[1]:find('invalid pattern "[z-a]" in patternProperties', 1, true), lines[1])
  end)

  it("reports a string that is not UTF-8 when a pattern must match it", function()
    local lines = failures({ pattern = "a" }, "a\255")
    assert.equal(1, #lines)
    assert.truthy(lines[1]:find('cannot match pattern "a": subject offset 1: UTF-8 error', 1, true), lines[1])
  end)

  describe("$ref", function()
    it("reports an unresolvable ref by naming it, not by raising", function()
      assert.same({ "/a: cannot resolve $ref \"#/$defs/missing\" within the schema" },
        failures({ properties = { a = { ["$ref"] = "#/$defs/missing" } } }, { a = 1 }))
      assert.same({ ": cannot resolve $ref \"http://example.com/other.json\" within the schema" },
        failures({ ["$ref"] = "http://example.com/other.json" }, 1))
      assert.same({ ": cannot resolve $ref \"#nowhere\" within the schema" }, failures({ ["$ref"] = "#nowhere" }, 1))
    end)

    it("follows pointers with ~0, ~1 and percent-escapes", function()
      local schema = {
        ["$defs"] = { ["a/b"] = { type = "integer" }, ["c~d"] = { type = "string" }, ["e f%"] = { type = "boolean" } },
        properties = {
          x = { ["$ref"] = "#/$defs/a~1b" },
          y = { ["$ref"] = "#/$defs/c~0d" },
          z = { ["$ref"] = "#/$defs/e%20f%25" },
        },
      }
      valid(schema, { x = 1, y = "s", z = true })
      assert.same({ "/x: expected integer, got string", "/y: expected string, got number", "/z: expected boolean, got number" },
        failures(schema, { x = "s", y = 1, z = 0 }))
    end)

    it("resolves anchors and relative refs against $id", function()
      local schema = {
        ["$id"] = "https://example.com/schemas/root.json",
        ["$defs"] = {
          name = { ["$anchor"] = "name", type = "string" },
          item = { ["$id"] = "items/item.json", type = "object", properties = { n = { ["$ref"] = "../root.json#name" } } },
        },
        properties = {
          first = { ["$ref"] = "#name" },
          item = { ["$ref"] = "items/item.json" },
          abs = { ["$ref"] = "https://example.com/schemas/items/item.json" },
        },
      }
      valid(schema, { first = "a", item = { n = "b" }, abs = { n = "c" } })
      assert.same({ "/abs/n: expected string, got number", "/first: expected string, got number",
        "/item/n: expected string, got number" }, failures(schema, { first = 1, item = { n = 2 }, abs = { n = 3 } }))
    end)

    it("validates recursive data through a recursive schema", function()
      local tree = {
        ["$defs"] = { node = { type = "object", properties = {
          value = { type = "number" }, children = { type = "array", items = { ["$ref"] = "#/$defs/node" } } },
          required = { "value" } } },
        ["$ref"] = "#/$defs/node",
      }
      valid(tree, { value = 1, children = { { value = 2, children = { { value = 3 } } } } })
      assert.same({ "/children/0/children/0/value: expected number, got string" },
        failures(tree, { value = 1, children = { { value = 2, children = { { value = "x" } } } } }))
    end)

    it("stops a ref that loops without reaching a value", function()
      local lines = failures({ ["$defs"] = { a = { ["$ref"] = "#/$defs/b" }, b = { ["$ref"] = "#/$defs/a" } },
        ["$ref"] = "#/$defs/a" }, 1)
      assert.equal(1, #lines)
      assert.truthy(lines[1]:find("loops back to itself", 1, true), lines[1])
    end)
  end)

  it("validates a plan of 1000 subtasks", function()
    local subtasks = json.array{}
    for i = 1, 1000 do
      subtasks[i] = { name = "task_" .. i, description = "subtask number " .. i, depends_on = json.null }
    end
    valid(Plan, { objective = "big", subtasks = subtasks })
    subtasks[500].name = "Task 500"
    assert.same({ "/subtasks/499/name: expected a string matching \"^[a-z][a-z0-9_]*$\", got \"Task 500\"" },
      failures(Plan, { objective = "big", subtasks = subtasks }))
  end)

  it("raises when the schema is not a schema", function()
    assert.has_error(function() validate("string", 1) end,
      "owl.validate: the schema must be a table or a boolean, got string")
  end)
end)

describe("core.regex", function()
  it("compiles, tests unanchored, and closes idempotently", function()
    local re = assert(core.regex("b+"))
    assert.is_true(re:test("abbc"))
    assert.is_false(re:test("ac"))
    re:close()
    re:close()
    assert.has_error(function() re:test("b") end, "owl.regex: regex is closed")
  end)

  it("returns nil and a message naming the offset and PCRE2's reason", function()
    local re, message = core.regex("ab(c")
    assert.is_nil(re)
    assert.equal("offset 4: missing closing parenthesis", message)
    re, message = core.regex("[a")
    assert.is_nil(re)
    assert.truthy(message:find("^offset 2: missing terminating %] for character class"), message)
  end)

  it("reads \\u0041 and \\u{1F600} as ECMA-262 does", function()
    assert.is_true(core.regex("^\\u0041$"):test("A"))
    assert.is_true(core.regex("^\\u00e9$"):test("é"))
    assert.is_true(core.regex("^\\u{1F600}$"):test("😀"))
  end)

  it("does not let $ match before a final newline", function()
    local re = core.regex("^abc$")
    assert.is_true(re:test("abc"))
    assert.is_false(re:test("abc\n"))
  end)

  it("keeps \\d and \\w ASCII and . matching one code point", function()
    assert.is_false(core.regex("^\\d$"):test("٣")) -- ARABIC-INDIC DIGIT THREE
    assert.is_false(core.regex("^\\w$"):test("é"))
    assert.is_true(core.regex("^.$"):test("é"))
    assert.is_false(core.regex("^.$"):test("\r"))
  end)

  it("knows Unicode property names as ECMA-262 spells them", function()
    local letters = assert(core.regex("^\\p{Letter}+$"))
    assert.is_true(letters:test("héllo"))
    assert.is_false(letters:test("123"))
    assert.is_true(core.regex("^\\p{gc=Lu}$"):test("Å"))
    assert.is_true(core.regex("^\\P{Decimal_Number}$"):test("x"))
    -- an escaped backslash leaves the text literal
    assert.is_true(core.regex("^\\\\p{Letter}$"):test("\\p{Letter}"))
  end)

  it("returns nil and a message for a subject that is not UTF-8", function()
    local ok, message = core.regex("x"):test("ab\192")
    assert.is_nil(ok)
    assert.truthy(message:find("^subject offset 2: UTF%-8 error"), message)
  end)

  it("raises on a non-string pattern or subject", function()
    assert.has_error(function() core.regex({}) end)
    assert.has_error(function() core.regex("a"):test({}) end)
  end)
end)
