-- spec/support/count_output.lua: a busted output handler. It prints each
-- failure and error in full as it happens, a dot per passing test, and at
-- the end one line that spec/run.sh reads:
--   OWL-COUNT passed=N failed=N errors=N pending=N
-- Errors (a spec that raised outside an assertion) count as failures there.
return function()
  local busted = require("busted")
  local handler = require("busted.outputHandlers.base")()
  local out = io.stdout

  local function describe(element)
    return handler.getFullName(element)
  end

  local function report(kind, element, message, trace)
    out:write("\n", kind, ": ", describe(element), "\n")
    if trace and trace.short_src then
      out:write("  at ", trace.short_src, ":", tostring(trace.currentline), "\n")
    end
    out:write("  ", tostring(message):gsub("\n", "\n  "), "\n")
    out:flush()
  end

  handler.testEnd = function(_element, _parent, status)
    if status == "success" then
      out:write(".")
      out:flush()
    end
    return nil, true
  end

  handler.failureTest = function(element, _parent, message, trace)
    report("FAIL", element, message, trace)
    return nil, true
  end

  handler.errorTest = function(element, _parent, message, trace)
    report("ERROR", element, message, trace)
    return nil, true
  end

  handler.error = function(element, _parent, message, trace)
    if element.descriptor ~= "it" then report("ERROR", element, message, trace) end
    return nil, true
  end

  handler.suiteEnd = function()
    local pending = {}
    for _, p in ipairs(handler.pendings) do pending[#pending + 1] = describe(p.element) end
    for _, name in ipairs(pending) do out:write("\nPENDING: ", name) end
    out:write(string.format("\nOWL-COUNT passed=%d failed=%d errors=%d pending=%d\n",
      handler.successesCount, handler.failuresCount, handler.errorsCount, handler.pendingsCount))
    out:flush()
    return nil, true
  end

  -- OWL_SPEC_TIMES=FILE: each spec file's wall time is appended there
  -- ("seconds name"), to find what makes the suite slow.
  local times_path = os.getenv("OWL_SPEC_TIMES")
  if times_path and times_path ~= "" then
    local clock = require("socket").gettime
    local started = {}
    busted.subscribe({ "file", "start" }, function(file)
      started[file.name] = clock()
      return nil, true
    end)
    busted.subscribe({ "file", "end" }, function(file)
      local f = io.open(times_path, "a")
      if f and started[file.name] then
        f:write(string.format("%.1f %s\n", clock() - started[file.name], file.name))
        f:close()
      end
      return nil, true
    end)
  end

  busted.subscribe({ "test", "end" }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ "failure", "it" }, handler.failureTest)
  busted.subscribe({ "error", "it" }, handler.errorTest)
  busted.subscribe({ "failure" }, handler.error)
  busted.subscribe({ "error" }, handler.error)
  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  return handler
end
