-- owl.stream: reading a streamed call. The core frames the server-sent
-- events of a transfer (spec.sse) and reports it whenever some arrived;
-- this drains them into the provider's stream reader, hands each delta to
-- the caller's on_delta in the waiting task, and ends with the same
-- normalized response a non-streamed call returns. Only the provider's
-- reader knows the wire format.
local errors = require("owl.errors")
local task = require("owl.task")

local M = {}

-- Ends a transfer the reader gave up on, so its connection is cleaned up
-- before the error goes back (the next call must find the loop clean).
local function abandon(loop, t)
  if t:state() ~= "done" then
    t:cancel()
    task.await(loop, t)
  end
end

-- M.read(client, t, loop, on_delta [, request]) -> response, or nil and an error that
-- carries err.partial_text (the text received so far) when the answer had
-- begun. on_delta(delta) runs in the waiting task and may wait itself; an
-- error it raises fails the call (kind "callback").
local read

function M.read(client, t, loop, on_delta, request)
  local res, err = read(client, t, loop, on_delta, request)
  client:observe(t)
  t:release() -- what was read is in Lua now; free the buffers at once
  return res, err
end

-- Events are taken this many at a time: a flood of small ones (pings)
-- never becomes one Lua table each all at once (see t:events).
local BATCH = 256

read = function(client, t, loop, on_delta, request)
  local reader = client.provider.stream_reader(client, request)
  -- a reader that names what it reads of an event has the core take it
  -- out in C (core.sse_pick); without on_delta, the pieces of one turn
  -- come joined, one per turn instead of one per event
  -- (a reader that wants no more picking, at its end mark, sets pick to
  -- false: whatever follows comes whole and wakes it at once)
  local picking = reader.pick
  if picking then t:sse_pick(picking, on_delta == nil) end
  while true do
    local done = t:state() == "done"
    local batch = t:events(BATCH)
    if #batch == BATCH then done = false end -- more are queued: take them before waiting
    for _, ev in ipairs(batch) do
      local deltas, err
      if ev.pick then deltas, err = reader:picked(ev.pick) else deltas, err = reader:event(ev) end
      if not deltas then
        abandon(loop, t)
        return nil, errors.scrub(err, client.secrets)
      end
      if on_delta then
        for _, d in ipairs(deltas) do
          local ok, raised = task.pcall(on_delta, d)
          if not ok then
            abandon(loop, t)
            return nil, errors.new("callback", "on_delta raised: " .. tostring(raised),
              { partial_text = reader:partial_text() })
          end
        end
      end
    end
    if done then break end
    if picking and not reader.pick then
      picking = nil
      t:sse_pick(nil)
    end
    if #batch < BATCH then task.await(loop, t, true) end -- until more events, or the end
  end
  local status = t:status()
  if t:failure() or type(status) ~= "number" or status < 200 or status > 299 then
    -- a transport failure, or an error document instead of a stream: read
    -- as any other call's
    local _, err = client:read(t, request)
    err = err or errors.new("protocol", "the stream failed without an error")
    if reader:partial_text() ~= "" then err.partial_text = reader:partial_text() end
    return nil, errors.scrub(err, client.secrets)
  end
  local res, err = reader:finish()
  if not res then return nil, errors.scrub(err, client.secrets) end
  return res
end

return M
