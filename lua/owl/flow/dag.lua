-- owl.flow.dag: the order subtasks with `depends_on` run in. A plan is a
-- model's answer, so its dependencies are checked like any other field: a
-- name that is no subtask, a repeated name, or a cycle makes the plan
-- invalid, with an error naming them, before any worker is paid for.
local errors = require("owl.errors")
local checkpoint = require("owl.task").checkpoint

local M = {}

local function quote(s) return "'" .. tostring(s) .. "'" end

local function invalid(message, fields)
  return nil, errors.new("invalid", message, fields)
end

-- Whether any subtask names a dependency: a plan without one runs as before
-- (names need not be unique then).
function M.has_dependencies(subtasks)
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then checkpoint() end
    local d = type(st) == "table" and st.depends_on
    if type(d) == "table" and #d > 0 then return true end
  end
  return false
end

-- dag.lookup(subtasks [, skip]) -> function(name) giving the index of the
-- latest subtask in subtasks with that name (skip: a set of subtask tables
-- left out), for resolve's `earlier`.
function M.lookup(subtasks, skip)
  local latest = {}
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then checkpoint() end
    if not (skip and skip[st]) then latest[st.name] = i end
  end
  return function(name) return latest[name] end
end

-- A cycle among the nodes Kahn's algorithm left over. Each of them still
-- waits for another of them, so following one such dependency at a time
-- must come back to a node already seen: the path from there is a cycle.
local function find_cycle(subtasks, deps, left)
  local start
  for i in pairs(left) do if not start or i < start then start = i end end
  local seen, path, i = {}, {}, start
  while not seen[i] do
    seen[i] = #path + 1
    path[#path + 1] = i
    local nxt
    for _, j in ipairs(deps[i]) do
      if left[j] then nxt = j; break end
    end
    i = nxt
  end
  local names = {}
  for k = seen[i], #path do names[#names + 1] = subtasks[path[k]].name end
  names[#names + 1] = subtasks[i].name
  return names
end

-- M.resolve(subtasks [, earlier]) -> order, deps, outside; or nil and an
-- `invalid` error. earlier(name) gives the index (in the run) of a subtask
-- of an earlier round with that name, or nil. deps[i] lists the indices (in
-- subtasks) subtask i waits for; outside[i] the earlier subtasks' run
-- indices it reads; order lists every index after all it depends on.
local NONE = setmetatable({}, { __newindex = function() error("owl.flow.dag: a resolved list is read-only", 2) end })

function M.resolve(subtasks, earlier)
  local n = #subtasks
  local index = {}
  local used = M.has_dependencies(subtasks)
  if not used then
    -- the usual plan: every subtask runs at once, and a thousand of them
    -- need no lists of their own (a depends_on that is no array still
    -- gets its error below)
    local order, deps = {}, {}
    for i = 1, n do
      if i % 16 == 0 then checkpoint() end
      local st = subtasks[i]
      if type(st) == "table" and st.depends_on ~= nil and type(st.depends_on) ~= "table" then
        order = nil
        break
      end
      order[i], deps[i] = i, NONE
    end
    if order then return order, deps, deps end
  end
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then checkpoint() end -- a long plan does not hold a host's frame
    if used and index[st.name] then
      return invalid("two subtasks are named " .. quote(st.name) .. " (" .. index[st.name] .. " and " .. i
        .. "); depends_on needs every name to be unique")
    end
    index[st.name] = index[st.name] or i
  end
  local deps, outside, dependents, waiting = {}, {}, {}, {}
  local unknown = {}
  for i = 1, n do deps[i], outside[i], dependents[i] = {}, {}, {} end
  for i, st in ipairs(subtasks) do
    if i % 16 == 0 then checkpoint() end
    local d = st.depends_on
    if d ~= nil and type(d) ~= "table" then
      return invalid("subtask " .. quote(st.name) .. ": depends_on must be an array of subtask names, got " .. type(d))
    end
    local once = {}
    for k, name in ipairs(d or {}) do
      if type(name) ~= "string" then
        return invalid("subtask " .. quote(st.name) .. ": depends_on[" .. k .. "] is a " .. type(name) .. ", not a name")
      end
      if not once[name] then
        once[name] = true
        local j = index[name]
        local e = not j and earlier and earlier(name)
        if j then
          deps[i][#deps[i] + 1] = j
          dependents[j][#dependents[j] + 1] = i
        elseif e then
          outside[i][#outside[i] + 1] = e
        else
          unknown[#unknown + 1] = quote(st.name) .. " depends on " .. quote(name)
        end
      end
    end
    waiting[i] = #deps[i]
  end
  if #unknown > 0 then
    local shown = {}
    for k = 1, math.min(#unknown, 5) do shown[k] = unknown[k] end
    if #unknown > 5 then shown[#shown + 1] = "and " .. (#unknown - 5) .. " more" end
    return invalid("the plan names dependencies that are not subtasks: " .. table.concat(shown, "; "))
  end
  -- Kahn's algorithm: a subtask is ready once all it waits for are placed.
  local order, head = {}, 1
  for i = 1, n do if waiting[i] == 0 then order[#order + 1] = i end end
  while head <= #order do
    local j = order[head]
    head = head + 1
    for _, i in ipairs(dependents[j]) do
      waiting[i] = waiting[i] - 1
      if waiting[i] == 0 then order[#order + 1] = i end
    end
  end
  if #order < n then
    local left = {}
    for i = 1, n do if waiting[i] > 0 then left[i] = true end end
    local cycle = find_cycle(subtasks, deps, left)
    return invalid("the plan's dependencies form a cycle: " .. table.concat(cycle, " -> "), { cycle = cycle })
  end
  return order, deps, outside
end

return M
