/*
 * sse.c: an incremental parser of text/event-stream (WHATWG HTML,
 * "interpreting an event stream"), in plain C (sse.h) for a transfer's
 * write callback (spec.sse), and as core.sse.new([opts]) for Lua. Bytes go
 * in as they arrive, split anywhere; p:feed returns the events they
 * completed.
 *
 * The parser works on bytes and never rescans: the line begun in an earlier
 * feed is kept in `line`, which by construction holds no CR or LF, so each
 * byte is looked at once, when it arrives. A line that ends in the feed it
 * began in is read in place; only a line split across feeds is copied into
 * `line`. Memory is bounded by max_event_bytes: a line or an event's data
 * past it fails the parser instead of growing.
 *
 * The one departure from WHATWG: values are not UTF-8 decoded, so an invalid
 * sequence passes through as it came (a decoder would put U+FFFD there).
 * Splitting lines on bytes is otherwise the same, since CR and LF never occur
 * inside a UTF-8 sequence, and a character split across feeds is whole again
 * in the line buffer.
 */
#include <stdint.h>
#include <string.h>

#include "owl.h"
#include "sse.h"

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

/* ---- the parser: plain C, no Lua (a libcurl callback feeds it too) ----- */

void owl_sse_free(owl_sse *p) {
  owl_buf_free(&p->line);
  owl_buf_free(&p->data);
  owl_buf_free(&p->type);
  owl_buf_free(&p->id);
}

void owl_sse_init(owl_sse *p, size_t max_event_bytes) {
  memset(p, 0, sizeof *p); /* empty buffers: nothing to free yet */
  p->max = max_event_bytes;
  p->retry = -1;
}

/* Marks the parser failed; its buffers go at once (they may hold up to
 * max_event_bytes each). Returns 0 so callers can `return fail(...)`. */
static int fail(owl_sse *p, const char *what) {
  snprintf(p->err, sizeof p->err, "sse: %s max_event_bytes (%.0f bytes)", what, (double)p->max);
  p->failed = 1;
  owl_sse_free(p);
  return 0;
}

static int fail_oom(owl_sse *p) {
  snprintf(p->err, sizeof p->err, "sse: out of memory");
  p->failed = 1;
  p->oom = 1;
  owl_sse_free(p);
  return 0;
}

static int set_buf(owl_sse *p, owl_buf *b, const char *s, size_t n) {
  owl_buf_reset(b);
  return owl_buf_append(b, s, n) ? 1 : fail_oom(p);
}

/* A blank line: an event when the data buffer holds anything, handed to
 * the sink. The type buffer is reset either way. */
static int dispatch(owl_sse *p, owl_sse_sink sink, void *ud) {
  if (p->data.len > 0) {
    owl_sse_event ev;
    ev.type = p->type.len > 0 ? p->type.data : "message";
    ev.type_len = p->type.len > 0 ? p->type.len : 7;
    ev.data = p->data.data;
    ev.data_len = p->data.len - 1; /* less the last LF */
    ev.id = p->id.len > 0 ? p->id.data : NULL;
    ev.id_len = p->id.len;
    if (!sink(ud, &ev)) return fail_oom(p);
  }
  owl_buf_reset(&p->data);
  owl_buf_reset(&p->type);
  return 1;
}

/* retry: only ASCII digits count; a value past 2^53 - 1 saturates there. */
static void set_retry(owl_sse *p, const char *v, size_t n) {
  double ms = 0;
  size_t i;
  if (n == 0) return;
  for (i = 0; i < n; i++)
    if (v[i] < '0' || v[i] > '9') return;
  for (i = 0; i < n && ms <= 9007199254740991.0; i++) ms = ms * 10 + (v[i] - '0');
  p->retry = ms > 9007199254740991.0 ? 9007199254740991.0 : ms;
}

#define FIELD_IS(name) (nlen == sizeof(name) - 1 && memcmp(s, name, nlen) == 0)

