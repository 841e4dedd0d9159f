/*
 * json_decode.c: JSON text to Lua values (strict RFC 8259), and
 * core.json.decode.
 *
 * A recursive descent parser over [s, s + len) that never reads past the
 * end: the input need not be NUL-terminated (t:json() hands in a transfer's
 * buffer). Values are built on the Lua stack as they are parsed; on failure
 * the stack is cut back and the message says what went wrong and where.
 *
 * The only heap memory is the scratch buffer for strings with escapes and
 * for very long numbers. It is created on first need, inside a userdata in
 * a stack slot reserved for it, so a memory error raised by any Lua call
 * mid-parse leaves it owned by the collector.
 *
 * Strings with escapes are read by owl_json_unescape (json.h), which the
 * SSE picker (pick.c) reads them with too.
 */
#include <float.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef const unsigned char *cursor;

typedef struct dec {
  lua_State *L;
  cursor start, end;
  int max_depth;
  owl_json_levels lv; /* one level per open array or object */
  int array_mt;     /* absolute stack index of the array metatable */
  int scratch_slot; /* absolute stack index holding nil, then the scratch userdata */
  owl_buf *scratch; /* NULL until first needed */
  char *err;
  size_t errlen;
} dec;

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* See json.h. */
const unsigned char owl_json_str_stop[128] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  0, 0, 1, [0x5c] = 1,
};

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {
  1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Writes "what at byte N (line L, column C)" into err; returns NULL so that
 * callers can `return dec_fail(...)`. Bytes, lines and columns count from 1;
 * the line is only worked out here, on the error path. */
static cursor dec_fail(dec *d, cursor at, const char *fmt, ...) {
  size_t used, line = 1;
  cursor bol = d->start, q;
  va_list ap;
  if (d->errlen == 0) return NULL;
  va_start(ap, fmt);
  vsnprintf(d->err, d->errlen, fmt, ap);
  va_end(ap);
  if (at > d->end) at = d->end;
  for (q = d->start; (q = memchr(q, '\n', (size_t)(at - q))) != NULL; q++) {
    line++;
    bol = q + 1;
  }
  used = strlen(d->err);
  snprintf(d->err + used, d->errlen - used, " at byte %zu (line %zu, column %zu)", (size_t)(at - d->start) + 1, line,
           (size_t)(at - bol) + 1);
  return NULL;
}

static cursor unexpected(dec *d, cursor p) {
  if (p >= d->end) return dec_fail(d, p, "json: unexpected end of input");
  if (*p > 0x20 && *p < 0x7f) return dec_fail(d, p, "json: unexpected character '%c'", *p);
  return dec_fail(d, p, "json: unexpected byte 0x%02X", *p);
}

static inline cursor skip_ws(cursor p, cursor end) {
  while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

static owl_buf *dec_scratch(dec *d) {
  if (d->scratch == NULL) {
    if (!lua_checkstack(d->L, 4)) return NULL;
    d->scratch = owl_json_scratch(d->L);
    lua_replace(d->L, d->scratch_slot);
  }
  owl_buf_reset(d->scratch);
  return d->scratch;
}

/* --- strings ----------------------------------------------------------- */

static int hex4(cursor p) {
  int v = 0, i;
  for (i = 0; i < 4; i++) {
    int c = p[i];
    if (IS_DIGIT(c))
      v = v * 16 + (c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      v = v * 16 + ((c | 0x20) - 'a' + 10);
    else
      return -1;
  }
  return v;
}

static cursor str_fail(owl_json_strerr *err, owl_json_strfail what, cursor at) {
  err->what = what;
  err->at = at;
  return NULL;
}

/* See json.h. run: where the plain bytes not yet copied to out start. */
cursor owl_json_unescape(cursor s, cursor p, cursor end, owl_buf *out, owl_json_strerr *err) {
  cursor run = s;
  for (;;) {
    char skip[4], *w = skip; /* without out, an escape is written here */
    long cp;
    /* p is where owl_json_plain stopped */
    if (p >= end) return str_fail(err, OWL_JSON_STR_UNTERMINATED, s - 1);
    if (*p == '"') break;
    if (*p >= 0x80) return str_fail(err, OWL_JSON_STR_UTF8, p);
    if (*p < 0x20) return str_fail(err, OWL_JSON_STR_CONTROL, p);
    /* a backslash: room for the run before it and the longest escape
     * output (4 bytes), checked inline since escapes are frequent */
    if (out) {
      size_t n = (size_t)(p - run);
      if (out->cap - out->len <= n + 4 && !owl_buf_reserve(out, n + 4)) return str_fail(err, OWL_JSON_STR_NOMEM, p);
      memcpy(out->data + out->len, run, n);
      out->len += n;
      w = out->data + out->len;
    }
    if (end - p < 2) return str_fail(err, OWL_JSON_STR_UNTERMINATED, s - 1);
    switch (p[1]) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '/': *w++ = '/'; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u':
      if (end - p < 6 || (cp = hex4(p + 2)) < 0) return str_fail(err, OWL_JSON_STR_HEX, p);
      if (cp >= 0xDC00 && cp <= 0xDFFF) return str_fail(err, OWL_JSON_STR_SURROGATE, p);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo;
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || (lo = hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
          return str_fail(err, OWL_JSON_STR_SURROGATE, p);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      if (cp < 0x80) {
        *w++ = (char)cp;
      } else if (cp < 0x800) {
        *w++ = (char)(0xC0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
      } else {
        *w++ = (char)(0xF0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
      }
      p += 4;
      break;
    default:
      return str_fail(err, OWL_JSON_STR_ESCAPE, p);
    }
    if (out) out->len = (size_t)(w - out->data);
    p += 2;
    run = p;
    p = owl_json_plain(p, end);
  }
  if (out && !owl_buf_append(out, run, (size_t)(p - run))) return str_fail(err, OWL_JSON_STR_NOMEM, p);
  return p;
}

/* The message for a string owl_json_unescape refused. */
static cursor dec_string_fail(dec *d, const owl_json_strerr *e) {
  cursor at = e->at;
  switch (e->what) {
  case OWL_JSON_STR_UNTERMINATED: return dec_fail(d, at, "json: unterminated string starting");
  case OWL_JSON_STR_UTF8: return dec_fail(d, at, "json: invalid UTF-8 in string");
  case OWL_JSON_STR_CONTROL: return dec_fail(d, at, "json: control character 0x%02X in string", *at);
  case OWL_JSON_STR_HEX: return dec_fail(d, at, "json: invalid \\u escape");
  case OWL_JSON_STR_SURROGATE: return dec_fail(d, at, "json: lone surrogate \\u%04X", (unsigned)hex4(at + 2));
  case OWL_JSON_STR_ESCAPE:
    if (at[1] > 0x20 && at[1] < 0x7f) return dec_fail(d, at, "json: invalid escape '\\%c'", at[1]);
    return dec_fail(d, at, "json: invalid escape (byte 0x%02X after a backslash)", at[1]);
  case OWL_JSON_STR_NOMEM: break;
  }
  return dec_fail(d, at, "json: out of memory");
}

/* p is at the opening quote. A string without escapes, the common case, is
 * pushed straight from the input; one with escapes is decoded into the
 * scratch buffer. */
static cursor dec_string(dec *d, cursor p) {
  cursor s = p + 1, end = d->end, close;
  owl_buf *b = NULL;
  owl_json_strerr e;
  p = owl_json_plain(s, end);
  if (p < end && *p == '"') {
    lua_pushlstring(d->L, (const char *)s, (size_t)(p - s));
    return p + 1;
  }
  if (p < end && *p == '\\' && (b = dec_scratch(d)) == NULL) return dec_fail(d, p, "json: Lua stack exhausted");
  /* anything but a backslash at p is refused at once, so b is set below */
  if ((close = owl_json_unescape(s, p, end, b, &e)) == NULL) return dec_string_fail(d, &e);
  lua_pushlstring(d->L, b->data, b->len);
  return close + 1;
}

/* --- numbers ----------------------------------------------------------- */

/*
 * strtod follows LC_NUMERIC, which a host (Neovim, a game) may have set to
 * a locale whose decimal point is a comma: "0.5" would then read as 0. The
 * locale is not ours to switch (process-wide, not thread-safe), so strtod
 * gets a copy of the text with '.' replaced by the locale's decimal point.
 * The copy is needed anyway: the input need not be NUL-terminated.
 */
static cursor dec_number_strtod(dec *d, cursor s, cursor p) {
  char local[80] = "", *buf = local, *q, *stop;
  const char *dp = localeconv()->decimal_point;
  size_t dl, need;
  cursor i;
  double v;
  if (dp == NULL || dp[0] == '\0') dp = ".";
  dl = strlen(dp);
  need = (size_t)(p - s) + dl + 1;
  if (need > sizeof local) {
    owl_buf *b = dec_scratch(d);
    if (b == NULL) return dec_fail(d, s, "json: Lua stack exhausted");
    if (!owl_buf_reserve(b, need)) return dec_fail(d, s, "json: out of memory");
    buf = b->data;
  }
  for (q = buf, i = s; i < p; i++) {
    if (*i == '.') {
      memcpy(q, dp, dl);
      q += dl;
    } else {
      *q++ = (char)*i;
    }
  }
  *q = '\0';
  v = strtod(buf, &stop);
  if (stop != q) return dec_fail(d, s, "json: cannot convert number");
  /* out of range: +-HUGE_VAL, as Lua's own tonumber("1e999") gives */
  lua_pushnumber(d->L, (lua_Number)v);
  return p;
}

/*
 * Validates the grammar and converts in one pass. Up to 19 significant
 * digits are gathered into m. Without fraction or exponent and fitting
 * lua_Integer that is an integer (5.3+). A float whose m and power of ten
 * are both exact doubles is one correctly rounded multiplication or division
 * (Clinger's fast path); anything else goes to strtod.
 */
static cursor dec_number(dec *d, cursor p) {
  cursor s = p, end = d->end;
  unsigned long long m = 0;
  int neg = 0, many = 0, is_float = 0;
  long e10 = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, s, "json: invalid number (no digit after '-')");
  if (*p == '0') {
    p++;
    if (p < end && IS_DIGIT(*p)) return dec_fail(d, s, "json: invalid number (leading zero)");
  } else {
    for (; p < end && IS_DIGIT(*p); p++) {
      if (m < 1000000000000000000ULL)
        m = m * 10 + (unsigned)(*p - '0');
      else
        many = 1;
    }
  }
  if (p < end && *p == '.') {
    is_float = 1;
    if (++p >= end || !IS_DIGIT(*p)) return dec_fail(d, s, "json: invalid number (no digit after '.')");
    for (; p < end && IS_DIGIT(*p); p++) {
      if (m < 1000000000000000000ULL) {
        m = m * 10 + (unsigned)(*p - '0');
        e10--;
      } else {
        many = 1;
      }
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    long ev = 0;
    int eneg = 0;
    is_float = 1;
    if (++p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, s, "json: invalid number (no digit in exponent)");
    for (; p < end && IS_DIGIT(*p); p++)
      if (ev < 100000) ev = ev * 10 + (*p - '0');
    e10 += eneg ? -ev : ev;
  }
  if (!is_float && !many) {
#if OWL_HAS_INTEGERS
    if (!neg && m <= (unsigned long long)LUA_MAXINTEGER) {
      lua_pushinteger(d->L, (lua_Integer)m);
      return p;
    }
    if (neg && m == 0) { /* -0 has no integer form: keep the sign as a float */
      lua_pushnumber(d->L, -0.0);
      return p;
    }
    if (neg && m - 1 <= (unsigned long long)LUA_MAXINTEGER) {
      lua_pushinteger(d->L, -(lua_Integer)(m - 1) - 1);
      return p;
    }
#else
    /* below 10^19: converting from the integer rounds correctly */
    lua_pushnumber(d->L, (lua_Number)(neg ? -(double)m : (double)m));
    return p;
#endif
  }
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
  /* double arithmetic is done in double, so one operation rounds once */
  if (!many && m <= (1ULL << 53) && e10 >= -22 && e10 <= 22) {
    double v = (double)m;
    v = e10 < 0 ? v / exact_pow10[-e10] : v * exact_pow10[e10];
    lua_pushnumber(d->L, (lua_Number)(neg ? -v : v));
    return p;
  }
#endif
  return dec_number_strtod(d, s, p);
}

/* --- structure --------------------------------------------------------- */


static cursor dec_literal(dec *d, cursor p, const char *word, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p + i >= d->end || p[i] != (unsigned char)word[i]) return unexpected(d, p + i);
  return p + n;
}

/* A scalar: p is at its first byte (whitespace skipped). */
static cursor dec_scalar(dec *d, cursor p) {
  if (p >= d->end) return unexpected(d, p);
  switch (*p) {
  case '"':
    return dec_string(d, p);
  case 't':
    if ((p = dec_literal(d, p, "true", 4)) != NULL) lua_pushboolean(d->L, 1);
    return p;
  case 'f':
    if ((p = dec_literal(d, p, "false", 5)) != NULL) lua_pushboolean(d->L, 0);
    return p;
  case 'n':
    if ((p = dec_literal(d, p, "null", 4)) != NULL) lua_pushlightuserdata(d->L, NULL);
    return p;
  default:
    if (*p == '-' || IS_DIGIT(*p)) return dec_number(d, p);
    return unexpected(d, p);
  }
}

/* An object member's key and colon: pushes the key, returns the position
 * of its value. */
static cursor dec_key(dec *d, cursor p) {
  cursor end = d->end;
  if (p >= end || *p != '"') return unexpected(d, p);
  if ((p = dec_string(d, p)) == NULL) return NULL;
  p = skip_ws(p, end);
  if (p >= end || *p != ':') return unexpected(d, p);
  return skip_ws(p + 1, end);
}

/* An open array or object: its table is on the Lua stack, with an
 * object's pending key above it. */
typedef struct dlevel {
  int is_object;
  int n; /* an array's items so far */
} dlevel;

/*
 * The value at p, without recursion: a level per open container in d->lv,
 * their tables on the Lua stack. Each value parsed is stored into the
 * innermost level; a closed container is itself such a value.
 */
static cursor dec_root(dec *d, cursor p) {
  lua_State *L = d->L;
  cursor end = d->end;
  int depth = 0;
  dlevel *l;
  for (;;) {
    if (p < end && (*p == '[' || *p == '{')) {
      int is_object = *p == '{';
      if (depth >= d->max_depth) return dec_fail(d, p, "json: nesting deeper than %d", d->max_depth);
      /* a level keeps its table, a key and a value on the Lua stack */
      if (!lua_checkstack(L, 3)) return dec_fail(d, p, "json: Lua stack exhausted at nesting depth %d", depth + 1);
      if ((l = (dlevel *)owl_json_level(&d->lv, depth + 1)) == NULL) return dec_fail(d, p, "json: out of memory");
      depth++;
      l->is_object = is_object;
      l->n = 0;
      lua_newtable(L);
      if (!is_object) {
        lua_pushvalue(L, d->array_mt);
        lua_setmetatable(L, -2);
      }
      p = skip_ws(p + 1, end);
      if (p < end && *p == (is_object ? '}' : ']')) {
        p++;
        depth--;
      } else {
        if (is_object && (p = dec_key(d, p)) == NULL) return NULL;
        continue;
      }
    } else if ((p = dec_scalar(d, p)) == NULL) {
      return NULL;
    }
    /* a value is on the stack: store it, then close what it completes */
    for (;;) {
      if (depth == 0) return p;
      l = (dlevel *)owl_json_level(&d->lv, depth);
      if (l->is_object) lua_rawset(L, -3); /* a repeated key: the last one wins */
      else lua_rawseti(L, -2, ++l->n);
      p = skip_ws(p, end);
      if (p < end && *p == ',') {
        p = skip_ws(p + 1, end);
        if (l->is_object && (p = dec_key(d, p)) == NULL) return NULL;
        break;
      }
      if (p < end && *p == (l->is_object ? '}' : ']')) {
        p++;
        depth--;
        continue;
      }
      return unexpected(d, p);
    }
  }
}

int owl_json_decode(lua_State *L, const char *s, size_t len, int max_depth, char *err, size_t errlen) {
  dec d;
  dlevel local[OWL_JSON_LOCAL_LEVELS];
  int top = lua_gettop(L);
  cursor p;
  if (s == NULL) s = "";
  memset(&d, 0, sizeof d);
  d.L = L;
  d.start = (cursor)s;
  d.end = d.start + len;
  d.max_depth = max_depth > OWL_JSON_DEPTH_CEILING ? OWL_JSON_DEPTH_CEILING : max_depth;
  d.err = err;
  d.errlen = err ? errlen : 0;
  if (d.errlen) err[0] = '\0';
  if (!lua_checkstack(L, 5)) {
    dec_fail(&d, d.start, "json: Lua stack exhausted");
    return 0;
  }
  owl_json_push_mt(L, OWL_JSON_ARRAY_MT);
  d.array_mt = lua_gettop(L);
  lua_pushnil(L);
  d.scratch_slot = lua_gettop(L);
  lua_pushnil(L);
  d.lv.L = L;
  d.lv.base = (char *)local;
  d.lv.size = sizeof local[0];
  d.lv.cap = OWL_JSON_LOCAL_LEVELS;
  d.lv.slot = lua_gettop(L);
  p = dec_root(&d, skip_ws(d.start, d.end));
  if (p != NULL && (p = skip_ws(p, d.end)) < d.end) p = unexpected(&d, p); /* trailing garbage */
  if (d.scratch) owl_buf_free(d.scratch);
  if (d.lv.heap) owl_buf_free(d.lv.heap);
  if (p == NULL) {
    lua_settop(L, top);
    return 0;
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 1;
}

int owl_json_decode_lua(lua_State *L) {
  owl_json_opt opts[] = {
    {"max_depth", 1, OWL_JSON_DEPTH_CEILING, OWL_JSON_MAX_DEPTH, NULL},
    {"max_bytes", 0, 9007199254740992.0, OWL_JSON_MAX_BYTES, NULL},
  };
  char err[256];
  size_t len;
  const char *s;
  luaL_checktype(L, 1, LUA_TSTRING);
  s = lua_tolstring(L, 1, &len);
  owl_json_read_opts(L, 2, opts, 2);
  lua_settop(L, 2);
  if ((double)len > opts[1].value) {
    snprintf(err, sizeof err, "json: document of %zu bytes exceeds max_bytes %.0f", len, opts[1].value);
  } else if (owl_json_decode(L, s, len, (int)opts[0].value, err, sizeof err)) {
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, err);
  return 2;
}
