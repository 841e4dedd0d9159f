/*
 * json_encode.c: Lua values to JSON text, and the core.json table.
 *
 * owl_json_encode appends to a buffer its caller owns and reports failure as
 * a message, never as a Lua error (only a memory error can unwind through
 * it), so the C callers building request bodies keep control of their own
 * cleanup. The Lua-facing encode wraps it in a scratch buffer and raises.
 *
 * Tables are read raw: metamethods (__index, __pairs) are not consulted,
 * because a request body must be exactly the data, and because no Lua code
 * may run while the output buffer is half written.
 */
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define SCRATCH_MT "owl.json.scratch"

typedef struct enc {
  lua_State *L;
  owl_buf *out;
  int array_mt, rope_mt; /* absolute stack indices of the two metatables */
  int max_depth;
  char *err;
  size_t errlen;
  /* Where a failure happened ("$.messages[2].content"), built while the
   * recursion unwinds: each level prepends its key, so the path costs
   * nothing unless something fails. */
  char path[160];
  size_t pathlen;
  int path_cut;
} enc;

/* 0: the byte is copied as is; otherwise the letter after the backslash,
 * 'u' meaning \u00XX. Bytes >= 0x80 pass through: UTF-8 stays UTF-8. */
static const char esc_letter[256] = {
  'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
  'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  0,   0,   '"', [0x5c] = '\\',
};

static const char hex_digit[] = "0123456789abcdef";

static int enc_fail(enc *e, const char *fmt, ...) {
  va_list ap;
  if (e->errlen == 0) return 0;
  va_start(ap, fmt);
  vsnprintf(e->err, e->errlen, fmt, ap);
  va_end(ap);
  return 0;
}

static int enc_oom(enc *e) { return enc_fail(e, "json: out of memory"); }

/* Appends n bytes; the output is NUL-terminated only at the end (encode_at). */
static inline int put(enc *e, const char *s, size_t n) {
  owl_buf *b = e->out;
  if (b->cap - b->len <= n && !owl_buf_reserve(b, n)) return enc_oom(e);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  return 1;
}

/*
 * Appends s escaped, without quotes. Room for s as is plus a closing quote is
 * reserved up front; an escape (up to 6 bytes for 1) tops that up. So the
 * loop copies runs of plain bytes with memcpy and checks capacity only at
 * escapes, and the invariant "room for the rest of s and a quote" holds.
 */
static int put_escaped(enc *e, const char *s, size_t n) {
  owl_buf *b = e->out;
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  if (!owl_buf_reserve(b, n + 1)) return enc_oom(e);
  while (p < end) {
    const unsigned char *run = p;
    char c;
    while (end - p >= 8 && !owl_json_special8(p)) p += 8;
    while (p < end && !esc_letter[*p]) p++;
    if (p > run) {
      memcpy(b->data + b->len, run, (size_t)(p - run));
      b->len += (size_t)(p - run);
    }
    if (p == end) break;
    if (b->cap - b->len < (size_t)(end - p) + 7 && !owl_buf_reserve(b, (size_t)(end - p) + 6)) return enc_oom(e);
    c = esc_letter[*p];
    b->data[b->len++] = '\\';
    b->data[b->len++] = c;
    if (c == 'u') {
      b->data[b->len++] = '0';
      b->data[b->len++] = '0';
      b->data[b->len++] = hex_digit[*p >> 4];
      b->data[b->len++] = hex_digit[*p & 15];
    }
    p++;
  }
  return 1;
}

static int put_quoted(enc *e, const char *s, size_t n) {
  return put(e, "\"", 1) && put_escaped(e, s, n) && put(e, "\"", 1);
}

/* Digits of u written backwards ending at end; returns the first digit.
 * Integers never go through snprintf: it is slower, and a locale could
 * group digits. */
static char *fmt_digits(char *end, unsigned long long u) {
  do {
    *--end = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u);
  return end;
}

/*
 * snprintf and strtod follow LC_NUMERIC, which a host (Neovim, a game) may
 * have set to a locale whose decimal point is a comma; JSON wants '.'.
 * Switching the locale is not ours to do (it is process-wide and not
 * thread-safe), so the text is converted from the locale's decimal point
 * after formatting. Returns the new length.
 */