/* One complete line (no terminator). Returns 0 when the parser failed. */
static int process_line(owl_sse *p, const char *s, size_t n, owl_sse_sink sink, void *ud) {
  const char *colon, *v;
  size_t nlen, vlen;
  if (n == 0) return dispatch(p, sink, ud);
  if (s[0] == ':') return 1; /* a comment */
  colon = (const char *)memchr(s, ':', n);
  if (colon != NULL) {
    nlen = (size_t)(colon - s);
    v = colon + 1;
    vlen = n - nlen - 1;
    if (vlen > 0 && v[0] == ' ') {
      v++;
      vlen--;
    }
  } else { /* the whole line is the name, the value empty */
    nlen = n;
    v = s + n;
    vlen = 0;
  }
  if (FIELD_IS("data")) {
    /* dispatched, the data would be what the buffer holds now (its last
     * LF becoming a separator) plus this value: data.len + vlen bytes */
    if (vlen > p->max || p->data.len > p->max - vlen) return fail(p, "an event's data is larger than");
    if (!owl_buf_append(&p->data, v, vlen) || !owl_buf_append(&p->data, "\n", 1)) return fail_oom(p);
  } else if (FIELD_IS("event")) {
    return set_buf(p, &p->type, v, vlen);
  } else if (FIELD_IS("id")) {
    if (memchr(v, '\0', vlen) == NULL) return set_buf(p, &p->id, v, vlen);
  } else if (FIELD_IS("retry")) {
    set_retry(p, v, vlen);
  }
  return 1;
}

#undef FIELD_IS

/* Does any of the 8 bytes at p hold CR or LF? (v - 0x01..) & ~v & 0x80..
 * is nonzero exactly when v has a zero byte; v is p xor'ed with each. */
static int has_eol8(const char *p) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t x, lf, cr;
  memcpy(&x, p, 8); /* an unaligned load, without undefined behaviour */
  lf = x ^ (ones * '\n');
  cr = x ^ (ones * '\r');
  return (((lf - ones) & ~lf) | ((cr - ones) & ~cr)) & highs ? 1 : 0;
}

/* The first CR or LF in [s, end), or NULL. Long lines of model output are
 * the common case: clean 8-byte blocks are skipped whole. */
static const char *find_eol(const char *s, const char *end) {
  while (end - s >= 8 && !has_eol8(s)) s += 8;
  for (; s < end; s++)
    if (*s == '\n' || *s == '\r') return s;
  return NULL;
}

int owl_sse_feed(owl_sse *p, const char *s, size_t len, owl_sse_sink sink, void *ud) {
  const char *end = s + len;
  if (p->failed) return 0;
  /* the BOM, which may come split across feeds; a partial match that fails
   * was ordinary text, and holds no CR or LF */
  while (p->bom >= 0 && s < end) {
    if ((unsigned char)*s == BOM[p->bom]) {
      s++;
      if (++p->bom == 3) p->bom = -1;
    } else {
      if (!owl_buf_append(&p->line, BOM, (size_t)p->bom)) return fail_oom(p);
      p->bom = -1;
    }
  }
  if (p->skip_lf && s < end) {
    if (*s == '\n') s++;
    p->skip_lf = 0;
  }
  while (s < end) {
    const char *eol = find_eol(s, end);
    size_t n = (size_t)((eol ? eol : end) - s);
    if (n > p->max || p->line.len > p->max - n) return fail(p, "a line is longer than");
    if (eol == NULL) { /* the line goes on in a later feed */
      if (!owl_buf_append(&p->line, s, n)) return fail_oom(p);
      return 1;
    }
    if (p->line.len > 0) {
      if (!owl_buf_append(&p->line, s, n)) return fail_oom(p);
      if (!process_line(p, p->line.data, p->line.len, sink, ud)) return 0;
      owl_buf_reset(&p->line);
    } else if (!process_line(p, s, n, sink, ud)) {
      return 0;
    }
    if (*eol == '\r') {
      if (eol + 1 == end)
        p->skip_lf = 1;
      else if (eol[1] == '\n')
        eol++;
    }
    s = eol + 1;
  }
  return 1;
}

/* ---- core.sse: the parser as a Lua object ------------------------------ */

typedef struct sse_parser {
  owl_sse p;
  int finished;
} sse_parser;

typedef struct {
  lua_State *L;
  int events_idx;
  int n;
} lua_sink;

/* Appends the event to the Lua array being returned. A Lua memory error
 * here unwinds through owl_sse_feed, which holds nothing unowned. */
