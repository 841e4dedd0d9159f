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
  int replace;           /* invalid UTF-8 becomes U+FFFD instead of an error */
  char *err;
  size_t errlen;
  owl_json_levels lv;    /* one level per open array or object */
  int depth;             /* levels open */
  /* On failure: whether it concerns the value being written inside the
   * innermost level (its key belongs in the path) or that level itself (a
   * bad key: the path ends at the level). */
  int in_value;
  int utf8;              /* the failure is invalid UTF-8: always give a path */
} enc;

/* A level: an array (i: the index being written, n: its length), a plain
 * object, or an ordered one (i: the listed key being written, n: the list's
 * length; phase 1 once the listed keys are done). Its table is at stack
 * slot tbl; an ordered object's key list at tbl + 1; the key being written
 * at key_slot(). */
enum { LV_ARRAY, LV_OBJECT, LV_ORDERED };

typedef struct level {
  int kind, tbl, first, phase;
  long i, n;
} level;

static int key_slot(const level *l) { return l->kind == LV_ORDERED ? l->tbl + 2 : l->tbl + 1; }

/* The UTF-8 check of one string across its pieces (a rope's pieces may
 * split a character): the bytes of a character begun but not finished. */
typedef struct u8 {
  unsigned char pend[4];
  int npend, need;
  unsigned lo, hi;
  size_t base; /* bytes of the string before the current piece */
  const char *what;
} u8;

/* 0: the byte is copied as is; otherwise the letter after the backslash,
 * 'u' meaning \u00XX. Bytes >= 0x80 are checked as UTF-8 apart. */
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

/* The st->npend bytes before absolute offset pos are a maximal invalid
 * subpart: U+FFFD (room for it was reserved) or the error. */
static int bad_utf8(enc *e, u8 *st, size_t pos) {
  size_t at = pos - (size_t)st->npend + 1;
  st->npend = 0;
  if (e->replace) {
    owl_buf *b = e->out;
    memcpy(b->data + b->len, "\xEF\xBF\xBD", 3);
    b->len += 3;
    return 1;
  }
  e->utf8 = 1;
  return enc_fail(e, "json: invalid UTF-8 at byte %lu of the %s", (unsigned long)at, st->what);
}

/*
 * Appends a piece of a string escaped, without quotes. Room for the piece
 * as is plus a closing quote is reserved up front; anything but a run of
 * plain ASCII (an escape, a UTF-8 character, a U+FFFD) tops that up. So
 * plain runs are copied with memcpy, 8 bytes are tested at a time, and the
 * invariant "room for the rest of the piece and a quote" holds.
 */
static int put_escaped(enc *e, u8 *st, const char *s, size_t n) {
  owl_buf *b = e->out;
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *start = p;
  if (!owl_buf_reserve(b, n + 1)) return enc_oom(e);
  while (p < end) {
    unsigned c;
    if (st->npend == 0) {
      const unsigned char *run = p;
      while (end - p >= 8 && !owl_json_special8(p) && !owl_json_high8(p)) p += 8;
      while (p < end && *p < 0x80 && !esc_letter[*p]) p++;
      if (p > run) {
        memcpy(b->data + b->len, run, (size_t)(p - run));
        b->len += (size_t)(p - run);
      }
      if (p == end) break;
    }
    if (b->cap - b->len < (size_t)(end - p) + 8 && !owl_buf_reserve(b, (size_t)(end - p) + 8)) return enc_oom(e);
    c = *p;
    if (st->npend > 0) { /* inside a character */
      if (c < st->lo || c > st->hi) {
        if (!bad_utf8(e, st, st->base + (size_t)(p - start))) return 0;
        continue; /* c may start the next character */
      }
      st->pend[st->npend++] = (unsigned char)c;
      st->lo = 0x80;
      st->hi = 0xBF;
      if (--st->need == 0) {
        memcpy(b->data + b->len, st->pend, (size_t)st->npend);
        b->len += (size_t)st->npend;
        st->npend = 0;
      }
    } else if (c < 0x80) {
      char l = esc_letter[c];
      b->data[b->len++] = '\\';
      b->data[b->len++] = l;
      if (l == 'u') {
        b->data[b->len++] = '0';
        b->data[b->len++] = '0';
        b->data[b->len++] = hex_digit[c >> 4];
        b->data[b->len++] = hex_digit[c & 15];
      }
    } else if (owl_utf8_lead(c, &st->need, &st->lo, &st->hi)) {
      st->pend[0] = (unsigned char)c;
      st->npend = 1;
    } else {
      st->npend = 1;
      if (!bad_utf8(e, st, st->base + (size_t)(p - start) + 1)) return 0;
    }
    p++;
  }
  st->base += n;
  return 1;
}

