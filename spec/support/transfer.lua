-- spec/support/transfer.lua: a stand-in for a finished owl.core transfer,
-- as a provider's read takes one, for the specs that hand the readers
-- answers made by hand, recorded or mutated.
--
--   local transfer = require("support.transfer")
--   openai.read(transfer.finished(429, { ["Retry-After"] = "7" }, body), client)
--   local res, fx = transfer.fixture("openai-16-error-404-model-not-found.json")
local json = require("owl.json")
local files = require("support.files")

local transfer = {}

-- The recorded exchanges, from the repository root (where busted runs).
transfer.FIXTURES = "../shared/fixtures/real/"

-- A transfer that finished with status, headers (names in any case) and
-- body: status(), header(name), body([max]), size(), json().
function transfer.finished(status, headers, body)
  local lower = {}
  for k, v in pairs(headers or {}) do lower[k:lower()] = v end
  return {
    status = function() return status end,
    header = function(_, name) return lower[name:lower()] end,
    body = function(_, max) return max and body:sub(1, max) or body end,
    size = function() return #body end,
    json = function() return json.decode(body) end,
  }
end

-- The answer of the recorded exchange name as a finished transfer, and
-- the fixture decoded.
function transfer.fixture(name)
  local fx = assert(json.decode(files.read(transfer.FIXTURES .. name)))
  return transfer.finished(fx.status, fx.headers, fx.body), fx
end

return transfer