static size_t dot_from_locale(char *s, size_t n) {
  const char *dp = localeconv()->decimal_point;
  size_t dl;
  char *at;
  if (dp == NULL || (dp[0] == '.' && dp[1] == '\0') || dp[0] == '\0') return n;
  at = strstr(s, dp);
  if (at == NULL) return n;
  dl = strlen(dp);
  *at = '.';
  memmove(at + 1, at + dl, n - (size_t)(at - s) - dl + 1);
  return n - dl + 1;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as d (%.17g always
 * does), so doubles round-trip exactly without printing noise digits for
 * the common short ones. The round-trip test runs before dot_from_locale,
 * in the locale snprintf used, so the two agree. */
static size_t fmt_double(char *buf, size_t size, double d) {
  int prec, n = 0;
  for (prec = 15; prec <= 17; prec++) {
    n = snprintf(buf, size, "%.*g", prec, d);
    if (prec == 17 || strtod(buf, NULL) == d) break;
  }
  if (n < 0) n = 0;
  if ((size_t)n >= size) n = (int)size - 1;
  return dot_from_locale(buf, (size_t)n);
}

/* Number text into buf (at least 48 bytes); returns its start. On 5.3+ an
 * integral float keeps a ".0" so that it decodes as a float again. NaN and
 * infinities are the caller's to reject. */
static const char *fmt_number(lua_State *L, int idx, char *buf, size_t size, size_t *len) {
  char *end = buf + size, *s;
  double d;
#if OWL_HAS_INTEGERS
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    s = fmt_digits(end, i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i);
    if (i < 0) *--s = '-';
    *len = (size_t)(end - s);
    return s;
  }
#endif
  d = (double)lua_tonumber(L, idx);
  if (d > -1e15 && d < 1e15 && d == (double)(long long)d) {
    /* the common integral case, without snprintf */
    long long i = (long long)d;
#if OWL_HAS_INTEGERS
    *--end = '0';
    *--end = '.';
#endif
    s = fmt_digits(end, i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i);
    if (signbit(d)) *--s = '-'; /* also keeps the sign of -0.0 */
    *len = (size_t)(buf + size - s);
    return s;
  }
  *len = fmt_double(buf, size - 3, d);
#if OWL_HAS_INTEGERS
  if (strpbrk(buf, ".eEn") == NULL) { /* 1e16 prints as 10000000000000000 */
    buf[(*len)++] = '.';
    buf[(*len)++] = '0';
    buf[*len] = '\0';
  }
#endif
  return buf;
}

static int enc_number(enc *e, int idx) {
  char buf[64];
  size_t n;
  const char *s;
  if (!owl_isinteger(e->L, idx)) {
    double d = (double)lua_tonumber(e->L, idx);
    if (d != d) return enc_fail(e, "json: cannot encode NaN");
    if (d == HUGE_VAL || d == -HUGE_VAL) return enc_fail(e, "json: cannot encode %s", d > 0 ? "inf" : "-inf");
  }
  s = fmt_number(e->L, idx, buf, sizeof buf, &n);
  return put(e, s, n);
}

/* --- error paths ------------------------------------------------------- */

static void path_prepend(enc *e, const char *seg, size_t n) {
  size_t keep = e->pathlen, room = sizeof e->path - 1;
  if (n > room) n = room;
  if (n + keep > room) { /* keep the outer segments: they say where to look */
    keep = room - n;
    e->path_cut = 1;
  }
  memmove(e->path + n, e->path, keep);
  memcpy(e->path, seg, n);
  e->pathlen = n + keep;
  e->path[e->pathlen] = '\0';
}

static void path_key(enc *e, int key) {
  char seg[80];
  size_t n;
  const char *k = lua_tolstring(e->L, key, &n), *p;
  int ident = n > 0 && n <= 40 && !(k[0] >= '0' && k[0] <= '9');
  for (p = k; ident && p < k + n; p++)
    ident = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
  if (ident)
    snprintf(seg, sizeof seg, ".%s", k);
  else
    snprintf(seg, sizeof seg, "[\"%.40s%s\"]", k, n > 40 ? "..." : "");
  path_prepend(e, seg, strlen(seg));
}

static void path_index(enc *e, int i) {
  char seg[24];
  snprintf(seg, sizeof seg, "[%d]", i);
  path_prepend(e, seg, strlen(seg));
}

/* A table key for an error message: "name", 3, 1.5, or its type. */
static void describe_key(lua_State *L, int idx, char *buf, size_t size) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *k = lua_tolstring(L, idx, &n);
    snprintf(buf, size, "\"%.40s%s\"", k, n > 40 ? "..." : "");
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    char num[64];
    size_t n;
    double d = (double)lua_tonumber(L, idx);
    if (d != d || d == HUGE_VAL || d == -HUGE_VAL) {
      snprintf(buf, size, "%s", d != d ? "nan" : d > 0 ? "inf" : "-inf");
    } else {
      const char *s = fmt_number(L, idx, num, sizeof num, &n);
      snprintf(buf, size, "%.*s", (int)n, s);
    }
  } else {
    snprintf(buf, size, "of type %s", luaL_typename(L, idx));
  }
}

