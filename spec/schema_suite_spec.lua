-- spec/schema_suite_spec.lua: the official JSON Schema test suite (the
-- draft 2020-12 files kept in ../shared/fixtures) against owl.validate. Every
-- test of every case becomes its own `it`. A case is skipped only when it
-- needs something outside owl's scope: a remote $ref, the 2020-12
-- meta-schema, $dynamicRef, unevaluated* or format assertion. Skips are
-- printed with their reason (not as busted pendings), then the totals.
local lfs = require("lfs")
local json = require("owl.json")
local validate = require("owl.validate").validate

local DIR = "../shared/fixtures/json-schema-test-suite/draft2020-12"
local META = "https://json-schema.org/draft/2020-12/schema"

local read = require("support.files").read

-- Every $ref string and every absolute $id in a schema, and whether it uses
-- a keyword owl leaves out. Walks every table (data too): a case is skipped
-- on what its schema mentions, never on how owl happens to answer it.
local function survey(node, found)
  if type(node) ~= "table" then return found end
  for k, v in pairs(node) do
    if k == "$ref" and type(v) == "string" then found.refs[#found.refs + 1] = v end
    if k == "$id" and type(v) == "string" then found.ids[v:gsub("#$", "")] = true end
    if k == "$dynamicRef" or k == "$dynamicAnchor" then found.dynamic = true end
    if k == "unevaluatedProperties" or k == "unevaluatedItems" then found.unevaluated = true end
    if k == "format" then found.format = true end
    survey(v, found)
  end
  return found
end

-- Why a case cannot run here, or nil.
local function skip_reason(schema)
  local found = survey(schema, { refs = {}, ids = {} })
  for _, ref in ipairs(found.refs) do
    local resource = ref:gsub("#.*$", "")
    if resource == META then return "needs the 2020-12 meta-schema ($ref " .. ref .. ")" end
    -- an absolute ref that no $id of the document can name is remote (a
    -- relative $id names it when it is the ref's last path segments)
    if resource:match("^%a[%w+.-]*:") and not found.ids[resource] then
      local declared = false
      for id in pairs(found.ids) do
        if not id:match("^%a[%w+.-]*:") and resource:sub(-#id - 1) == "/" .. id:gsub("^%./", "") then
          declared = true
        end
      end
      if not declared then return "needs a remote $ref (" .. ref .. ")" end
    end
  end
  if found.dynamic then return "uses $dynamicRef / $dynamicAnchor" end
  if found.unevaluated then return "uses unevaluatedProperties / unevaluatedItems" end
  if found.format then return "asserts format" end
  return nil
end

local files = {}
for name in lfs.dir(DIR) do
  if name:match("%.json$") then files[#files + 1] = name end
end
table.sort(files)

local totals = { cases = 0, run = 0, skipped = 0 }

describe("JSON Schema test suite, draft 2020-12", function()
  it("finds the suite files", function()
    assert.is_true(#files >= 21, "expected the 21 suite files in " .. DIR)
  end)

  for _, name in ipairs(files) do
    local groups = assert(json.decode(read(DIR .. "/" .. name)))
    describe(name, function()
      for _, group in ipairs(groups) do
        local reason = skip_reason(group.schema)
        for _, test in ipairs(group.tests) do
          totals.cases = totals.cases + 1
          local title = group.description .. ": " .. test.description
          if reason then
            totals.skipped = totals.skipped + 1
            print(string.format("\nskipped %s / %s: %s", name, title, reason))
          else
            totals.run = totals.run + 1
            it(title, function()
              local ok, errors = validate(group.schema, test.data)
              if ok ~= test.valid then
                local detail = errors and errors[1] and (errors[1].path .. ": " .. errors[1].message) or ""
                error(string.format("expected %s, got %s %s", test.valid and "valid" or "invalid",
                  ok and "valid" or "invalid", detail), 0)
              end
              if ok then
                assert.is_nil(errors)
              else
                -- a failure always says why
                assert.is_true(#errors >= 1)
                for _, e in ipairs(errors) do
                  assert.is_string(e.path)
                  assert.is_string(e.message)
                end
              end
            end)
          end
        end
      end
    end)
  end

  teardown(function()
    print(string.format("\njson-schema-test-suite draft2020-12: %d cases, %d run, %d skipped",
      totals.cases, totals.run, totals.skipped))
  end)
end)
