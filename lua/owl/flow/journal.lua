-- owl.flow.journal: resumable runs (owl.run's `journal`). Not written yet:
-- the option is refused until it is.
local M = {}
function M.check_options(opts, level)
  if opts.journal ~= nil then error("owl.run: option 'journal' is not available yet", level + 1) end
end
function M.attach() return nil end
return M