/* --- tables ------------------------------------------------------------ */

static int enc_value(enc *e, int idx, int depth);

/* A positive integer key (as a number, exact below 2^53)? */
static int key_index(lua_State *L, int idx, double *k) {
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
#if OWL_HAS_INTEGERS
  /* a float key with an integral value is stored as an integer key */
  if (!lua_isinteger(L, idx) || lua_tointeger(L, idx) < 1) return 0;
  *k = (double)lua_tointeger(L, idx);
#else
  *k = (double)lua_tonumber(L, idx);
  if (!(*k >= 1 && *k < 9.2e18) || *k != (double)(long long)*k) return 0;
#endif
  return 1;
}

/* Counts a plain table's keys, which must be exactly 1..n; returns -1 with
 * the error set otherwise. */
static long array_count(enc *e, int idx) {
  lua_State *L = e->L;
  char key[80];
  double k, max = 0;
  long n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!key_index(L, -1, &k)) {
      describe_key(L, -1, key, sizeof key);
      if (lua_type(L, -1) == LUA_TSTRING)
        return enc_fail(e, "json: cannot encode a table with mixed keys (key %s beside array indices)", key), -1;
      return enc_fail(e, "json: cannot encode a table with key %s (keys must be all strings, or exactly 1..n)", key), -1;
    }
    if (k > max) max = k;
    n++;
  }
  if (max != (double)n) { /* sparse: name a key beyond n */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      if (key_index(L, -1, &k) && k > (double)n) break;
    }
    describe_key(L, -1, key, sizeof key);
    return enc_fail(e, "json: cannot encode a table with sparse keys (key %s, but %ld entries: keys must be exactly 1..n)", key, n), -1;
  }
  if (n > 0x7fffffffL) return enc_fail(e, "json: array too long"), -1;
  return n;
}

static int enc_array(enc *e, int idx, long n, int depth) {
  lua_State *L = e->L;
  int i;
  if (!put(e, "[", 1)) return 0;
  for (i = 1; i <= (int)n; i++) {
    if (i > 1 && !put(e, ",", 1)) return 0;
    lua_rawgeti(L, idx, i);
    if (!enc_value(e, lua_gettop(L), depth)) {
      path_index(e, i);
      return 0;
    }
    lua_pop(L, 1);
  }
  return put(e, "]", 1);
}

/* The first key (a string) and its value are already on the stack: the
 * caller read them to tell an object from an array. */
static int enc_object(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  int first = 1;
  if (!put(e, "{", 1)) return 0;
  do {
    int value = lua_gettop(L);
    size_t kn;
    const char *k;
    if (lua_type(L, value - 1) != LUA_TSTRING) {
      char key[80];
      describe_key(L, value - 1, key, sizeof key);
      if (lua_type(L, value - 1) == LUA_TNUMBER)
        return enc_fail(e, "json: cannot encode a table with mixed keys (key %s beside string keys)", key);
      return enc_fail(e, "json: cannot encode a table with key %s (keys must be all strings, or exactly 1..n)", key);
    }
    k = lua_tolstring(L, value - 1, &kn);
    if (!first && !put(e, ",", 1)) return 0;
    first = 0;
    if (!put_quoted(e, k, kn) || !put(e, ":", 1)) return 0;
    if (!enc_value(e, value, depth)) {
      path_key(e, value - 1);
      return 0;
    }
    lua_pop(L, 1);
  } while (lua_next(L, idx));
  return put(e, "}", 1);
}

static int put_member(enc *e, int key, int value, int first, int depth) {
  size_t kn;
  const char *k = lua_tolstring(e->L, key, &kn);
  if (!first && !put(e, ",", 1)) return 0;
  if (!put_quoted(e, k, kn) || !put(e, ":", 1)) return 0;
  if (!enc_value(e, value, depth)) {
    path_key(e, key);
    return 0;
  }
  return 1;
}

/* An object marked by json.object(t, keys): the listed keys first, in
 * their order, then any others. Key order is meaning for an LLM: a
 * structured-output model writes properties in schema order, so the
 * objective comes before the subtasks it explains. order: the stack index
 * of the key list. */
