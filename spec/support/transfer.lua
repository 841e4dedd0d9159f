-- spec/support/transfer.lua: a stand-in for a finished owl.core transfer,
-- as a provider's read takes one, for the specs that hand the readers
-- answers made by hand, recorded or mutated.
--
--   local transfer = require("support.transfer")
--   openai.read(transfer.finished(429, { ["Retry-After"] = "7" }, body), client)
--   local res, fx = transfer.fixture("openai-16-error-404-model-not-found.json")
--   transfer.recorded("openai")   -- the names of OpenAI's non-streaming recordings
local json = require("owl.json")
local files = require("support.files")
local mock = require("support.mock")

local transfer = {}

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

-- The answer of the recorded exchange name (in ../shared/fixtures/real/)
-- as a finished transfer, and the fixture decoded.
function transfer.fixture(name)
  local fx = assert(json.decode(files.read(mock.fixture_path(name))))
  return transfer.finished(fx.status, fx.headers, fx.body), fx
end

-- The names of provider's ("openai", "anthropic") recorded exchanges whose
-- answer is one body, not a stream, sorted: what its reader must read.
function transfer.recorded(provider)
  local names = {}
  for _, name in ipairs(mock.fixture_names()) do
    if name:find("^" .. provider .. "%-") then
      local _, fx = transfer.fixture(name)
      if not (fx.body:find("^data:") or fx.body:find("^event:")) then names[#names + 1] = name end
    end
  end
  return names
end

return transfer