static int push_event(void *ud, const owl_sse_event *ev) {
  lua_sink *k = (lua_sink *)ud;
  lua_State *L = k->L;
  lua_createtable(L, 0, 3);
  lua_pushlstring(L, ev->type, ev->type_len);
  lua_setfield(L, -2, "event");
  lua_pushlstring(L, ev->data, ev->data_len);
  lua_setfield(L, -2, "data");
  if (ev->id) {
    lua_pushlstring(L, ev->id, ev->id_len);
    lua_setfield(L, -2, "id");
  }
  lua_rawseti(L, k->events_idx, ++k->n);
  return 1;
}

static sse_parser *check_parser(lua_State *L) {
  return (sse_parser *)luaL_checkudata(L, 1, OWL_SSE_MT);
}

/* nil, the message, and the events completed before the failure. */
static int push_failure(lua_State *L, sse_parser *p, int events_idx) {
  if (p->p.oom) return luaL_error(L, "owl.core: out of memory");
  lua_pushnil(L);
  lua_pushstring(L, p->p.err);
  if (events_idx)
    lua_pushvalue(L, events_idx);
  else
    lua_newtable(L);
  return 3;
}

/* p:feed(bytes) -> events, or nil, message, events (see push_failure). */
static int p_feed(lua_State *L) {
  sse_parser *p = check_parser(L);
  const char *s;
  size_t n;
  lua_sink k;
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "owl.core: sse feed expects a string, not %s", luaL_typename(L, 2));
  if (p->finished) return luaL_error(L, "owl.core: sse feed after finish");
  if (p->p.failed) return push_failure(L, p, 0);
  s = lua_tolstring(L, 2, &n);
  lua_newtable(L);
  k.L = L;
  k.events_idx = lua_gettop(L);
  k.n = 0;
  if (!owl_sse_feed(&p->p, s, n, push_event, &k)) return push_failure(L, p, k.events_idx);
  return 1;
}

/* p:finish() -> events: the end of the stream. A line without its
 * terminator and an event without its blank line are dropped, so the array
 * is always empty; finish is idempotent and frees the buffers. */
static int p_finish(lua_State *L) {
  sse_parser *p = check_parser(L);
  if (p->p.failed) return push_failure(L, p, 0);
  p->finished = 1;
  owl_sse_free(&p->p);
  lua_newtable(L);
  return 1;
}

/* p:retry() -> the reconnection time the stream asked for (ms), or nil. */
static int p_retry(lua_State *L) {
  sse_parser *p = check_parser(L);
  if (p->p.retry < 0) {
    lua_pushnil(L);
    return 1;
  }
#if OWL_HAS_INTEGERS
  lua_pushinteger(L, (lua_Integer)p->p.retry);
#else
  lua_pushnumber(L, (lua_Number)p->p.retry);
#endif
  return 1;
}

static int p_gc(lua_State *L) {
  owl_sse_free(&check_parser(L)->p);
  return 0;
}

/* core.sse.new([{ max_event_bytes = n }]) */
static int l_new(lua_State *L) {
  double max = (double)OWL_SSE_DEFAULT_MAX;
  sse_parser *p;
  if (!lua_isnoneornil(L, 1)) {
    if (lua_type(L, 1) != LUA_TTABLE)
      return luaL_error(L, "owl.core: sse.new options must be a table, not %s", luaL_typename(L, 1));
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_error(L, "owl.core: sse.new option names must be strings, not %s", luaL_typename(L, -2));
      if (strcmp(lua_tostring(L, -2), "max_event_bytes") != 0)
        return luaL_error(L, "owl.core: sse.new: unknown option '%s'", lua_tostring(L, -2));
      max = owl_checkint(L, -1, 1, 9007199254740991.0, "sse.new max_event_bytes");
      lua_pop(L, 1);
    }
  }
  p = (sse_parser *)owl_newuserdata(L, sizeof *p);
  owl_sse_init(&p->p, max >= (double)SIZE_MAX ? SIZE_MAX : (size_t)max);
  p->finished = 0;
  owl_setmetatable(L, OWL_SSE_MT);
  return 1;
}

void owl_sse_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"feed", p_feed}, {"finish", p_finish}, {"retry", p_retry}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", p_gc}, {NULL, NULL}};
  owl_newclass(L, OWL_SSE_MT, methods, meta);
  lua_newtable(L);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "new");
  lua_setfield(L, -2, "sse");
}