/* Ends a string: a character left unfinished is invalid. */
static int end_string(enc *e, u8 *st) {
  if (st->npend > 0) {
    if (!put(e, "\xEF\xBF\xBD\"", 4)) return 0; /* reserves the room bad_utf8 writes into */
    e->out->len -= 4;
    if (!bad_utf8(e, st, st->base)) return 0;
  }
  return put(e, "\"", 1);
}

static void u8_init(u8 *st, const char *what) {
  memset(st, 0, sizeof *st);
  st->what = what;
}

static int put_quoted(enc *e, const char *s, size_t n, const char *what) {
  u8 st;
  u8_init(&st, what);
  return put(e, "\"", 1) && put_escaped(e, &st, s, n) && end_string(e, &st);
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

/* Appends a segment to the path in buf; returns 0 once it is full. */
static int path_add(char *buf, size_t size, size_t *len, const char *seg) {
  size_t n = strlen(seg);
  if (*len + n >= size) return 0;
  memcpy(buf + *len, seg, n + 1);
  *len += n;
  return 1;
}

/* ".name" for a plain identifier, ["odd key"] otherwise. Bytes that are
 * not printable ASCII (invalid UTF-8 among them) are not copied raw. */
static void key_segment(lua_State *L, int key, char *seg, size_t size) {
  size_t n, i, w = 0;
  const char *k = lua_tolstring(L, key, &n);
  char shown[48];
  int ident = n > 0 && n <= 40 && !(k[0] >= '0' && k[0] <= '9');
  for (i = 0; ident && i < n; i++)
    ident = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_';
  if (ident) {
    snprintf(seg, size, ".%s", k);
    return;
  }
  for (i = 0; i < n && w < 40; i++) shown[w++] = (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"') ? k[i] : '?';
  shown[w] = '\0';
  snprintf(seg, size, "[\"%s%s\"]", shown, n > 40 ? "..." : "");
}

/* " at $.messages[2].content": the key or index of every level down to the
 * failure, from the outside in. */
static void append_path(enc *e) {
  char path[160], seg[64];
  size_t len = 0, used;
  int d, last = e->in_value ? e->depth : e->depth - 1, cut = 0;
  path[0] = '\0';
  for (d = 1; d <= last && !cut; d++) {
    level *l = (level *)owl_json_level(&e->lv, d);
    if (l->kind == LV_ARRAY) snprintf(seg, sizeof seg, "[%ld]", l->i);
    else key_segment(e->L, key_slot(l), seg, sizeof seg);
    cut = !path_add(path, sizeof path, &len, seg);
  }
  if (len == 0 && !e->utf8) return;
  used = strlen(e->err);
  snprintf(e->err + used, e->errlen - used, " at $%s%s", path, cut ? "..." : "");
}

/* A table key for an error message: "name", 3, 1.5, or its type. */
static void describe_key(lua_State *L, int idx, char *buf, size_t size) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    char seg[64];
    key_segment(L, idx, seg, sizeof seg);
    if (seg[0] == '.') snprintf(buf, size, "\"%s\"", seg + 1);
    else snprintf(buf, size, "%.*s", (int)strlen(seg) - 2, seg + 1);
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

/* Counts the keys of the table at idx, which must be exactly 1..n; returns
 * -1 with the error set otherwise. marked: "json.array" or "json.rope" for
 * a table so marked (where any other key would be silently dropped), NULL
 * for a plain table. */
static long array_count(enc *e, int idx, const char *marked) {
  lua_State *L = e->L;
  char key[80];
  double k, max = 0;
  long n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!key_index(L, -1, &k)) {
      int is_string = lua_type(L, -1) == LUA_TSTRING;
      describe_key(L, -1, key, sizeof key);
      lua_pop(L, 1);
      if (marked)
        return enc_fail(e, "json: cannot encode a %s with key %s (its keys must be exactly 1..n)", marked, key), -1;
      if (is_string)
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
    lua_pop(L, 1);
    return enc_fail(e, "json: cannot encode a %s with sparse keys (key %s, but %ld entries: keys must be exactly 1..n)",
                    marked ? marked : "table", key, n), -1;
  }
  if (n > 0x7fffffffL) return enc_fail(e, "json: array too long"), -1;
  return n;
}

/* A rope is one JSON string: its pieces are escaped one after the other
 * straight from the Lua strings, so no joined copy is ever made. */
static int enc_rope(enc *e, int idx) {
  lua_State *L = e->L;
  long n = array_count(e, idx, "json.rope"), i;
  size_t len;
  const char *s;
  u8 st;
  if (n < 0) return 0;
  u8_init(&st, "string");
  if (!put(e, "\"", 1)) return 0;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return enc_fail(e, "json: rope piece %d is a %s, not a string", (int)i, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (!put_escaped(e, &st, s, len)) return 0;
    lua_pop(L, 1);
  }
  return end_string(e, &st);
}

/* Opens a level for the table at the top of the stack (the level owns
 * that slot), or writes it whole when it is empty or a rope. Returns 0 on
 * failure, 1 when the table is written, 2 when a level was opened. */
static int open_table(enc *e) {
  lua_State *L = e->L;
  int tbl = lua_gettop(L), kind = LV_OBJECT;
  long n = 0;
  level *l;
  if (e->depth + 1 > e->max_depth) return enc_fail(e, "json: nesting deeper than %d (a cycle?)", e->max_depth);
  /* a level holds its table, a key list, a key and a value */
  if (!lua_checkstack(L, 5)) return enc_fail(e, "json: Lua stack exhausted at nesting depth %d", e->depth + 1);
  if (lua_getmetatable(L, tbl)) {
    if (lua_rawequal(L, -1, e->array_mt)) {
      lua_pop(L, 1);
      if ((n = array_count(e, tbl, "json.array")) < 0) return 0;
      kind = LV_ARRAY;
    } else if (lua_rawequal(L, -1, e->rope_mt)) {
      lua_pop(L, 1);
      return enc_rope(e, tbl);
    } else {
      lua_pushliteral(L, "__jsonorder");
      lua_rawget(L, -2);
      lua_remove(L, -2);
      if (lua_istable(L, -1)) {
        kind = LV_ORDERED;
        n = (long)owl_rawlen(L, -1);
      } else {
        lua_pop(L, 1);
      }
    }
  }
  if (kind == LV_OBJECT) { /* a plain table: its first key tells an object from an array */
    int string_key;
    lua_pushnil(L);
    if (!lua_next(L, tbl)) return put(e, "{}", 2);
    string_key = lua_type(L, -2) == LUA_TSTRING;
    lua_pop(L, 2);
    if (!string_key) {
      if ((n = array_count(e, tbl, NULL)) < 0) return 0;
      kind = LV_ARRAY;
    }
  }
  if ((l = (level *)owl_json_level(&e->lv, e->depth + 1)) == NULL) return enc_oom(e);
  e->depth++;
  l->kind = kind;
  l->tbl = tbl;
  l->first = 1;
  l->phase = 0;
  l->i = 0;
  l->n = n;
  if (kind != LV_ARRAY) lua_pushnil(L); /* the key slot */
  return put(e, kind == LV_ARRAY ? "[" : "{", 1) ? 2 : 0;
}

/* Writes the value at the top of the stack, or opens a level for it.
 * Returns as open_table does. */
static int enc_item(enc *e) {
  lua_State *L = e->L;
  int idx = lua_gettop(L);
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
    return put_quoted(e, s, n, "string");
  }
  case LUA_TTABLE:
    return open_table(e);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return put(e, "null", 4);
    return enc_fail(e, "json: cannot encode a light userdata other than json.null");
  default:
    return enc_fail(e, "json: cannot encode a %s value", luaL_typename(L, idx));
  }
}

