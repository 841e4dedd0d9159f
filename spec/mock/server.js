#!/usr/bin/env node
// spec/mock/server.js: owl's mock LLM server, for the specs and `make demo`.
// It speaks OpenAI chat completions and Anthropic Messages (JSON and SSE),
// and lets a test choose per request, by header or by a queued script, any
// fault a real endpoint can show: latency, 429/500, a reset or truncated
// body, a non-JSON body, a drip, a hang, a redirect, a byte-exact replay of
// a recorded exchange. A barrier proves that N requests are in flight at once
// without relying on timing. Node.js only, no dependencies, one process.
//
//   node spec/mock/server.js --port 0 --port-file F [--parent-pid P]
//        [--max-lifetime S] [--fixtures DIR]
//        [--tls-port 0 --tls-cert C --tls-key K]
//
// The port file is written once every listener is up, through a rename, as
// lines `port=N`, `tls_port=N` (with TLS), `pid=N`.
//
// LLM endpoints: POST /v1/chat/completions and /chat/completions (OpenAI),
// POST /v1/messages (Anthropic); any other path is logged and gets a 404.
// A CONNECT (this server used as a proxy) is logged and refused with 403.
// Per-request headers: x-mock-subtasks (plan size, default 3),
// x-mock-latency-ms, x-mock-fault (429 500 reset reset_early truncate malformed empty
// drip hang redirect endless), x-mock-retry-after, x-mock-drip-ms, x-mock-location,
// x-mock-status and x-mock-body, x-mock-replay (a fixture path, or a bare
// name looked up in --fixtures), x-mock-split (byte offsets where the body
// is cut into separate writes; x-mock-split-pause-ms, default 3, the pause
// between them), x-mock-barrier and
// x-mock-barrier-timeout-ms (default 10000), x-mock-rpm (a requests-per-minute
// limit enforced at the second's grain: past it, 429s counted in
// stats().rate_limited), x-mock-reply-bytes (a text answer, fences
// included, cut or padded to this many bytes), x-mock-session (a scripted
// session in spec/mock/sessions/NAME.js, which answers by what each request
// holds: see sessions/coding_demo.js, the one `make demo` plays), x-mock-pings and
// x-mock-ping-ms (a stream opens with that many of the provider's keep-alive
// events, one every ping_ms, before its answer: Anthropic's `event: ping`,
// OpenAI's SSE comment `: ping`), x-mock-drop-events (a stream's last N
// events are left out: no [DONE], no message_stop, and the body still ends
// cleanly), x-mock-fault-rate and x-mock-seed (below).
//
// Fault `endless`: a 200 whose body never ends (keep-alive events for a
// stream, spaces for JSON), written as fast as the client reads, until it
// closes the connection.
//
// x-mock-fault-rate: "500=0.01,reset=0.01" (fault names as x-mock-fault's):
// every request carrying it draws one number from a generator seeded by
// x-mock-seed (default 1) at its first use after a reset, in arrival order,
// and gets that fault with that probability (a scripted or x-mock-fault
// fault wins, the draw is made anyway). So one seed and one arrival order
// give the same faults; stats().injected counts the faults it gave, by name.
//
// A structured request gets the canned plan fitted to its schema (see
// fitToSchema); any other gets its last user text echoed in a fence.
//
// Control endpoints (never counted or logged as LLM requests):
//   GET  /healthz                  "ok"
//   GET  /_mock/stats[?log=0]      counters, and the request log unless log=0
//   GET  /_mock/requests[?last=N]  the request log alone (a JSON array)
//   POST /_mock/reset              counters, maxima, script, barrier, log
//   POST /_mock/script             {"replies": [entry, ...]}: queued replies
//
// A script entry may give a whole HTTP reply (status, body, headers, fault,
// replay), or only what the model says, wrapped in the shape of the
// provider asked, streamed or not: "text" (an answer), "json" (a
// structured answer: a plan, {done, subtasks}) or "tool_calls" ([{"id",
// "name", "arguments"}], arguments an object, or a string sent as the
// model's raw JSON, valid or not, with "text" beside them or not); and the
// header parameters as latency_ms, drip_ms, split, retry_after, location,
// subtasks, reply_bytes, pings, ping_ms, drop_events. An entry with "when" (an array of strings) is for
// a request whose text (every string in its system prompt and messages)
// holds each of them: a request takes the first queued entry it fits (one
// without "when" fits any), so concurrent callers, each asking in turn,
// get their own answers whatever order their requests arrive in.
'use strict';

const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    port: 0, portFile: null, parentPid: 0, maxLifetime: 900,
    tlsPort: null, tlsCert: null, tlsKey: null, fixtures: null,
  };
  const need = (i) => {
    if (i + 1 >= argv.length) die(`missing value after ${argv[i]}`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i += 2) {
    const a = argv[i];
    const v = need(i);
    switch (a) {
      case '--port': o.port = toInt(v, a); break;
      case '--port-file': o.portFile = v; break;
      case '--parent-pid': o.parentPid = toInt(v, a); break;
      case '--max-lifetime': o.maxLifetime = toInt(v, a); break;
      case '--tls-port': o.tlsPort = toInt(v, a); break;
      case '--tls-cert': o.tlsCert = v; break;
      case '--tls-key': o.tlsKey = v; break;
      case '--fixtures': o.fixtures = v; break;
      default: die(`unknown option ${a}`);
    }
  }
  if (o.tlsPort !== null && (!o.tlsCert || !o.tlsKey)) die('--tls-port needs --tls-cert and --tls-key');
  return o;
}

function toInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) die(`${name} wants a non-negative integer, got ${v}`);
  return n;
}

