-- spec/errors_spec.lua: owl.errors, the shape of every runtime failure and
-- the redaction that keeps keys out of error text.
local errors = require("owl.errors")

describe("owl.errors", function()
  describe("new", function()
    it("builds a table with kind, message and the given fields", function()
      local cause = errors.new("timeout", "slow")
      local e = errors.new("worker", "subtask failed", {
        subtask = "parse", cause = cause, errors = { cause }, partial = { 1 }, extra = "kept",
      })
      assert.are.equal("worker", e.kind)
      assert.are.equal("subtask failed", e.message)
      assert.are.equal("parse", e.subtask)
      assert.are.equal(cause, e.cause)
      assert.are.equal(cause, e.errors[1])
      assert.are.same({ 1 }, e.partial)
      assert.are.equal("kept", e.extra)
    end)

    it("accepts every documented kind", function()
      for _, kind in ipairs({ "connect", "timeout", "tls", "http", "protocol", "cancelled",
                              "refusal", "length", "invalid", "worker" }) do
        assert.are.equal(kind, errors.new(kind, "m").kind)
      end
    end)

    it("raises for an unknown kind, a non-string message or bad fields", function()
      assert.has_error(function() errors.new("oops", "m") end, "owl.errors: unknown error kind oops")
      assert.has_error(function() errors.new(nil, "m") end)
      assert.has_error(function() errors.new("http", nil) end)
      assert.has_error(function() errors.new("http", "m", "status=404") end)
    end)

    it("keeps kind and message from the arguments over fields", function()
      local e = errors.new("http", "real", { kind = "tls", message = "fake" })
      assert.are.equal("http", e.kind)
      assert.are.equal("real", e.message)
    end)

    it("does not keep a reference to the fields table", function()
      local fields = { status = 500 }
      local e = errors.new("http", "m", fields)
      fields.status = 501
      assert.are.equal(500, e.status)
    end)
  end)

  describe("tostring", function()
    it("gives one line with status and provider details", function()
      local e = errors.new("http", "The model 'gpt-4o-mini-x' does not exist", {
        status = 404, provider_type = "invalid_request_error", provider_code = "model_not_found",
      })
      assert.are.equal(
        "owl: http error 404: The model 'gpt-4o-mini-x' does not exist (invalid_request_error, model_not_found)",
        tostring(e))
    end)

    it("names the param and the subtask", function()
      local e = errors.new("http", "bad role", { status = 400, provider_type = "invalid_request_error", param = "messages[0].role" })
      assert.are.equal("owl: http error 400: bad role (invalid_request_error, param messages[0].role)", tostring(e))
      local w = errors.new("worker", "timed out", { subtask = "cli" })
      assert.are.equal("owl: worker error in subtask 'cli': timed out", tostring(w))
    end)

    it("is plain for an error without details", function()
      assert.are.equal("owl: connect error: refused", tostring(errors.new("connect", "refused")))
    end)

    it("folds newlines in the message into one line", function()
      local s = tostring(errors.new("protocol", "first line\n  second line\r\nthird"))
      assert.are.equal("owl: protocol error: first line second line third", s)
      assert.is_nil(s:find("\n", 1, true))
    end)
  end)

  describe("is", function()
    it("tells owl errors from other values", function()
      assert.is_true(errors.is(errors.new("invalid", "m")))
      assert.is_false(errors.is({ kind = "http", message = "m" }))
      assert.is_false(errors.is("owl: http error"))
      assert.is_false(errors.is(nil))
    end)
  end)

  describe("redact", function()
    it("replaces every occurrence of each secret", function()
      local s = errors.redact("key sk-abc then sk-abc and tok2", { "sk-abc", "tok2" })
      assert.are.equal("key [redacted] then [redacted] and [redacted]", s)
    end)

    it("takes a single secret as a string", function()
      assert.are.equal("x [redacted] y", errors.redact("x s3cr3t y", "s3cr3t"))
    end)

    it("matches plainly, not as a pattern", function()
      assert.are.equal("a [redacted] b", errors.redact("a k.%+(y b", "k.%+(y"))
      -- as a pattern "k.y" would also match "kxy"
      assert.are.equal("kxy [redacted]", errors.redact("kxy k.y", "k.y"))
    end)

    it("redacts Bearer tokens it was not told about", function()
      assert.are.equal('{"Authorization":"Bearer [redacted]"}',
        errors.redact('{"Authorization":"Bearer sk-proj_AbC.d-e~f+g/h="}'))
      assert.are.equal("got bearer [redacted] back", errors.redact("got bearer xyz123 back", nil))
    end)

    it("leaves text without secrets as it is and ignores empty secrets", function()
      assert.are.equal("nothing here", errors.redact("nothing here", { "", "absent" }))
      assert.is_nil(errors.redact(nil, "k"))
    end)

    it("raises on text that is not a string", function()
      assert.has_error(function() errors.redact(42, "k") end)
      assert.has_error(function() errors.redact("t", 42) end)
    end)
  end)

  describe("from_failure", function()
    it("builds a transport error with the key redacted", function()
      local e = errors.from_failure("connect", "Failed to connect to host with key K123", "K123")
      assert.is_true(errors.is(e))
      assert.are.equal("connect", e.kind)
      assert.are.equal("Failed to connect to host with key [redacted]", e.message)
    end)

    it("raises without words (the core always gives some)", function()
      assert.has_error(function() errors.from_failure("timeout", nil) end,
        "owl.errors: a failure message must be a non-empty string, got nil")
      assert.has_error(function() errors.from_failure("timeout", "") end,
        'owl.errors: a failure message must be a non-empty string, got ""')
    end)

    it("raises for a kind that is not a transfer failure", function()
      assert.has_error(function() errors.from_failure("http", "m") end)
      assert.has_error(function() errors.from_failure("bogus", "m") end)
    end)
  end)
end)