/* Writes the separator and key of the next member of level l and pushes
 * its value. Returns 0 on failure, 1 with a value pushed, 2 when the level
 * is closed (its bracket written). */
static int next_member(enc *e, level *l) {
  lua_State *L = e->L;
  int key = key_slot(l);
  if (l->kind == LV_ARRAY) {
    if (l->i >= l->n) return put(e, "]", 1) ? 2 : 0;
    if (l->i++ > 0 && !put(e, ",", 1)) return 0;
    lua_rawgeti(L, l->tbl, (int)l->i);
    return 1;
  }
  if (l->phase == 0) { /* an ordered object's listed keys first, in their order */
    while (l->i < l->n) {
      lua_settop(L, key - 1);
      lua_rawgeti(L, l->tbl + 1, (int)++l->i);
      if (lua_type(L, key) != LUA_TSTRING) return enc_fail(e, "json: key order entry %ld is not a string", l->i);
      lua_pushvalue(L, key);
      lua_rawget(L, l->tbl);
      if (!lua_isnil(L, -1)) goto member; /* a listed key absent from the table is skipped */
    }
    lua_settop(L, key - 1);
    l->phase = 1;
    lua_pushnil(L);
  } else {
    lua_settop(L, key);
  }
  for (;;) {
    long j;
    int listed = 0;
    if (!lua_next(L, l->tbl)) return put(e, "}", 1) ? 2 : 0;
    if (lua_type(L, key) != LUA_TSTRING) {
      char k[80];
      describe_key(L, key, k, sizeof k);
      if (l->kind == LV_ORDERED)
        return enc_fail(e, "json: cannot encode an ordered object with key %s (keys must be strings)", k);
      if (lua_type(L, key) == LUA_TNUMBER)
        return enc_fail(e, "json: cannot encode a table with mixed keys (key %s beside string keys)", k);
      return enc_fail(e, "json: cannot encode a table with key %s (keys must be all strings, or exactly 1..n)", k);
    }
    for (j = 1; l->kind == LV_ORDERED && j <= l->n && !listed; j++) {
      lua_rawgeti(L, l->tbl + 1, (int)j);
      listed = lua_rawequal(L, -1, key);
      lua_pop(L, 1);
    }
    if (!listed) break;
    lua_pop(L, 1);
  }
member:
  {
    size_t kn;
    const char *k = lua_tolstring(L, key, &kn);
    if (!l->first && !put(e, ",", 1)) return 0;
    l->first = 0;
    if (!put_quoted(e, k, kn, "key") || !put(e, ":", 1)) return 0;
  }
  return 1;
}