static int enc_ordered(enc *e, int idx, int order, int depth) {
  lua_State *L = e->L;
  size_t n = owl_rawlen(L, order), i;
  int first = 1;
  if (!lua_checkstack(L, 4)) return enc_fail(e, "json: Lua stack exhausted at nesting depth %d", depth);
  if (!put(e, "{", 1)) return 0;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, order, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING) return enc_fail(e, "json: key order entry %d is not a string", (int)i);
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);
    if (!lua_isnil(L, -1)) {
      if (!put_member(e, lua_gettop(L) - 1, lua_gettop(L), first, depth)) return 0;
      first = 0;
    }
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int listed = 0;
    if (lua_type(L, -2) != LUA_TSTRING) {
      char key[80];
      describe_key(L, lua_gettop(L) - 1, key, sizeof key);
      return enc_fail(e, "json: cannot encode an ordered object with key %s (keys must be strings)", key);
    }
    for (i = 1; i <= n && !listed; i++) {
      lua_rawgeti(L, order, (int)i);
      listed = lua_rawequal(L, -1, -3);
      lua_pop(L, 1);
    }
    if (!listed) {
      if (!put_member(e, lua_gettop(L) - 1, lua_gettop(L), first, depth)) return 0;
      first = 0;
    }
    lua_pop(L, 1);
  }
  return put(e, "}", 1);
}

/* A rope is one JSON string: its pieces are escaped one after the other
 * straight from the Lua strings, so no joined copy is ever made. */
static int enc_rope(enc *e, int idx) {
  lua_State *L = e->L;
  size_t n = owl_rawlen(L, idx), i, len;
  const char *s;
  if (n > 0x7fffffff) return enc_fail(e, "json: rope too long");
  if (!put(e, "\"", 1)) return 0;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return enc_fail(e, "json: rope piece %d is a %s, not a string", (int)i, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (!put_escaped(e, s, len)) return 0;
    lua_pop(L, 1);
  }
  return put(e, "\"", 1);
}

static int enc_table(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  long n;
  if (depth > e->max_depth) return enc_fail(e, "json: nesting deeper than %d (a cycle?)", e->max_depth);
  /* a level holds a key and a value, plus a metatable for a moment */
  if (!lua_checkstack(L, 3)) return enc_fail(e, "json: Lua stack exhausted at nesting depth %d", depth);
  if (lua_getmetatable(L, idx)) {
    int kind = lua_rawequal(L, -1, e->array_mt) ? 1 : lua_rawequal(L, -1, e->rope_mt) ? 2 : 0;
    lua_pop(L, 1);
    if (kind == 1) {
      size_t len = owl_rawlen(L, idx);
      if (len > 0x7fffffff) return enc_fail(e, "json: array too long");
      return enc_array(e, idx, (long)len, depth);
    }
    if (kind == 2) return enc_rope(e, idx);
    lua_getmetatable(L, idx);
    lua_pushliteral(L, "__jsonorder");
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) {
      int ok = enc_ordered(e, idx, lua_gettop(L), depth);
      if (ok) lua_pop(L, 2);
      return ok;
    }
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  if (!lua_next(L, idx)) return put(e, "{}", 2);
  if (lua_type(L, -2) == LUA_TSTRING) return enc_object(e, idx, depth);
  lua_pop(L, 2);
  if ((n = array_count(e, idx)) < 0) return 0;
  return enc_array(e, idx, n, depth);
}

static int enc_value(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return put(e, "null", 4);
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? put(e, "true", 4) : put(e, "false", 5);
  case LUA_TNUMBER:
    return enc_number(e, idx);
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return put_quoted(e, s, n);
  }
  case LUA_TTABLE:
    return enc_table(e, idx, depth + 1);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return put(e, "null", 4);
    return enc_fail(e, "json: cannot encode a light userdata other than json.null");
  default:
    return enc_fail(e, "json: cannot encode a %s value", luaL_typename(L, idx));
  }
}

/* On failure out is back to its length on entry and err says what and
 * where. */
static int encode_at(lua_State *L, int idx, owl_buf *out, int max_depth, char *err, size_t errlen) {
  enc e;
  size_t start = out->len;
  int top = lua_gettop(L), ok;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.out = out;
  e.max_depth = max_depth > OWL_JSON_DEPTH_CEILING ? OWL_JSON_DEPTH_CEILING : max_depth;
  e.err = err;
  e.errlen = err ? errlen : 0;
  if (e.errlen) err[0] = '\0';
  idx = owl_absindex(L, idx);
  if (!lua_checkstack(L, 4)) return enc_fail(&e, "json: Lua stack exhausted");
  owl_json_push_mt(L, OWL_JSON_ARRAY_MT);
  e.array_mt = lua_gettop(L);
  owl_json_push_mt(L, OWL_JSON_ROPE_MT);
  e.rope_mt = lua_gettop(L);
  ok = enc_value(&e, idx, 0);
  lua_settop(L, top);
  if (!ok) {
    out->len = start;
    if (e.pathlen && e.errlen) {
      size_t used = strlen(err);
      snprintf(err + used, e.errlen - used, " at $%s%s", e.path, e.path_cut ? "..." : "");
    }
  }
  if (out->cap) out->data[out->len] = '\0';
  return ok;
}

