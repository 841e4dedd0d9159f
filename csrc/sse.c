/*
 * sse.c: core.sse.new([opts]), an incremental parser of text/event-stream
 * (WHATWG HTML, "interpreting an event stream"). Bytes go in as they
 * arrive, split anywhere; p:feed returns the events they completed.
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

#define SSE_DEFAULT_MAX 16777216.0 /* 16 MiB */

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

typedef struct sse_parser {
  owl_buf line; /* the line begun but not ended: never holds CR or LF */
  owl_buf data; /* the data buffer: each data value followed by LF */
  owl_buf type; /* the event type buffer; empty means "message" */
  owl_buf id;   /* the last event ID buffer: persists across events */
  size_t max;   /* max_event_bytes */
  double retry; /* the last valid retry field in ms, or -1 */
  int bom;      /* BOM bytes matched at the start of the stream; -1 once past it */
  int skip_lf;  /* the last byte fed was a CR: an LF first in the next feed ends nothing */
  int nevents;  /* events in the array the current feed returns */
  int finished;
  int failed; /* err holds why; feed and finish return it from then on */
  char err[128];
} sse_parser;

static sse_parser *check_parser(lua_State *L) {
  return (sse_parser *)luaL_checkudata(L, 1, OWL_SSE_MT);
}

static void free_buffers(sse_parser *p) {
  owl_buf_free(&p->line);
  owl_buf_free(&p->data);
  owl_buf_free(&p->type);
  owl_buf_free(&p->id);
}

static void oom(lua_State *L) {
  luaL_error(L, "owl.core: out of memory");
}

/* Marks the parser failed; its buffers go at once (they may hold up to
 * max_event_bytes each). Returns 0 so callers can `return fail(...)`. */
static int fail(sse_parser *p, const char *what) {
  snprintf(p->err, sizeof p->err, "sse: %s max_event_bytes (%.0f bytes)", what, (double)p->max);
  p->failed = 1;
  free_buffers(p);
  return 0;
}

static void set_buf(lua_State *L, owl_buf *b, const char *s, size_t n) {
  owl_buf_reset(b);
  if (!owl_buf_append(b, s, n)) oom(L);
}

/* A blank line: an event when the data buffer holds anything, appended to
 * the array at events_idx. The type buffer is reset either way. */
static void dispatch(lua_State *L, sse_parser *p, int events_idx) {
  if (p->data.len > 0) {
    lua_createtable(L, 0, 3);
    if (p->type.len > 0)
      lua_pushlstring(L, p->type.data, p->type.len);
    else
      lua_pushliteral(L, "message");
    lua_setfield(L, -2, "event");
    lua_pushlstring(L, p->data.data, p->data.len - 1); /* less the last LF */
    lua_setfield(L, -2, "data");
    if (p->id.len > 0) {
      lua_pushlstring(L, p->id.data, p->id.len);
      lua_setfield(L, -2, "id");
    }
    lua_rawseti(L, events_idx, ++p->nevents);
  }
  owl_buf_reset(&p->data);
  owl_buf_reset(&p->type);
}

/* retry: only ASCII digits count; a value past 2^53 - 1 saturates there. */
static void set_retry(sse_parser *p, const char *v, size_t n) {
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
static int process_line(lua_State *L, sse_parser *p, const char *s, size_t n, int events_idx) {
  const char *colon, *v;
  size_t nlen, vlen;
  if (n == 0) {
    dispatch(L, p, events_idx);
    return 1;
  }
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
    if (!owl_buf_append(&p->data, v, vlen) || !owl_buf_putc(&p->data, '\n')) oom(L);
  } else if (FIELD_IS("event")) {
    set_buf(L, &p->type, v, vlen);
  } else if (FIELD_IS("id")) {
    if (memchr(v, '\0', vlen) == NULL) set_buf(L, &p->id, v, vlen);
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

/* Runs the bytes [s, end) through the parser, appending the events they
 * complete to the array at events_idx. Returns 0 when the parser failed. */
static int parse(lua_State *L, sse_parser *p, const char *s, const char *end, int events_idx) {
  /* the BOM, which may come split across feeds; a partial match that fails
   * was ordinary text, and holds no CR or LF */
  while (p->bom >= 0 && s < end) {
    if ((unsigned char)*s == BOM[p->bom]) {
      s++;
      if (++p->bom == 3) p->bom = -1;
    } else {
      if (!owl_buf_append(&p->line, BOM, (size_t)p->bom)) oom(L);
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
      if (!owl_buf_append(&p->line, s, n)) oom(L);
      return 1;
    }
    if (p->line.len > 0) {
      if (!owl_buf_append(&p->line, s, n)) oom(L);
      if (!process_line(L, p, p->line.data, p->line.len, events_idx)) return 0;
      owl_buf_reset(&p->line);
    } else if (!process_line(L, p, s, n, events_idx)) {
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

/* nil, the message, and the events completed before the failure. */
static int push_failure(lua_State *L, sse_parser *p, int events_idx) {
  lua_pushnil(L);
  lua_pushstring(L, p->err);
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
  int events_idx;
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "owl.core: sse feed expects a string, not %s", luaL_typename(L, 2));
  if (p->finished) return luaL_error(L, "owl.core: sse feed after finish");
  if (p->failed) return push_failure(L, p, 0);
  s = lua_tolstring(L, 2, &n);
  lua_newtable(L);
  events_idx = lua_gettop(L);
  p->nevents = 0;
  if (!parse(L, p, s, s + n, events_idx)) return push_failure(L, p, events_idx);
  return 1;
}

/* p:finish() -> events: the end of the stream. A line without its
 * terminator and an event without its blank line are dropped, so the array
 * is always empty; finish is idempotent and frees the buffers. */
static int p_finish(lua_State *L) {
  sse_parser *p = check_parser(L);
  if (p->failed) return push_failure(L, p, 0);
  p->finished = 1;
  free_buffers(p);
  lua_newtable(L);
  return 1;
}

/* p:retry() -> the reconnection time the stream asked for (ms), or nil. */
static int p_retry(lua_State *L) {
  sse_parser *p = check_parser(L);
  if (p->retry < 0) {
    lua_pushnil(L);
    return 1;
  }
#if OWL_HAS_INTEGERS
  lua_pushinteger(L, (lua_Integer)p->retry);
#else
  lua_pushnumber(L, (lua_Number)p->retry);
#endif
  return 1;
}

static int p_gc(lua_State *L) {
  free_buffers(check_parser(L));
  return 0;
}

/* core.sse.new([{ max_event_bytes = n }]) */
static int l_new(lua_State *L) {
  double max = SSE_DEFAULT_MAX;
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
  memset(p, 0, sizeof *p); /* empty buffers: __gc has nothing to free yet */
  p->max = max >= (double)SIZE_MAX ? SIZE_MAX : (size_t)max;
  p->retry = -1;
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