/* The value at idx, without recursion: levels live in e->lv, their tables
 * and keys on the Lua stack. */
static int enc_root(enc *e, int idx) {
  lua_State *L = e->L;
  int r;
  lua_pushvalue(L, idx);
  if ((r = enc_item(e)) != 2) return r;
  while (e->depth > 0) {
    level *l = (level *)owl_json_level(&e->lv, e->depth);
    r = next_member(e, l);
    if (r == 0) return 0;
    if (r == 2) {
      lua_settop(L, l->tbl - 1);
      e->depth--;
      continue;
    }
    e->in_value = 1;
    if ((r = enc_item(e)) == 0) return 0;
    e->in_value = 0;
    if (r == 1) lua_pop(L, 1);
  }
  return 1;
}

/* On failure out is back to its length on entry and err says what and
 * where. */
static int encode_at(lua_State *L, int idx, owl_buf *out, int max_depth, int replace, char *err, size_t errlen) {
  enc e;
  level local[OWL_JSON_LOCAL_LEVELS];
  size_t start = out->len;
  int top = lua_gettop(L), ok;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.out = out;
  e.max_depth = max_depth > OWL_JSON_DEPTH_CEILING ? OWL_JSON_DEPTH_CEILING : max_depth;
  e.replace = replace;
  e.err = err;
  e.errlen = err ? errlen : 0;
  if (e.errlen) err[0] = '\0';
  idx = owl_absindex(L, idx);
  if (!lua_checkstack(L, 6)) return enc_fail(&e, "json: Lua stack exhausted");
  owl_json_push_mt(L, OWL_JSON_ARRAY_MT);
  e.array_mt = lua_gettop(L);
  owl_json_push_mt(L, OWL_JSON_ROPE_MT);
  e.rope_mt = lua_gettop(L);
  lua_pushnil(L);
  e.lv.L = L;
  e.lv.base = (char *)local;
  e.lv.size = sizeof local[0];
  e.lv.cap = OWL_JSON_LOCAL_LEVELS;
  e.lv.slot = lua_gettop(L);
  ok = enc_root(&e, idx);
  if (!ok) {
    out->len = start;
    if (e.errlen) append_path(&e);
  }
  if (e.lv.heap) owl_buf_free(e.lv.heap);
  lua_settop(L, top);
  if (out->cap) out->data[out->len] = '\0';
  return ok;
}

