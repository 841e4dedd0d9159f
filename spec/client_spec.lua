-- owl.client over real HTTP against the mock: options, the normalized
-- response, passthrough, errors by kind, keys kept out of error text,
-- redirects, TLS, and yielding inside tasks.
local owl = require("owl")
local mock = require("support.mock")

local MSG = { { role = "user", content = "hi" } }

describe("owl.client", function()
  local server
  setup(function() server = mock.start{ tls = true } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function client(extra)
    -- max_retries = 0: these specs read one failure; spec/retry_spec.lua retries
    local o = { base_url = server.url, api_key = "sk-test-key-123456", model = "gpt-test", max_retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return owl.client(o)
  end

  describe("options", function()
    it("raises on unknown options and wrong types, naming them", function()
      assert.has_error(function() owl.client{ bogus = 1 } end, "owl.client: unknown option 'bogus'")
      assert.has_error(function() owl.client{ timeout = "10" } end, "owl.client: option 'timeout' must be a number, got string")
      assert.has_error(function() owl.client{ timeout = -1 } end)
      assert.has_error(function() owl.client{ max_connections = 0 } end)
      assert.has_error(function() owl.client{ provider = "nope" } end, "owl.client: unknown provider 'nope'")
      assert.has_error(function() owl.client{ base_url = "ftp://x" } end)
      assert.has_error(function() owl.client("x") end)
    end)

    it("has the SDK defaults and never shows the key", function()
      local c = client()
      assert.equal(600, c.timeout)
      assert.equal(5, c.connect_timeout)
      assert.is_nil(tostring(c):find("sk-test-key", 1, true))
    end)

    it("takes the key and base URL from the environment by default", function()
      local c = owl.client{ model = "m" }
      assert.equal(os.getenv("OPENAI_API_KEY"), c.api_key)
      assert.equal(os.getenv("OPENAI_BASE_URL") or "https://api.openai.com/v1", c.base_url)
    end)
  end)

  describe("chat", function()
    it("returns the normalized response", function()
      local res = assert(client():chat{ messages = MSG })
      assert.equal("```\nhi\n```", res.text)
      assert.equal("stop", res.finish_reason)
      assert.is_nil(res.refusal)
      assert.same({}, res.tool_calls or {})
      assert.equal(10, res.usage.input_tokens)
      assert.equal(5, res.usage.output_tokens)
      assert.equal("chat.completion", res.raw.object)
    end)

    it("passes every request field through unchanged and adds only the model", function()
      local c = client()
      assert(c:chat{ messages = MSG, temperature = 0.25, max_tokens = 7, reasoning_effort = "low", seed = 42 })
      local req = server:requests(1)[1]
      local sent = mock.json_decode(req.body)
      assert.same({ "max_tokens", "messages", "model", "reasoning_effort", "seed", "temperature" }, mock.sorted_keys(sent))
      assert.equal(0.25, sent.temperature)
      assert.equal(7, sent.max_tokens)
      assert.equal("gpt-test", sent.model)
      assert.equal("Bearer sk-test-key-123456", req.headers.authorization)
      assert.equal("application/json", req.headers["content-type"])
    end)

    it("sends no Authorization header without a key", function()
      local c = owl.client{ base_url = server.url, api_key = "", model = "m" }
      assert(c:chat{ messages = MSG })
      assert.is_nil(server:requests(1)[1].headers.authorization)
    end)

    it("sends extra headers", function()
      assert(client{ headers = { ["X-Title"] = "owl spec" } }:chat{ messages = MSG })
      assert.equal("owl spec", server:requests(1)[1].headers["x-title"])
    end)

    it("raises on a request that is not a table", function()
      assert.has_error(function() client():chat("hi") end)
      assert.has_error(function() client():chat{} end)
    end)
  end)

  describe("errors", function()
    it("an HTTP error carries status and the provider's fields", function()
      local res, err = client{ headers = { ["x-mock-fault"] = "500" } }:chat{ messages = MSG }
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
      assert.equal("server_error", err.provider_type)
      assert.matches("^owl: http error 500", tostring(err))
    end)

    it("a 429 is an http error with status 429", function()
      local _, err = client{ headers = { ["x-mock-fault"] = "429", ["x-mock-retry-after"] = "3" } }:chat{ messages = MSG }
      assert.equal("http", err.kind)
      assert.equal(429, err.status)
      assert.equal("rate_limit_exceeded", err.provider_code)
    end)

    it("a 200 body that is not JSON is a protocol error", function()
      local _, err = client{ headers = { ["x-mock-fault"] = "malformed" } }:chat{ messages = MSG }
      assert.equal("protocol", err.kind)
      assert.matches("not JSON", err.message)
    end)

    it("an empty 200 body is a protocol error", function()
      local _, err = client{ headers = { ["x-mock-fault"] = "empty" } }:chat{ messages = MSG }
      assert.equal("protocol", err.kind)
    end)

    it("a reset mid-body is a protocol error", function()
      local _, err = client{ headers = { ["x-mock-fault"] = "reset" } }:chat{ messages = MSG }
      assert.equal("protocol", err.kind)
    end)

    it("an unreachable server is a connect error", function()
      local socket = require("socket")
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      local c = owl.client{ base_url = "http://127.0.0.1:" .. port .. "/v1", api_key = "sk-x", model = "m" }
      local res, err = c:chat{ messages = MSG }
      assert.is_nil(res)
      assert.equal("connect", err.kind)
    end)

    it("never shows the key, even when the server echoes it", function()
      local key = "sk-echoed-secret-9876543210"
      local c = owl.client{ base_url = server.url, api_key = key, model = "m", headers = {
        ["x-mock-status"] = "401",
        ["x-mock-body"] = '{"error":{"message":"Incorrect API key provided: ' .. key ..
          '","type":"invalid_request_error","code":"invalid_api_key"}}',
      } }
      local _, err = c:chat{ messages = MSG }
      assert.equal(401, err.status)
      assert.equal("invalid_api_key", err.provider_code)
      assert.is_nil(tostring(err):find(key, 1, true))
      assert.is_nil(err.message:find(key, 1, true))
      assert.matches("%[redacted%]", err.message)
    end)

    it("does not follow a redirect, and the key never reaches the other host", function()
      local other = mock.start()
      local c = client{ headers = { ["x-mock-fault"] = "redirect", ["x-mock-location"] = other.url .. "/chat/completions" } }
      local res, err = c:chat{ messages = MSG }
      local seen = other:stats(true)
      other:stop()
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal(302, err.status)
      assert.equal(0, seen.total)
      assert.equal(0, #seen.requests)
    end)

    it("a self-signed certificate fails with kind 'tls'", function()
      local c = owl.client{ base_url = server.tls_url, api_key = "sk-tls-key-000", model = "m" }
      local res, err = c:chat{ messages = MSG }
      assert.is_nil(res)
      assert.equal("tls", err.kind)
      assert.is_nil(tostring(err):find("sk-tls-key-000", 1, true))
    end)

    it("a private CA can be trusted with ca_file", function()
      local c = owl.client{ base_url = server.tls_url, api_key = "k", model = "m", ca_file = server.cert_file }
      assert.equal("```\nhi\n```", assert(c:chat{ messages = MSG }).text)
    end)
  end)

  describe("in tasks", function()
    it("yields while in flight: three tasks' calls are in flight together", function()
      local c = client{ headers = { ["x-mock-barrier"] = "3", ["x-mock-barrier-timeout-ms"] = "5000" } }
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = owl.spawn(function()
          local res, err = c:chat{ messages = { { role = "user", content = "task " .. i } } }
          return res and res.text, err
        end)
      end
      for i = 1, 3 do
        assert.equal("```\ntask " .. i .. "\n```", tasks[i]:wait())
      end
      assert.equal(3, server:stats().max_in_flight)
    end)

    it("an error raised inside a task reaches whoever waits", function()
      local t = owl.spawn(function() error({ code = 7 }) end)
      local ok, err = t:wait()
      assert.is_nil(ok)
      assert.equal(7, err.code)
      local t2 = owl.spawn(function()
        client():chat{ messages = MSG }
        error("after the call")
      end)
      local ok2, err2 = t2:wait()
      assert.is_nil(ok2)
      assert.matches("after the call", err2)
    end)

    it("a task can wait for another task", function()
      local c = client()
      local inner = owl.spawn(function() return assert(c:chat{ messages = MSG }).text end)
      local outer = owl.spawn(function() return "got " .. inner:wait() end)
      assert.equal("got ```\nhi\n```", outer:wait())
    end)
  end)
end)