function die(msg) {
  process.stderr.write(`mock server: ${msg}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- state

const LOG_MAX = 2000;                 // entries kept in the request log
const LOG_BODY_MAX = 1024 * 1024;     // characters of a body kept per entry
const REQUEST_BODY_MAX = 1024 * 1024 * 1024;
const MAX_SUBTASKS = 100000;
const DEFAULT_SUBTASKS = 3;
// Fixed usage, so that specs can assert exact sums over many calls.
const USAGE_IN = 10;
const USAGE_OUT = 5;

const state = {
  total: 0,
  rateLimited: 0,    // 429s the x-mock-rpm limiter sent
  injected: Object.create(null), // faults x-mock-fault-rate gave, by name
  faultRng: null,    // x-mock-fault-rate's generator, seeded at first use
  faultSeed: null,
  rateBucket: null,
  paths: Object.create(null),
  inFlight: 0,
  maxInFlight: 0,
  connections: 0,
  maxConnections: 0,
  llmConnections: 0, // distinct connections that carried an LLM request since the last reset
  epoch: 0,          // bumped by reset, so a kept-alive connection counts again after it
  script: [],
  log: [],          // ring of the last LOG_MAX entries, oldest first after ordering
  logStart: 0,      // index of the oldest entry once the ring is full
  seq: 0,
  barrier: newBarrier(),
};

function newBarrier() {
  // k: the count of the generation in progress (from its first request);
  // held: the requests waiting; disarmed: set once a generation released.
  return { k: 0, held: new Set(), timer: null, disarmed: false, started: 0, timeoutMs: 0 };
}

let idCounter = 0;
function newId(prefix) {
  idCounter += 1;
  return prefix + 'mock' + String(idCounter).padStart(10, '0');
}

// ---------------------------------------------------------------- helpers

function jsonReply(status, obj, extraHeaders) {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  return { status, headers: Object.assign({ 'content-type': 'application/json' }, extraHeaders || {}), body };
}

// An error body in the shape of the provider the request was sent to, so
// that owl's readers see what the real API would send.
function errorReply(provider, status, message, kind, extraHeaders) {
  if (provider === 'anthropic') {
    const types = { rate_limit: 'rate_limit_error', server: 'api_error', timeout: 'timeout_error', invalid: 'invalid_request_error', not_found: 'not_found_error' };
    return jsonReply(status, {
      type: 'error',
      error: { type: types[kind] || 'api_error', message },
      request_id: newId('req_'),
    }, extraHeaders);
  }
  const shapes = {
    rate_limit: { type: 'requests', code: 'rate_limit_exceeded' },
    server: { type: 'server_error', code: null },
    timeout: { type: 'timeout', code: null },
    invalid: { type: 'invalid_request_error', code: null },
    not_found: { type: 'invalid_request_error', code: 'unknown_url' },
  };
  const s = shapes[kind] || shapes.server;
  return jsonReply(status, { error: { message, type: s.type, param: null, code: s.code } }, extraHeaders);
}

// Header names in lower case, every one of them; repeated names joined with
// ", " as the fixtures do (req.headers drops some duplicates).
function allHeaders(req) {
  const out = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    out[name] = (name in out) ? out[name] + ', ' + raw[i + 1] : raw[i + 1];
  }
  return out;
}

function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts = [];
  for (const p of content) {
    if (!p || typeof p !== 'object') continue;
    if (typeof p.text === 'string') parts.push(p.text);
    else if (p.type === 'tool_result') parts.push(textOf(p.content));
  }
  return parts.join('\n');
}

function lastUserText(messages) {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.role === 'user') return textOf(m.content);
  }
  return '';
}

function planObject(n, text) {
  const subtasks = new Array(n);
  for (let i = 0; i < n; i++) {
    subtasks[i] = { name: `part_${i + 1}`, description: `Part ${i + 1} of ${n} of the problem.` };
  }
  return { objective: 'Mock plan for: ' + text.slice(0, 200), subtasks };
}

function subtaskCount(value) {
  if (value === undefined || value === null || value === '') return DEFAULT_SUBTASKS;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) return DEFAULT_SUBTASKS;
  return Math.min(n, MAX_SUBTASKS);
}

// Splits text into pieces of whole code points (never half a surrogate
// pair), at most about 256 of them so a 1 MB plan stays a few hundred events.
function pieces(text) {
  const cps = Array.from(text);
  const size = Math.max(20, Math.ceil(cps.length / 256));
  const out = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(''));
  return out;
}

// ---------------------------------------------------------------- default replies

// Whether a request asks for structured output, and through which tool
// when an Anthropic request forces one (the plan then arrives as its input).
function structuredOutput(provider, body) {
  if (provider === 'openai') {
    const rf = body.response_format;
    const structured = !!(rf && rf.type === 'json_schema');
    return { structured, tool: null, schema: structured && rf.json_schema ? rf.json_schema.schema : null };
  }
  const tc = body.tool_choice;
  if (tc && (tc.type === 'tool' || tc.type === 'any')) {
    const tools = Array.isArray(body.tools) ? body.tools : [];
    const tool = tc.type === 'tool' ? tc.name : (tools[0] && tools[0].name);
    const def = tools.find((t) => t && t.name === tool);
    return { structured: true, tool: typeof tool === 'string' ? tool : 'plan', schema: def ? def.input_schema : null };
  }
  const oc = body.output_config;
  return { structured: !!(oc && oc.format), tool: null, schema: oc && oc.format ? oc.format.schema : null };
}

// The canned plan made to fit the request's schema, so that any structured
// request gets an answer that validates: properties the schema lacks are
// dropped, required ones the plan lacks get a value of their type (a
// enum's first value, a boolean true, a string "mock", a number 0, an
// empty array or object, else null),
// arrays fit item by item. A plan schema with depends_on thus gets
// independent subtasks, and {done, subtasks} gets done = true.
function fitToSchema(value, schema) {
  if (!schema || typeof schema !== 'object') return value;
  if (Array.isArray(value)) return schema.items ? value.map((v) => fitToSchema(v, schema.items)) : value;
  if (value === null || typeof value !== 'object' || !schema.properties) return value;
  const out = {};
  for (const [k, sub] of Object.entries(schema.properties)) {
    if (k in value) out[k] = fitToSchema(value[k], sub);
    else if (Array.isArray(schema.required) && schema.required.includes(k)) out[k] = emptyOf(sub);
  }
  return out;
}

function emptyOf(schema) {
  if (schema && Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const t = Array.isArray(schema && schema.type) ? schema.type[0] : schema && schema.type;
  switch (t) {
    case 'boolean': return true;
    case 'string': return 'mock';
    case 'number': case 'integer': return 0;
    case 'array': return [];
    case 'object': return fitToSchema({}, schema);
    default: return null;
  }
}

// A text of exactly n bytes (when n is a byte count): text cut on a
// character boundary, or padded with a repeated filler line.
function sized(text, n) {
  if (!Number.isInteger(n) || n < 0) return text;
  let buf = Buffer.from(text, 'utf8');
  if (buf.length < n) {
    const fill = Buffer.from('\n-- mock filler', 'utf8');
    const parts = [buf];
    let have = buf.length;
    while (have < n) { parts.push(fill); have += fill.length; }
    buf = Buffer.concat(parts);
  }
  let cut = n;
  while (cut > 0 && (buf[cut] & 0xc0) === 0x80) cut -= 1;
  return buf.subarray(0, cut).toString('utf8');
}

// A scripted session (spec/mock/sessions/NAME.js): { plan, replies: [{
// when: [strings], text }] }. Loaded once; a bad name is the caller's error.
const sessions = new Map();
function loadSession(name) {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`mock: bad session name "${name}"`);
  if (!sessions.has(name)) sessions.set(name, require(path.join(__dirname, 'sessions', name + '.js')));
  return sessions.get(name);
}

// Every text a request holds: its system prompt and all its messages.
function requestText(body) {
  const parts = [textOf(body.system)];
  for (const m of Array.isArray(body.messages) ? body.messages : []) if (m) parts.push(textOf(m.content));
  return parts.join('\n');
}

// What the model "answers": a plan for structured-output requests, else the
// last user text echoed inside a code fence.
// A directive's scripted answer (d.text, d.json) wins over both, in the
// same provider shape; d.replyBytes sizes a text answer's fenced body. A
// session (d.session) answers instead with its plan, and with the first
// reply whose every `when` string the request holds (the echo when none
// matches).
function modelAnswer(provider, body, d) {
  const so = structuredOutput(provider, body);
  if (d.json !== undefined) {
    if (so.structured) return { structured: true, tool: so.tool, plan: d.json };
    return { structured: false, text: JSON.stringify(d.json) };
  }
  if (d.text !== undefined) return { structured: false, text: String(d.text) };
  const text = lastUserText(body.messages);
  if (d.session !== undefined) {
    const session = loadSession(String(d.session));
    if (so.structured) return { structured: true, tool: so.tool, plan: session.plan };
    const all = requestText(body);
    const reply = session.replies.find((r) => r.when.every((w) => all.includes(w)));
    if (reply) return { structured: false, text: reply.text };
  }
  if (so.structured) return { structured: true, tool: so.tool, plan: fitToSchema(planObject(subtaskCount(d.subtasks), text), so.schema) };
  const n = Number(d.replyBytes);
  if (d.replyBytes !== undefined && Number.isInteger(n) && n >= 8) return { structured: false, text: '```\n' + sized(text, n - 8) + '\n```' };
  return { structured: false, text: '```\n' + text + '\n```' };
}

function sseHeaders() {
  return { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
}

// A scripted answer's tool calls in OpenAI's shape: arguments as the text
// the model wrote (a string given as it is, so a spec can send bad JSON).
function openaiCalls(answer) {
  return (answer.toolCalls || []).map((c) => ({
    id: c.id || newId('call_'), type: 'function',
    function: { name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments || {}) },
  }));
}

function openaiMessage(content, calls) {
  const m = { role: 'assistant', content: calls.length > 0 && content === '' ? null : content, refusal: null, annotations: [] };
  if (calls.length > 0) m.tool_calls = calls;
  return m;
}

function openaiReply(body, answer) {
  const model = typeof body.model === 'string' ? body.model : 'mock-model';
  const content = answer.structured ? JSON.stringify(answer.plan) : answer.text;
  const calls = openaiCalls(answer);
  const finish = calls.length > 0 ? 'tool_calls' : 'stop';
  const id = newId('chatcmpl-');
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: USAGE_IN, completion_tokens: USAGE_OUT, total_tokens: USAGE_IN + USAGE_OUT };
  const extra = { 'x-request-id': newId('req_') };
  if (body.stream !== true) {
    return jsonReply(200, {
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: openaiMessage(content, calls), logprobs: null, finish_reason: finish }],
      usage, service_tier: 'default', system_fingerprint: 'fp_mock',
    }, extra);
  }
  const withUsage = !!(body.stream_options && body.stream_options.include_usage);
  const events = [];
  const chunk = (choices, u) => {
    const o = { id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: 'fp_mock', choices };
    // With include_usage the real API puts "usage": null on every chunk
    // but the last (see fixture openai-12).
    if (withUsage) o.usage = u || null;
    events.push('data: ' + JSON.stringify(o) + '\n\n');
  };
  chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]);
  for (const p of pieces(content)) chunk([{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }]);
  // each call: a first piece with its id and name, then its arguments in pieces
  calls.forEach((c, i) => {
    chunk([{ index: 0, delta: { tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }, logprobs: null, finish_reason: null }]);
    for (const p of pieces(c.function.arguments)) {
      chunk([{ index: 0, delta: { tool_calls: [{ index: i, function: { arguments: p } }] }, logprobs: null, finish_reason: null }]);
    }
  });
  chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]);
  if (withUsage) chunk([], usage);
  events.push('data: [DONE]\n\n');
  return streamReply(events, extra, ': ping\n\n');
}

function anthropicReply(body, answer) {
  const model = typeof body.model === 'string' ? body.model : 'mock-model';
  const id = newId('msg_');
  const extra = { 'request-id': newId('req_') };
  const useTool = answer.structured && answer.tool;
  const block = useTool
    ? { type: 'tool_use', id: newId('toolu_'), name: answer.tool, input: answer.plan }
    : { type: 'text', text: answer.structured ? JSON.stringify(answer.plan) : answer.text };
  // the blocks: the answer's, then a scripted answer's tool calls (its
  // text block only when it has text)
  const blocks = (answer.toolCalls && answer.toolCalls.length > 0 && block.text === '') ? [] : [block];
  for (const c of answer.toolCalls || []) blocks.push(anthropicCall(c));
  const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
  const usage = (out) => ({ input_tokens: USAGE_IN, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: out });
  if (body.stream !== true) {
    return jsonReply(200, {
      id, type: 'message', role: 'assistant', model, content: blocks.map((b) => (b.raw !== undefined ? Object.assign({}, b, { input: b.raw, raw: undefined }) : b)),
      stop_reason: stopReason, stop_sequence: null,
      usage: Object.assign(usage(USAGE_OUT), { service_tier: 'standard' }),
    }, extra);
  }
  const events = [];
  const ev = (name, data) => events.push(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  // message_start carries output_tokens 1 and message_delta the cumulative
  // count, as the real API does: a reader must take the last, not the sum.
  ev('message_start', {
    type: 'message_start',
    message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: Object.assign(usage(1), { service_tier: 'standard' }) },
  });
  blocks.forEach((b, index) => {
    if (b.type === 'tool_use') {
      ev('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
      events.push('event: ping\ndata: {"type": "ping"}\n\n');
      const raw = b.raw !== undefined ? b.raw : JSON.stringify(b.input);
      for (const p of pieces(raw)) {
        ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: p } });
      }
    } else {
      ev('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      events.push('event: ping\ndata: {"type": "ping"}\n\n');
      for (const p of pieces(b.text)) {
        ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: p } });
      }
    }
    ev('content_block_stop', { type: 'content_block_stop', index });
  });
  ev('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: usage(USAGE_OUT) });
  ev('message_stop', { type: 'message_stop' });
  return streamReply(events, extra, 'event: ping\ndata: {"type": "ping"}\n\n');
}

// A scripted tool call as a tool_use block. Arguments given as a string are
// the JSON the model wrote: parsed for the block's input, or, when they are
// not JSON, kept as raw (a streamed reply sends them as they are, a whole
// one sends the string as the input: neither is an object).
function anthropicCall(c) {
  const b = { type: 'tool_use', id: c.id || newId('toolu_'), name: c.name, input: c.arguments || {} };
  if (typeof c.arguments === 'string') {
    try { b.input = JSON.parse(c.arguments); } catch (e) { b.input = {}; b.raw = c.arguments; }
  }
  return b;
}

// A streamed reply keeps its events apart: delivered normally, each is one
// write with chunked encoding, as an SSE endpoint sends them. ping: the
// provider's keep-alive event (x-mock-pings, fault endless).
function streamReply(events, extra, ping) {
  const chunks = events.map((e) => Buffer.from(e, 'utf8'));
  return { status: 200, headers: Object.assign(sseHeaders(), extra), body: Buffer.concat(chunks), chunks, ping: Buffer.from(ping, 'utf8') };
}

// x-mock-drop-events: a stream without its last n events.
function dropEvents(reply, n) {
  if (!reply.chunks || !Number.isInteger(n) || n <= 0) return reply;
  const chunks = reply.chunks.slice(0, Math.max(0, reply.chunks.length - n));
  return Object.assign({}, reply, { chunks, body: Buffer.concat(chunks) });
}

// ---------------------------------------------------------------- replay

const fixtureCache = new Map();

function resolveFixture(p) {
  if (!p.includes('/') && opts.fixtures) return path.join(opts.fixtures, p);
  return path.resolve(p);
}

async function replayReply(provider, p) {
  const file = resolveFixture(p);
  let fx = fixtureCache.get(file);
  if (!fx) {
    try {
      fx = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    } catch (e) {
      return errorReply(provider, 500, `mock replay: cannot read fixture ${file}: ${e.message}`, 'server');
    }
    if (typeof fx.status !== 'number' || typeof fx.body !== 'string') {
      return errorReply(provider, 500, `mock replay: ${file} has no numeric status and string body`, 'server');
    }
    fixtureCache.set(file, fx);
  }
  // content-length is the server's (node computes it from these bytes).
  const headers = {};
  for (const [k, v] of Object.entries(fx.headers || {})) {
    if (k !== 'content-length' && k !== 'transfer-encoding') headers[k] = v;
  }
  return { status: fx.status, headers, body: Buffer.from(fx.body, 'utf8') };
}

// ---------------------------------------------------------------- directives

// A directive says how to answer one request. Headers give one; a script
// entry, when queued, gives another that takes precedence: its own reply
// fields (status, body, headers, fault, replay) replace the header's reply
// fields as a whole, and any field it leaves out falls back to the header's
// timing fields (latency, drip) and parameters (retry-after, location,
// subtasks).
const FAULTS = new Set(['429', '500', 'reset', 'reset_early', 'truncate', 'malformed', 'empty', 'drip', 'hang', 'redirect', 'endless']);

function headerDirective(h) {
  const num = (v) => (v === undefined ? undefined : Number(v));
  return {
    latencyMs: num(h['x-mock-latency-ms']),
    fault: h['x-mock-fault'],
    retryAfter: h['x-mock-retry-after'],
    dripMs: num(h['x-mock-drip-ms']),
    split: h['x-mock-split'],
    splitPauseMs: h['x-mock-split-pause-ms'] === undefined ? undefined : Number(h['x-mock-split-pause-ms']),
    location: h['x-mock-location'],
    status: num(h['x-mock-status']),
    body: h['x-mock-body'],
    headers: undefined,
    replay: h['x-mock-replay'],
    subtasks: h['x-mock-subtasks'],
    replyBytes: h['x-mock-reply-bytes'],
    pings: num(h['x-mock-pings']),
    pingMs: num(h['x-mock-ping-ms']),
    dropEvents: num(h['x-mock-drop-events']),
    text: undefined,
    json: undefined,
    session: h['x-mock-session'],
  };
}

// Every string a request holds in its system prompt and messages (content,
// tool results, tool call arguments), for a script entry's "when".
function requestStrings(body) {
  const out = [];
  const walk = (v, depth) => {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object' && depth < 64) for (const k of Object.keys(v)) walk(v[k], depth + 1);
  };
  if (body) { walk(body.system, 0); walk(body.messages, 0); }
  return out.join('\n');
}

// The index of the first queued entry this request fits, or -1.
function scriptFor(parsed) {
  if (state.script.length === 0) return -1;
  let text = null;
  return state.script.findIndex((e) => {
    if (e.when === undefined) return true;
    if (text === null) text = requestStrings(parsed);
    return e.when.every((w) => text.includes(w));
  });
}

function scriptDirective(entry, base) {
  const d = Object.assign({}, base);
  const hasReply = ['status', 'body', 'headers', 'fault', 'replay', 'text', 'json', 'tool_calls'].some((k) => entry[k] !== undefined);
  if (hasReply) {
    d.fault = entry.fault; d.status = entry.status; d.replay = entry.replay;
    d.headers = entry.headers; d.text = entry.text; d.json = entry.json;
    d.toolCalls = Array.isArray(entry.tool_calls) ? entry.tool_calls : undefined;
    // json may come as JSON text: a Lua harness cannot tell [] from {}
    if (typeof d.json === 'string') {
      try { d.json = JSON.parse(d.json); } catch (e) { d.text = d.json; d.json = undefined; }
    }
    d.body = (entry.body !== undefined && typeof entry.body !== 'string') ? JSON.stringify(entry.body) : entry.body;
  }
  if (entry.latency_ms !== undefined) d.latencyMs = Number(entry.latency_ms);
  if (entry.drip_ms !== undefined) d.dripMs = Number(entry.drip_ms);
  if (entry.split !== undefined) d.split = Array.isArray(entry.split) ? entry.split.join(',') : String(entry.split);
  if (entry.retry_after !== undefined) d.retryAfter = String(entry.retry_after);
  if (entry.location !== undefined) d.location = entry.location;
  if (entry.subtasks !== undefined) d.subtasks = String(entry.subtasks);
  if (entry.reply_bytes !== undefined) d.replyBytes = String(entry.reply_bytes);
  if (entry.session !== undefined) d.session = String(entry.session);
  if (entry.pings !== undefined) d.pings = Number(entry.pings);
  if (entry.ping_ms !== undefined) d.pingMs = Number(entry.ping_ms);
  if (entry.drop_events !== undefined) d.dropEvents = Number(entry.drop_events);
  return d;
}

// The reply (status, headers, body bytes) a directive asks for, before any
// delivery fault is applied.
async function buildReply(provider, parsed, d) {
  if (d.replay !== undefined) return replayReply(provider, d.replay);
  if (d.fault === '429') {
    const ra = d.retryAfter !== undefined ? String(d.retryAfter) : '1';
    return errorReply(provider, 429, `Rate limit reached (mock). Please try again in ${ra}s.`, 'rate_limit', { 'retry-after': ra });
  }
  if (d.fault === '500') {
    return errorReply(provider, 500, 'The server had an error while processing your request. Sorry about that! (mock)', 'server');
  }
  if (d.fault === 'malformed') {
    return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"id": "chatcmpl-mock", "choices": [{"index": 0, "mess', 'utf8') };
  }
  if (d.fault === 'empty') return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(0) };
  if (d.fault === 'redirect') {
    return { status: 302, headers: { location: d.location || '/mock-redirect-target', 'content-type': 'text/plain' }, body: Buffer.from('Found', 'utf8') };
  }
  const hasStatus = Number.isInteger(d.status) && d.status >= 100 && d.status <= 999;
  if (d.body !== undefined) {
    return { status: hasStatus ? d.status : 200, headers: Object.assign({ 'content-type': 'application/json' }, d.headers || {}), body: Buffer.from(d.body, 'utf8') };
  }
  let r;
  if (hasStatus && d.status >= 400) {
    r = errorReply(provider, d.status, `mock status ${d.status}`, d.status >= 500 ? 'server' : 'invalid');
  } else {
    r = defaultReply(provider, parsed, d);
    if (hasStatus && r.status === 200) r.status = d.status;
  }
  Object.assign(r.headers, d.headers || {});
  return r;
}

function defaultReply(provider, parsed, d) {
  if (parsed === undefined) {
    return errorReply(provider, 400, 'We could not parse the JSON body of your request. (mock)', 'invalid');
  }
  let answer;
  try {
    answer = d.toolCalls
      ? { structured: false, text: d.text === undefined ? '' : String(d.text), toolCalls: d.toolCalls }
      : modelAnswer(provider, parsed, d);
  } catch (e) {
    return errorReply(provider, 400, `mock: session "${d.session}": ${e.message}`, 'invalid');
  }
  return provider === 'openai' ? openaiReply(parsed, answer) : anthropicReply(parsed, answer);
}

// ---------------------------------------------------------------- delivery

function alive(res) {
  return !res.destroyed && !res.writableEnded && !res.socket?.destroyed;
}

function writeHead(res, reply, withLength, length) {
  const headers = Object.assign({}, reply.headers);
  if (withLength) headers['content-length'] = String(length === undefined ? reply.body.length : length);
  res.writeHead(reply.status, headers);
}

// Sends an RST (not a FIN), so the client sees "connection reset". A TLS
// socket has no reset of its own; its TCP socket underneath does.
function resetSocket(sock) {
  if (!sock || sock.destroyed) return;
  for (const s of [sock, sock._parent]) {
    if (s && typeof s.resetAndDestroy === 'function') {
      try { s.resetAndDestroy(); return; } catch (e) { /* not a TCP handle: try the next */ }
    }
  }
  sock.destroy();
}

// The body written in pieces cut at the given byte offsets ("5,17,300"),
// each in its own write a few milliseconds apart, so that the client reads
// them as separate arrivals: a stream split where a test chooses.
function deliverSplit(res, reply, split, pauseMs) {
  const body = reply.chunks ? Buffer.concat(reply.chunks.map((c) => Buffer.from(c))) : reply.body;
  const cuts = String(split).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n < body.length);
  cuts.sort((a, b) => a - b);
  writeHead(res, reply, true, body.length);
  res.flushHeaders();
  const pieces = [];
  let at = 0;
  for (const c of cuts) { if (c > at) { pieces.push(body.subarray(at, c)); at = c; } }
  pieces.push(body.subarray(at));
  let i = 0;
  const step = () => {
    if (!alive(res)) return;
    if (i >= pieces.length) { res.end(); return; }
    res.write(pieces[i]);
    i += 1;
    setTimeout(step, Number.isFinite(pauseMs) && pauseMs >= 0 ? pauseMs : 3);
  };
  step();
}

// x-mock-pings: the stream's keep-alive events first, one every ping_ms
// (default 100), then its events.
function deliverPings(res, reply, d) {
  const ms = Number.isFinite(d.pingMs) && d.pingMs >= 0 ? d.pingMs : 100;
  writeHead(res, reply, false);
  res.flushHeaders();
  let left = d.pings;
  const step = () => {
    if (!alive(res)) return;
    if (left > 0) {
      left -= 1;
      res.write(reply.ping);
      setTimeout(step, ms);
      return;
    }
    for (const c of reply.chunks) res.write(c);
    res.end();
  };
  step();
}

function deliver(res, reply, d) {
  if (!alive(res)) return;
  const body = reply.body;
  const half = body.subarray(0, Math.floor(body.length / 2));
  switch (d.fault) {
    case 'hang':
      return; // the request stays in flight until the client gives up
    case 'reset_early':
      // before any response byte: the client sees the connection reset
      // with no status line at all
      return resetSocket(res.socket);
    case 'reset': {
      writeHead(res, reply, !reply.chunks);
      res.flushHeaders();
      const sock = res.socket;
      // Let the partial body reach the client before the reset.
      const go = () => setTimeout(() => resetSocket(sock), 50);
      if (half.length > 0) res.write(half, go); else go();
      return;
    }
    case 'truncate': {
      writeHead(res, reply, true, body.length + Math.max(body.length, 16));
      const sock = res.socket;
      // end() closes with a FIN: the client sees fewer bytes than promised.
      res.write(half, () => setTimeout(() => sock.end(), 20));
      return;
    }
    case 'endless': {
      // As fast as the client reads (write's backpressure), until it closes.
      writeHead(res, reply, false);
      const unit = reply.chunks ? reply.ping : Buffer.from(' '.repeat(64));
      const block = Buffer.concat(new Array(Math.ceil(65536 / unit.length)).fill(unit));
      const pump = () => {
        while (alive(res)) {
          if (!res.write(block)) { res.once('drain', pump); return; }
        }
      };
      pump();
      return;
    }
    case 'drip': {
      const ms = Number.isFinite(d.dripMs) && d.dripMs >= 0 ? d.dripMs : 50;
      writeHead(res, reply, !reply.chunks);
      res.flushHeaders();
      let i = 0;
      const step = () => {
        if (!alive(res)) return;
        if (i >= body.length) { res.end(); return; }
        res.write(body.subarray(i, i + 1));
        i += 1;
        setTimeout(step, ms);
      };
      setTimeout(step, ms);
      return;
    }
    default:
      if (d.split !== undefined) return deliverSplit(res, reply, d.split, d.splitPauseMs);
      if (reply.chunks && d.pings > 0) return deliverPings(res, reply, d);
      if (reply.chunks) {
        writeHead(res, reply, false);
        for (const c of reply.chunks) res.write(c);
        res.end();
      } else {
        writeHead(res, reply, true);
        res.end(body);
      }
  }
}

// ---------------------------------------------------------------- barrier

function barrierHold(k, timeoutMs, release, fail, res) {
  const b = state.barrier;
  if (b.held.size === 0) {
    // A new generation; the last one's timer may still run if its clients
    // all gave up, and must not time this one out early.
    clearTimeout(b.timer);
    b.k = k;
    b.started = Date.now();
    b.timeoutMs = timeoutMs;
    b.timer = setTimeout(barrierTimeout, timeoutMs);
  }
  const entry = { release, fail, res };
  b.held.add(entry);
  // A client that gives up no longer counts as in flight.
  res.on('close', () => { b.held.delete(entry); });
  if (b.held.size >= b.k) {
    clearTimeout(b.timer);
    b.timer = null;
    b.disarmed = true;
    const all = Array.from(b.held);
    b.held.clear();
    for (const e of all) e.release();
  }
}

function barrierTimeout() {
  const b = state.barrier;
  const all = Array.from(b.held);
  const msg = `mock barrier: only ${all.length} of ${b.k} requests arrived within ${b.timeoutMs} ms`;
  b.held.clear();
  b.timer = null;
  // The barrier stays armed: the next request starts a new generation.
  for (const e of all) e.fail(msg);
}

function barrierFailAll(msg) {
  const b = state.barrier;
  clearTimeout(b.timer);
  const all = Array.from(b.held);
  b.held.clear();
  for (const e of all) e.fail(msg);
}

// ---------------------------------------------------------------- LLM requests

function logRequest(req, pathOnly, raw) {
  let body = raw.toString('utf8');
  const entry = { seq: ++state.seq, method: req.method, path: pathOnly, url: req.url, headers: allHeaders(req), body, body_bytes: raw.length };
  if (body.length > LOG_BODY_MAX) {
    entry.body = body.slice(0, LOG_BODY_MAX);
    entry.body_truncated = true;
  }
  if (state.log.length < LOG_MAX) {
    state.log.push(entry);
  } else {
    state.log[state.logStart] = entry;
    state.logStart = (state.logStart + 1) % LOG_MAX;
  }
  return body;
}

function orderedLog() {
  return state.log.slice(state.logStart).concat(state.log.slice(0, state.logStart));
}

// x-mock-rpm: a per-minute request limit enforced as providers do, at the
// second's grain: a bucket that holds a second's worth (rpm / 60) and
// refills continuously. A client that sends a minute's worth at once gets
// 429s even under the minute's count.
function takeRateToken(rpm) {
  const now = Date.now() / 1000;
  const perSecond = rpm / 60;
  const capacity = Math.max(1, perSecond);
  let b = state.rateBucket;
  if (!b || b.rpm !== rpm) b = state.rateBucket = { rpm, tokens: capacity, at: now };
  b.tokens = Math.min(capacity, b.tokens + (now - b.at) * perSecond);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

// mulberry32: a small seeded generator, so a seed gives the same draws.
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// x-mock-fault-rate: one draw per request, in arrival order. Returns
// { fault } (undefined: none this time) or { error }.
function drawFault(spec, seedHeader) {
  const rates = [];
  for (const part of String(spec).split(',')) {
    const m = part.trim().match(/^([a-z0-9_]+)=([0-9.]+)$/);
    if (!m || !FAULTS.has(m[1]) || !(Number(m[2]) >= 0 && Number(m[2]) <= 1)) {
      return { error: `mock: bad x-mock-fault-rate "${spec}": want name=probability,... with names from x-mock-fault` };
    }
    rates.push([m[1], Number(m[2])]);
  }
  const seed = seedHeader === undefined ? 1 : Number(seedHeader);
  if (!state.faultRng || state.faultSeed !== seed) {
    state.faultRng = seededRandom(Number.isFinite(seed) ? seed : 1);
    state.faultSeed = seed;
  }
  const u = state.faultRng();
  let cum = 0;
  for (const [name, p] of rates) {
    cum += p;
    if (u < cum) return { fault: name };
  }
  return {};
}

function handleLLM(req, res, pathOnly, provider) {
  state.total += 1;
  // Lets a spec prove connection reuse: N calls over one kept-alive
  // connection count once. Control calls never get here.
  if (req.socket.mockEpoch !== state.epoch) {
    req.socket.mockEpoch = state.epoch;
    state.llmConnections += 1;
  }
  state.paths[pathOnly] = (state.paths[pathOnly] || 0) + 1;
  state.inFlight += 1;
  if (state.inFlight > state.maxInFlight) state.maxInFlight = state.inFlight;
  let done = false;
  const finish = () => { if (!done) { done = true; state.inFlight -= 1; } };
  res.on('finish', finish);
  res.on('close', finish);
  res.on('error', () => {});

  readBody(req, res, provider, (raw) => {
    const text = logRequest(req, pathOnly, raw);
    if (provider === null) {
      return deliver(res, errorReply('openai', 404, `mock: unknown URL ${req.method} ${pathOnly}`, 'not_found'), {});
    }
    if (req.method !== 'POST') {
      return deliver(res, errorReply(provider, 405, `mock: ${req.method} not allowed on ${pathOnly}`, 'invalid'), {});
    }
    let parsed;
    try { parsed = JSON.parse(text); } catch (e) { parsed = undefined; }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) parsed = undefined;

    const h = req.headers;
    let d = headerDirective(h);
    // The script is consumed in arrival order, before any wait.
    const at = scriptFor(parsed);
    if (at >= 0) d = scriptDirective(state.script.splice(at, 1)[0], d);
    if (h['x-mock-fault-rate'] !== undefined) {
      const drawn = drawFault(h['x-mock-fault-rate'], h['x-mock-seed']);
      if (drawn.error) return deliver(res, errorReply(provider, 400, drawn.error, 'invalid'), {});
      if (drawn.fault !== undefined && d.fault === undefined) {
        d.fault = drawn.fault;
        state.injected[drawn.fault] = (state.injected[drawn.fault] || 0) + 1;
      }
    }
    if (d.fault !== undefined && !FAULTS.has(d.fault)) {
      return deliver(res, errorReply(provider, 400, `mock: unknown fault "${d.fault}"`, 'invalid'), {});
    }
    const rpm = Number(h['x-mock-rpm']);
    if (h['x-mock-rpm'] !== undefined && Number.isFinite(rpm) && rpm > 0 && !takeRateToken(rpm)) {
      state.rateLimited += 1;
      return deliver(res, errorReply(provider, 429, `Rate limit reached: ${rpm} requests per minute (mock).`,
        'rate_limit', { 'retry-after': '1' }), {});
    }

    const answer = () => {
      const latency = Number.isFinite(d.latencyMs) && d.latencyMs > 0 ? d.latencyMs : 0;
      const go = () => {
        if (!alive(res)) return;
        buildReply(provider, parsed, d).then((reply) => deliver(res, dropEvents(reply, d.dropEvents), d), (e) => {
          deliver(res, errorReply(provider, 500, `mock: ${e.stack || e}`, 'server'), {});
        });
      };
      if (latency > 0) setTimeout(go, latency); else go();
    };

    const k = Number(h['x-mock-barrier']);
    const structured = parsed !== undefined && structuredOutput(provider, parsed).structured;
    if (h['x-mock-barrier'] !== undefined && Number.isInteger(k) && k > 0 && !structured && !state.barrier.disarmed) {
      const t = Number(h['x-mock-barrier-timeout-ms']);
      const timeoutMs = Number.isFinite(t) && t > 0 ? t : 10000;
      barrierHold(k, timeoutMs, answer, (msg) => {
        if (alive(res)) deliver(res, errorReply(provider, 504, msg, 'timeout'), {});
      }, res);
      return;
    }
    answer();
  });
}

function readBody(req, res, provider, then) {
  const chunks = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (c) => {
    size += c.length;
    if (size > REQUEST_BODY_MAX) { tooBig = true; return; }
    chunks.push(c);
  });
  req.on('end', () => {
    if (tooBig) return deliver(res, errorReply(provider || 'openai', 413, 'mock: request body too large', 'invalid'), {});
    then(Buffer.concat(chunks, size));
  });
  req.on('error', () => {});
}

// ---------------------------------------------------------------- control

function sendJson(res, status, obj) {
  deliver(res, jsonReply(status, obj), {});
}

function statsObject(withLog) {
  const o = {
    pid: process.pid,
    total: state.total,
    rate_limited: state.rateLimited,
    injected: Object.assign({}, state.injected),
    paths: Object.assign({}, state.paths),
    in_flight: state.inFlight,
    max_in_flight: state.maxInFlight,
    connections: state.connections,
    max_connections: state.maxConnections,
    llm_connections: state.llmConnections,
    script_pending: state.script.length,
    barrier: { armed: !state.barrier.disarmed, k: state.barrier.k, held: state.barrier.held.size },
  };
  if (withLog) o.requests = orderedLog();
  return o;
}

function reset() {
  barrierFailAll('mock barrier: reset while this request was held');
  state.total = 0;
  state.rateLimited = 0;
  state.injected = Object.create(null);
  state.faultRng = null;
  state.faultSeed = null;
  state.rateBucket = null;
  state.paths = Object.create(null);
  state.maxInFlight = state.inFlight;
  state.maxConnections = state.connections;
  state.llmConnections = 0;
  state.epoch += 1;
  state.script = [];
  state.log = [];
  state.logStart = 0;
  state.barrier = newBarrier();
}

function handleControl(req, res, pathOnly, query) {
  if (pathOnly === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    return res.end('ok');
  }
  if (pathOnly === '/_mock/stats' && req.method === 'GET') {
    return sendJson(res, 200, statsObject(query.get('log') !== '0'));
  }
  if (pathOnly === '/_mock/requests' && req.method === 'GET') {
    const log = orderedLog();
    const last = query.has('last') ? Number(query.get('last')) : NaN;
    return sendJson(res, 200, Number.isInteger(last) && last >= 0 ? log.slice(Math.max(0, log.length - last)) : log);
  }
  if (pathOnly === '/_mock/reset' && req.method === 'POST') {
    return readBody(req, res, null, () => { reset(); sendJson(res, 200, { ok: true }); });
  }
  if (pathOnly === '/_mock/script' && req.method === 'POST') {
    return readBody(req, res, null, (raw) => {
      let v;
      try { v = JSON.parse(raw.toString('utf8')); } catch (e) {
        return sendJson(res, 400, { error: `mock script: body is not JSON: ${e.message}` });
      }
      let replies = v && v.replies;
      // An empty Lua table may arrive as {} rather than [].
      if (replies && !Array.isArray(replies) && typeof replies === 'object' && Object.keys(replies).length === 0) replies = [];
      if (!Array.isArray(replies) || replies.some((e) => !e || typeof e !== 'object' || Array.isArray(e))) {
        return sendJson(res, 400, { error: 'mock script: want {"replies": [ {..}, ... ]}' });
      }
      const badWhen = replies.find((e) => e.when !== undefined
        && !(Array.isArray(e.when) && e.when.length > 0 && e.when.every((w) => typeof w === 'string' && w !== '')));
      if (badWhen) return sendJson(res, 400, { error: 'mock script: "when" must be a non-empty array of non-empty strings' });
      const bad = replies.find((e) => e.fault !== undefined && !FAULTS.has(String(e.fault)));
      if (bad) return sendJson(res, 400, { error: `mock script: unknown fault "${bad.fault}"` });
      for (const e of replies) {
        if (e.fault !== undefined) e.fault = String(e.fault);
        state.script.push(e);
      }
      sendJson(res, 200, { queued: replies.length, pending: state.script.length });
    });
  }
  sendJson(res, 404, { error: `mock: unknown control call ${req.method} ${pathOnly}` });
}

// ---------------------------------------------------------------- servers

function app(req, res) {
  const q = req.url.indexOf('?');
  const pathOnly = q < 0 ? req.url : req.url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
  if (pathOnly === '/healthz' || pathOnly.startsWith('/_mock/')) return handleControl(req, res, pathOnly, query);
  let provider = null;
  if (pathOnly === '/v1/chat/completions' || pathOnly === '/chat/completions') provider = 'openai';
  else if (pathOnly === '/v1/messages') provider = 'anthropic';
  // Unknown paths are LLM traffic too: logged and counted, so a spec can see
  // that owl called a wrong URL.
  handleLLM(req, res, pathOnly, provider);
}

// Thousands of concurrent keep-alive connections: no connection cap, no
// per-socket request cap, and no timeouts, so a slow test never races an
// idle-socket close.
const serverOptions = {
  keepAliveTimeout: 0,
  requestTimeout: 0,
  headersTimeout: 0,
  maxHeaderSize: 1024 * 1024,
  noDelay: true,
};

function tune(server) {
  server.maxConnections = Infinity;
  server.maxRequestsPerSocket = 0;
  server.keepAliveTimeout = 0;
  server.timeout = 0;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.on('connection', (sock) => {
    sock.setNoDelay(true);
    state.connections += 1;
    if (state.connections > state.maxConnections) state.maxConnections = state.connections;
    sock.on('close', () => { state.connections -= 1; });
  });
  // A client told to use this server as its HTTP proxy (the README spec
  // does, so that no example reaches a host past loopback unseen) asks for
  // a tunnel with CONNECT host:port: logged, counted and refused. A plain
  // http:// request through a proxy arrives with an absolute URL and is
  // logged as any unknown path is.
  server.on('connect', (req, sock) => {
    state.total += 1;
    logRequest(req, req.url, Buffer.alloc(0));
    sock.on('error', () => {});
    sock.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  server.on('clientError', (err, sock) => {
    if (sock.writable && !sock.destroyed && err.code !== 'ECONNRESET') {
      sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    } else {
      sock.destroy();
    }
  });
  return server;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
      server.removeListener('error', reject);
      resolve(server.address().port);
    });
  });
}

async function main() {
  const servers = [tune(http.createServer(serverOptions, app))];
  const lines = [];
  lines.push(`port=${await listen(servers[0], opts.port)}`);
  if (opts.tlsPort !== null) {
    const tls = tune(https.createServer(Object.assign({
      cert: fs.readFileSync(opts.tlsCert),
      key: fs.readFileSync(opts.tlsKey),
    }, serverOptions), app));
    tls.on('tlsClientError', () => {});
    lines.push(`tls_port=${await listen(tls, opts.tlsPort)}`);
  }
  lines.push(`pid=${process.pid}`);
  if (opts.portFile) {
    // Written under a temporary name and renamed, so that a reader never
    // sees half a file.
    const tmp = `${opts.portFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, lines.join('\n') + '\n');
    fs.renameSync(tmp, opts.portFile);
  }
  process.stderr.write(`mock server listening: ${lines.join(' ')}\n`);
}

// ---------------------------------------------------------------- lifetime

// The server must never outlive the process that started it (a crashed
// spec run would otherwise leave it behind).
function exit(why) {
  process.stderr.write(`mock server exiting: ${why}\n`);
  process.exit(0);
}
process.on('SIGTERM', () => exit('SIGTERM'));
process.on('SIGINT', () => exit('SIGINT'));
if (opts.maxLifetime > 0) setTimeout(() => exit(`max lifetime ${opts.maxLifetime} s`), opts.maxLifetime * 1000);
function parentGone(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'ESRCH';
  }
  // A dead parent nobody has reaped yet still answers kill(0) as a zombie.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch (e) {
    return false;
  }
}
if (opts.parentPid > 0) {
  setInterval(() => { if (parentGone(opts.parentPid)) exit(`parent ${opts.parentPid} is gone`); }, 1000);
}
// A bug in one request's handling must not take down every other test.
process.on('uncaughtException', (e) => { process.stderr.write(`mock server: uncaught: ${e.stack || e}\n`); });

main().catch((e) => die(e.stack || String(e)));