int owl_json_encode(lua_State *L, int idx, owl_buf *out, char *err, size_t errlen) {
  return encode_at(L, idx, out, OWL_JSON_MAX_DEPTH, 0, err, errlen);
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
    if (opts[i].choices) {
      int c = -1, k;
      for (k = 0; opts[i].choices[k] && c < 0; k++)
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), opts[i].choices[k]) == 0) c = k;
      if (c < 0) {
        snprintf(msg, sizeof msg, "option '%s' must be \"%s\" or \"%s\"", opts[i].name, opts[i].choices[0], opts[i].choices[1]);
        luaL_argerror(L, arg, msg);
        return;
      }
      opts[i].value = c;
      lua_pop(L, 1);
      continue;
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
  static const char *const utf8_modes[] = {"error", "replace", NULL};
  owl_json_opt opts[] = {{"max_depth", 1, OWL_JSON_DEPTH_CEILING, OWL_JSON_MAX_DEPTH, NULL},
                         {"invalid_utf8", 0, 0, 0, utf8_modes}};
  char err[256];
  owl_buf *b;
  int ok;
  luaL_checkany(L, 1);
  owl_json_read_opts(L, 2, opts, 2);
  b = owl_json_scratch(L);
  ok = encode_at(L, 1, b, (int)opts[0].value, opts[1].value == 1, err, sizeof err);
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
 * encode in the order of the array keys, others after them. The list is
 * copied, once checked: strings, none twice (a JSON object with a repeated
 * key means different things to different readers). A listed key absent
 * from t is skipped: a schema's optional properties. */
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
  if (n > 0x7fffffff) return luaL_error(L, "json.object: too many keys");
  lua_createtable(L, (int)n, 0); /* 3: the copy */
  lua_createtable(L, 0, (int)n); /* 4: the keys seen, with their position */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "json.object: keys[%d] must be a string", (int)i);
    lua_pushvalue(L, -1);
    lua_rawget(L, 4);
    if (!lua_isnil(L, -1))
      return luaL_error(L, "json.object: keys[%d] repeats \"%s\" (keys[%d])", (int)i, lua_tostring(L, -2),
                        (int)lua_tonumber(L, -1));
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnumber(L, (lua_Number)i);
    lua_rawset(L, 4);
    lua_rawseti(L, 3, (int)i);
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "__jsonorder");
  lua_pushliteral(L, "owl.json.object");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* U+FFFD for each maximal invalid subpart (Unicode 3.9, "substitution of
 * maximal subparts"; what a WHATWG decoder does). */
int owl_utf8_fix(owl_buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    size_t ok = owl_utf8_scan(p, (size_t)(end - p)), bad = 0;
    if (!owl_buf_append(b, p, ok)) return 0;
    p += ok;
    if (p == end) break;
    owl_utf8_char(p, end, &bad);
    if (!owl_buf_append(b, "\xEF\xBF\xBD", 3)) return 0;
    p += bad;
  }
  return 1;
}

/* json.fix_utf8(s): s itself when it is valid UTF-8 (one scan, no copy),
 * else a copy with U+FFFD in place of each maximal invalid subpart. */
static int l_fix_utf8(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  owl_buf *b;
  int ok;
  if (owl_utf8_scan((const unsigned char *)s, n) == n) {
    lua_settop(L, 1);
    return 1;
  }
  b = owl_json_scratch(L);
  ok = owl_utf8_fix(b, s, n);
  if (ok) lua_pushlstring(L, b->data, b->len);
  owl_buf_free(b);
  if (!ok) return luaL_error(L, "json.fix_utf8: out of memory");
  return 1;
}

/* json.utf8_error(s): nil when s is valid UTF-8, else the 1-based offset
 * of the first byte that is not part of a well-formed character. */
static int l_utf8_error(lua_State *L) {
  size_t n, at;
  const char *s = luaL_checklstring(L, 1, &n);
  at = owl_utf8_scan((const unsigned char *)s, n);
  if (at == n) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)at + 1);
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
    {"is_array", l_is_array}, {"rope", l_rope}, {"object", l_object}, {"fix_utf8", l_fix_utf8},
    {"utf8_error", l_utf8_error}, {NULL, NULL},
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