int owl_json_encode(lua_State *L, int idx, owl_buf *out, char *err, size_t errlen) {
  return encode_at(L, idx, out, OWL_JSON_MAX_DEPTH, err, errlen);
}

/* --- shared with json_decode.c ---------------------------------------- */

void owl_json_push_mt(lua_State *L, const char *key) {
  if (luaL_newmetatable(L, key)) {
    /* a marker for whoever inspects the table; owl itself compares the
     * metatable by identity */
    lua_pushstring(L, key);
    lua_setfield(L, -2, "__name");
  }
}

static int scratch_gc(lua_State *L) {
  owl_buf_free((owl_buf *)lua_touserdata(L, 1));
  return 0;
}

owl_buf *owl_json_scratch(lua_State *L) {
  owl_buf *b = (owl_buf *)owl_newuserdata(L, sizeof *b);
  b->data = NULL;
  b->len = b->cap = 0;
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

void owl_json_read_opts(lua_State *L, int arg, owl_json_opt *opts, int n) {
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    char msg[160];
    const char *name;
    double v;
    int i;
    if (lua_type(L, -2) != LUA_TSTRING) {
      luaL_argerror(L, arg, "option names must be strings");
      return;
    }
    name = lua_tostring(L, -2);
    for (i = 0; i < n && strcmp(name, opts[i].name) != 0; i++) continue;
    if (i == n) {
      snprintf(msg, sizeof msg, "unknown option '%.40s'", name);
      luaL_argerror(L, arg, msg);
      return;
    }
    v = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : -HUGE_VAL;
    if (!(v >= opts[i].min && v <= opts[i].max) || v != (double)(long long)v) {
      snprintf(msg, sizeof msg, "option '%s' must be an integer from %.0f to %.0f, got %s", opts[i].name,
               opts[i].min, opts[i].max, lua_type(L, -1) == LUA_TNUMBER ? "a number out of range" : luaL_typename(L, -1));
      luaL_argerror(L, arg, msg);
      return;
    }
    opts[i].value = v;
    lua_pop(L, 1);
  }
}

/* --- core.json --------------------------------------------------------- */

static int l_encode(lua_State *L) {
  owl_json_opt opts[] = {{"max_depth", 1, OWL_JSON_DEPTH_CEILING, OWL_JSON_MAX_DEPTH}};
  char err[256];
  owl_buf *b;
  int ok;
  luaL_checkany(L, 1);
  owl_json_read_opts(L, 2, opts, 1);
  b = owl_json_scratch(L);
  ok = encode_at(L, 1, b, (int)opts[0].value, err, sizeof err);
  if (ok) lua_pushlstring(L, b->data ? b->data : "", b->len); /* a memory error here: __gc frees b */
  owl_buf_free(b);
  if (!ok) return luaL_error(L, "%s", err);
  return 1;
}

static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  owl_json_push_mt(L, OWL_JSON_ARRAY_MT);
  lua_setmetatable(L, 1);
  return 1;
}

static int l_is_array(lua_State *L) {
  int yes = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    owl_json_push_mt(L, OWL_JSON_ARRAY_MT);
    yes = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

/* json.object([t,] keys): marks t (or a new table) as an object whose keys
 * encode in the order of the array keys, others after them. */
static int l_object(lua_State *L) {
  size_t i, n;
  if (lua_gettop(L) < 2) {
    lua_newtable(L);
    lua_insert(L, 1);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  n = owl_rawlen(L, 2);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "json.object: keys[%d] must be a string", (int)i);
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "__jsonorder");
  lua_pushliteral(L, "owl.json.object");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, 1);
  lua_settop(L, 1);
  return 1;
}

static int l_rope(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  owl_json_push_mt(L, OWL_JSON_ROPE_MT);
  lua_setmetatable(L, 1);
  return 1;
}

void owl_json_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"encode", l_encode}, {"decode", owl_json_decode_lua}, {"array", l_array},
    {"is_array", l_is_array}, {"rope", l_rope}, {"object", l_object}, {NULL, NULL},
  };
  lua_newtable(L);
  owl_setfuncs(L, fns, 0);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  owl_json_push_mt(L, OWL_JSON_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  owl_json_push_mt(L, OWL_JSON_ROPE_MT);
  lua_pop(L, 1);
  lua_setfield(L, -2, "json");
}
