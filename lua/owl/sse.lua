-- owl.sse: the text/event-stream parser of owl.core (C), under its own name.
-- local p = require("owl.sse").new{ max_event_bytes = n }; p:feed(bytes)
-- returns the events those bytes completed. See docs/api.md.
return require("owl.core").sse
