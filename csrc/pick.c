/*
 * pick.c: the JSON-path picker of pick.h, and core.sse_pick(config), which
 * compiles one from Lua.
 *
 * The scanner walks an event's JSON once, without recursion and without
 * Lua, keeping per open container the set of paths (a bit mask) whose
 * steps so far match. It validates what it walks by the grammar owl's
 * decoder (json_decode.c) enforces, since an event it picks never reaches
 * that decoder: strict RFC 8259, well-formed UTF-8 in strings, escapes and
 * surrogate pairs checked. Strings it reads with the decoder's own
 * functions (owl_json_plain, owl_json_unescape), so the two cannot differ
 * on one. Anything it does not accept goes to Lua whole,
 * where the decoder gives the same answer, or the same error, as it
 * always did; the picker only ever takes the fast road, never a different
 * one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pick.h"

enum { PICK_JOIN, PICK_LAST, PICK_ABSENT };

typedef struct pick_step {
  char *key;    /* an object member's name, or NULL for an array index */
  size_t klen;
  double index; /* 1-based, for an array step */
} pick_step;

typedef struct pick_path {
  int kind;
  int field; /* JOIN and LAST: the field it fills */
  int nsteps;
  pick_step steps[OWL_PICK_MAX_STEPS];
} pick_path;

typedef struct pick_field {
  char *name;
  size_t len;
  int join;
} pick_field;

struct owl_pick {
  int refs;
  char *event; /* NULL: every event type */
  size_t event_len;
  int npaths, nfields;
  uint32_t leaf[OWL_PICK_MAX_STEPS + 1]; /* leaf[d]: the paths with d steps */
  pick_path paths[OWL_PICK_MAX_PATHS];
  pick_field fields[OWL_PICK_MAX_PATHS];
};

/* ---- the scanner: plain C, no Lua (a libcurl callback runs it) -------- */

typedef const unsigned char *cursor;

static cursor ws(cursor s, cursor end) {
  while (s < end && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) s++;
  return s;
}

/* s is just past an opening quote: the closing quote, or NULL when the
 * string is not one owl's decoder takes or, with out, when out cannot grow
 * (*nomem is set then). With out, the content is appended to it decoded.
 * *esc is set when the string holds escapes. */
static cursor string_end(cursor s, cursor end, owl_buf *out, int *esc, int *nomem) {
  owl_json_strerr e;
  cursor close = owl_json_plain(s, end);
  if (close < end && *close == '"') {
    *esc = 0;
    if (out && !owl_buf_append(out, s, (size_t)(close - s))) {
      *nomem = 1;
      return NULL;
    }
    return close;
  }
  *esc = 1;
  close = owl_json_unescape(s, close, end, out, &e);
  if (close == NULL && e.what == OWL_JSON_STR_NOMEM) *nomem = 1;
  return close;
}

/* A number by RFC 8259's grammar: the position after it, or NULL. */
static cursor scan_number(cursor s, cursor end) {
  if (s < end && *s == '-') s++;
  if (s >= end) return NULL;
  if (*s == '0') s++;
  else if (*s >= '1' && *s <= '9') while (s < end && *s >= '0' && *s <= '9') s++;
  else return NULL;
  if (s < end && *s == '.') {
    if (++s >= end || *s < '0' || *s > '9') return NULL;
    while (s < end && *s >= '0' && *s <= '9') s++;
  }
  if (s < end && (*s == 'e' || *s == 'E')) {
    if (++s < end && (*s == '+' || *s == '-')) s++;
    if (s >= end || *s < '0' || *s > '9') return NULL;
    while (s < end && *s >= '0' && *s <= '9') s++;
  }
  return s;
}

static cursor literal(cursor s, cursor end, const char *word, size_t n) {
  if ((size_t)(end - s) < n || memcmp(s, word, n) != 0) return NULL;
  return s + n;
}

/* The paths of mask whose step d is the member name [k, k + n). */
static uint32_t match_key(const owl_pick *p, uint32_t mask, int d, cursor k, size_t n) {
  uint32_t hit = 0;
  while (mask) {
    int i = __builtin_ctz(mask);
    const pick_step *st = &p->paths[i].steps[d];
    mask &= mask - 1;
    if (st->key && st->klen == n && memcmp(st->key, k, n) == 0) hit |= 1u << i;
  }
  return hit;
}

/* The paths of mask whose step d is array index i (1-based). */
static uint32_t match_index(const owl_pick *p, uint32_t mask, int d, double i) {
  uint32_t hit = 0;
  while (mask) {
    int b = __builtin_ctz(mask);
    const pick_step *st = &p->paths[b].steps[d];
    mask &= mask - 1;
    if (st->key == NULL && st->index == i) hit |= 1u << b;
  }
  return hit;
}

/* Whether any path of mask has a member name as step d. */
static int any_key(const owl_pick *p, uint32_t mask, int d) {
  while (mask) {
    int i = __builtin_ctz(mask);
    mask &= mask - 1;
    if (p->paths[i].steps[d].key) return 1;
  }
  return 0;
}

/* Where a walk's joined string was, for a memo: its content's start and
 * closing quote in the data, its record's start and end in the output.
 * joins counts the joined strings emitted (a memo wants exactly one). */
typedef struct scan_info {
  int joins, field;
  const unsigned char *open, *close;
  size_t rec_at, rec_end;
} scan_info;

typedef struct plevel {
  int is_object;
  double n;      /* an array's items so far */
  uint32_t mask; /* paths that go on inside this container */
  uint32_t seen; /* an object's: paths a member name matched already */
} plevel;

/* Appends the string whose content starts at s once for every path of
 * leaf (not 0), each value after its record: the closing quote, or NULL as
 * string_end. */
static cursor emit(const owl_pick *p, uint32_t leaf, cursor s, cursor end, owl_buf *out, int *nomem,
                   scan_info *info) {
  cursor close = NULL;
  if (info && (leaf & (leaf - 1)) == 0 && p->paths[__builtin_ctz(leaf)].kind == PICK_JOIN) {
    info->joins++;
    info->field = p->paths[__builtin_ctz(leaf)].field;
    info->open = s;
    info->rec_at = out->len;
  } else if (info) {
    uint32_t b;
    for (b = leaf; b; b &= b - 1)
      if (p->paths[__builtin_ctz(b)].kind == PICK_JOIN) info->joins += 2; /* one string, two joins: no memo */
  }
  while (leaf) {
    int i = __builtin_ctz(leaf), esc;
    owl_pick_value v;
    size_t at;
    leaf &= leaf - 1;
    memset(&v, 0, sizeof v); /* its padding too: the record's bytes may be hashed as a string */
    v.field = p->paths[i].field;
    v.len = 0;
    at = out->len;
    if (!owl_buf_append(out, &v, sizeof v)) {
      *nomem = 1;
      return NULL;
    }
    if ((close = string_end(s, end, out, &esc, nomem)) == NULL) return NULL;
    v.len = out->len - at - sizeof v;
    memcpy(out->data + at, &v, sizeof v);
  }
  if (info && info->open == s) {
    info->close = close;
    info->rec_end = out->len;
  }
  return close;
}

/* An object member's name at s (at its quote), up to the colon and the
 * whitespace after it: sets *mask to the paths its value is on. NULL: go
 * whole. */
static cursor member(const owl_pick *p, plevel *l, int d, cursor s, cursor end, uint32_t *mask) {
  cursor close;
  int esc, nomem = 0;
  uint32_t hit = 0;
  if (s >= end || *s != '"' || (close = string_end(s + 1, end, NULL, &esc, &nomem)) == NULL) return NULL;
  if (l->mask) {
    /* a name spelled with escapes could be a path's: the decoder reads it */
    if (esc && any_key(p, l->mask, d)) return NULL;
    if (!esc) hit = match_key(p, l->mask, d, s + 1, (size_t)(close - s - 1));
    /* a repeated name on a path: the decoder keeps the last, read whole */
    if (hit & l->seen) return NULL;
    l->seen |= hit;
  }
  s = ws(close + 1, end);
  if (s >= end || *s != ':') return NULL;
  *mask = hit;
  return ws(s + 1, end);
}

/* 1 picked, 0 whole, -1 out of memory. info (or NULL) learns where the
 * joined string was. */
static int scan(const owl_pick *p, cursor s, cursor end, owl_buf *out, scan_info *info) {
  plevel lv[OWL_PICK_MAX_DEPTH];
  int depth = 0;
  uint32_t mask = ((uint64_t)1 << p->npaths) - 1; /* the paths the next value is on */
  s = ws(s, end);
  if (s >= end || *s != '{') return 0;
  for (;;) {
    /* a value at s, at depth steps from the root */
    uint32_t leaf = depth <= OWL_PICK_MAX_STEPS ? mask & p->leaf[depth] : 0;
    if (s >= end) return 0;
    if (*s == '{' || *s == '[') {
      plevel *l;
      if (leaf) return 0; /* a container where a path wants a string */
      if (depth >= OWL_PICK_MAX_DEPTH) return 0;
      l = &lv[depth++];
      l->is_object = *s == '{';
      l->n = 0;
      l->mask = depth <= OWL_PICK_MAX_STEPS ? mask & ~p->leaf[depth - 1] : 0;
      l->seen = 0;
      s = ws(s + 1, end);
      if (s < end && *s == (l->is_object ? '}' : ']')) {
        s++;
        depth--;
      } else if (l->is_object) {
        if ((s = member(p, l, depth - 1, s, end, &mask)) == NULL) return 0;
        continue;
      } else {
        l->n = 1;
        mask = l->mask ? match_index(p, l->mask, depth - 1, 1) : 0;
        continue;
      }
    } else if (*s == '"') {
      cursor close;
      int esc, nomem = 0;
      if (leaf) {
        uint32_t b;
        for (b = leaf; b; b &= b - 1)
          if (p->paths[__builtin_ctz(b)].kind == PICK_ABSENT) return 0;
        close = emit(p, leaf, s + 1, end, out, &nomem, info);
      } else {
        close = string_end(s + 1, end, NULL, &esc, &nomem);
      }
      if (close == NULL) return nomem ? -1 : 0;
      s = close + 1;
    } else if (*s == 'n') {
      if ((s = literal(s, end, "null", 4)) == NULL) return 0; /* null: as absent */
    } else {
      if (leaf) return 0; /* a number or boolean where a path wants a string */
      if (*s == 't') s = literal(s, end, "true", 4);
      else if (*s == 'f') s = literal(s, end, "false", 5);
      else s = scan_number(s, end);
      if (s == NULL) return 0;
    }
    /* a value ended: go on in its container, closing what it completes */
    for (;;) {
      plevel *l;
      if (depth == 0) return ws(s, end) == end ? 1 : 0;
      l = &lv[depth - 1];
      s = ws(s, end);
      if (s < end && *s == ',') {
        s = ws(s + 1, end);
        if (l->is_object) {
          if ((s = member(p, l, depth - 1, s, end, &mask)) == NULL) return 0;
        } else {
          l->n++;
          mask = l->mask ? match_index(p, l->mask, depth - 1, l->n) : 0;
        }
        break;
      }
      if (s < end && *s == (l->is_object ? '}' : ']')) {
        s++;
        depth--;
        continue;
      }
      return 0;
    }
  }
}

/* Whether the picker reads events of this type (an event: line's value). */
static int wants(const owl_pick *p, const char *type, size_t type_len) {
  return !p->event || (type_len == p->event_len && memcmp(type, p->event, type_len) == 0);
}

int owl_pick_event(const owl_pick *p, const char *type, size_t type_len, const char *data, size_t len, owl_buf *out) {
  size_t saved = out->len;
  int r;
  if (!wants(p, type, type_len)) return 0;
  r = scan(p, (cursor)data, (cursor)data + len, out, NULL);
  if (r != 1) {
    owl_buf_truncate(out, saved);
  }
  return r;
}

/* The memo of an event just picked into out from saved on, or none. */
static void remember(owl_pick_memo *m, const owl_pick *p, cursor data, size_t len, const owl_buf *out, size_t saved,
                     const scan_info *info) {
  size_t prefix, suffix, before, after;
  m->valid = 0;
  if (info->joins != 1 || info->close == NULL) return;
  prefix = (size_t)(info->open - data);
  suffix = len - (size_t)(info->close - data);
  before = info->rec_at - saved;
  after = out->len - info->rec_end;
  owl_buf_reset(&m->bytes);
  if (!owl_buf_append(&m->bytes, data, prefix) || !owl_buf_append(&m->bytes, info->close, suffix) ||
      !owl_buf_append(&m->bytes, out->data + saved, before) ||
      !owl_buf_append(&m->bytes, out->data + info->rec_end, after))
    return; /* no memory for a memo: the next event is walked */
  m->p = p;
  m->prefix = prefix;
  m->suffix = suffix;
  m->before = before;
  m->after = after;
  m->field = info->field;
  m->valid = 1;
}

/* The memo's answer for an event, or -2 when it has none (walk it). */
static int recall(const owl_pick_memo *m, cursor data, size_t len, owl_buf *out) {
  const char *mb = m->bytes.data;
  cursor close, end = data + len;
  size_t saved = out->len, at;
  int esc, nomem = 0;
  owl_pick_value v;
  if (len < m->prefix + m->suffix || memcmp(data, mb, m->prefix) != 0 ||
      memcmp(end - m->suffix, mb + m->prefix, m->suffix) != 0)
    return -2;
  memset(&v, 0, sizeof v);
  v.field = m->field;
  if (!owl_buf_append(out, mb + m->prefix + m->suffix, m->before)) return -1;
  at = out->len;
  if (!owl_buf_append(out, &v, sizeof v)) goto nomem;
  /* the string must end where the suffix begins (at its closing quote) */
  close = string_end(data + m->prefix, end, out, &esc, &nomem);
  if (close != end - m->suffix) {
    owl_buf_truncate(out, saved);
    return nomem ? -1 : -2;
  }
  v.len = out->len - at - sizeof v;
  memcpy(out->data + at, &v, sizeof v);
  if (!owl_buf_append(out, mb + m->prefix + m->suffix + m->before, m->after)) goto nomem;
  return 1;
nomem:
  owl_buf_truncate(out, saved);
  return -1;
}

int owl_pick_event_memo(const owl_pick *p, owl_pick_memo *memo, const char *type, size_t type_len, const char *data,
                        size_t len, owl_buf *out) {
  size_t saved = out->len;
  scan_info info;
  int r;
  if (!wants(p, type, type_len)) return 0;
  if (memo->valid && memo->p == p) {
    r = recall(memo, (cursor)data, len, out);
    if (r != -2) return r;
  }
  memset(&info, 0, sizeof info);
  r = scan(p, (cursor)data, (cursor)data + len, out, &info);
  if (r != 1) {
    owl_buf_truncate(out, saved);
    return r;
  }
  remember(memo, p, (cursor)data, len, out, saved, &info);
  return r;
}

void owl_pick_memo_free(owl_pick_memo *memo) {
  owl_buf_free(&memo->bytes);
  memo->valid = 0;
  memo->p = NULL;
}

const char *owl_pick_field(const owl_pick *p, int i, size_t *len, int *join) {
  *len = p->fields[i].len;
  *join = p->fields[i].join;
  return p->fields[i].name;
}

int owl_pick_nfields(const owl_pick *p) {
  return p->nfields;
}

void owl_pick_retain(owl_pick *p) {
  p->refs++;
}

void owl_pick_release(owl_pick *p) {
  int i, j;
  if (p == NULL || --p->refs > 0) return;
  for (i = 0; i < p->npaths; i++)
    for (j = 0; j < p->paths[i].nsteps; j++) free(p->paths[i].steps[j].key);
  for (i = 0; i < p->nfields; i++) free(p->fields[i].name);
  free(p->event);
  free(p);
}

/* ---- core.sse_pick: compiling one from Lua ----------------------------- */

typedef struct {
  owl_pick *p;
} pick_ud;

owl_pick *owl_pick_check(lua_State *L, int idx) {
  return ((pick_ud *)luaL_checkudata(L, idx, OWL_PICK_MT))->p;
}

static char *dup_bytes(lua_State *L, const char *s, size_t n) {
  char *c = (char *)malloc(n + 1);
  if (c == NULL) luaL_error(L, "owl.core: out of memory");
  memcpy(c, s, n);
  c[n] = '\0';
  return c;
}

/* The path at idx (what names it in errors) into a new path of p. */
static void add_path(lua_State *L, owl_pick *p, int idx, int kind, int field, const char *what) {
  pick_path *path;
  size_t n, i;
  idx = owl_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "owl.core: sse_pick %s must be a path (an array of names and indexes), not %s", what, luaL_typename(L, idx));
  n = owl_rawlen(L, idx);
  if (n < 1 || n > OWL_PICK_MAX_STEPS)
    luaL_error(L, "owl.core: sse_pick %s must have 1 to %d steps, not %d", what, OWL_PICK_MAX_STEPS, (int)n);
  if (p->npaths == OWL_PICK_MAX_PATHS) luaL_error(L, "owl.core: sse_pick takes at most %d paths", OWL_PICK_MAX_PATHS);
  path = &p->paths[p->npaths++];
  path->kind = kind;
  path->field = field;
  path->nsteps = 0;
  for (i = 1; i <= n; i++) {
    pick_step *st = &path->steps[i - 1];
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t kl;
      const char *k = lua_tolstring(L, -1, &kl);
      st->key = dup_bytes(L, k, kl);
      st->klen = kl;
      st->index = 0;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      char step[64];
      snprintf(step, sizeof step, "sse_pick %s step %d", what, (int)i);
      st->key = NULL;
      st->klen = 0;
      st->index = owl_checkint(L, -1, 1, 9007199254740991.0, step);
    } else {
      luaL_error(L, "owl.core: sse_pick %s step %d must be a name (string) or an index (integer from 1), not %s", what,
                 (int)i, luaL_typename(L, -1));
    }
    path->nsteps++; /* counted once set: release frees only what was made */
    lua_pop(L, 1);
  }
  p->leaf[n] |= 1u << (p->npaths - 1);
}

/* The fields of option `opt` (a table of name -> path). */
static void add_fields(lua_State *L, owl_pick *p, const char *opt, int join) {
  lua_getfield(L, 1, opt);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (lua_type(L, -1) != LUA_TTABLE)
    luaL_error(L, "owl.core: sse_pick %s must be a table of name -> path, not %s", opt, luaL_typename(L, -1));
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    size_t n;
    const char *name;
    char what[96];
    int i;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "owl.core: sse_pick %s names must be strings, not %s", opt, luaL_typename(L, -2));
    name = lua_tolstring(L, -2, &n);
    if (n == 0 || n > 64) luaL_error(L, "owl.core: sse_pick %s names must be 1 to 64 bytes", opt);
    for (i = 0; i < p->nfields; i++)
      if (p->fields[i].len == n && memcmp(p->fields[i].name, name, n) == 0)
        luaL_error(L, "owl.core: sse_pick field '%s' is named twice (join and last)", name);
    snprintf(what, sizeof what, "%s.%s", opt, name);
    if (p->nfields == OWL_PICK_MAX_PATHS) luaL_error(L, "owl.core: sse_pick takes at most %d paths", OWL_PICK_MAX_PATHS);
    add_path(L, p, -1, join ? PICK_JOIN : PICK_LAST, p->nfields, what);
    p->fields[p->nfields].name = dup_bytes(L, name, n);
    p->fields[p->nfields].len = n;
    p->fields[p->nfields].join = join;
    p->nfields++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int pick_gc(lua_State *L) {
  pick_ud *u = (pick_ud *)luaL_checkudata(L, 1, OWL_PICK_MT);
  owl_pick_release(u->p);
  u->p = NULL;
  return 0;
}

/* core.sse_pick{ event =, join = { name = path }, last = { name = path },
 * absent = { path, ... } } -> a picker for t:sse_pick (see docs/api.md). */
static int l_sse_pick(lua_State *L) {
  static const char *const known[] = {"event", "join", "last", "absent", NULL};
  pick_ud *u;
  owl_pick *p;
  if (lua_type(L, 1) != LUA_TTABLE) return luaL_error(L, "owl.core: sse_pick expects a table, not %s", luaL_typename(L, 1));
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int i;
    if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "owl.core: sse_pick option names must be strings");
    for (i = 0; known[i] && strcmp(known[i], lua_tostring(L, -2)) != 0; i++) continue;
    if (!known[i]) return luaL_error(L, "owl.core: sse_pick: unknown option '%s'", lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  /* the userdata owns the picker from the start: an error half-way frees it */
  u = (pick_ud *)owl_newuserdata(L, sizeof *u);
  u->p = NULL;
  owl_setmetatable(L, OWL_PICK_MT);
  p = (owl_pick *)calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "owl.core: out of memory");
  p->refs = 1;
  u->p = p;
  lua_getfield(L, 1, "event");
  if (!lua_isnil(L, -1)) {
    size_t n;
    const char *e;
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "owl.core: sse_pick event must be a string, not %s", luaL_typename(L, -1));
    e = lua_tolstring(L, -1, &n);
    p->event = dup_bytes(L, e, n);
    p->event_len = n;
  }
  lua_pop(L, 1);
  add_fields(L, p, "join", 1);
  add_fields(L, p, "last", 0);
  if (p->nfields == 0) return luaL_error(L, "owl.core: sse_pick needs a field to pick (join or last)");
  lua_getfield(L, 1, "absent");
  if (!lua_isnil(L, -1)) {
    size_t i, n;
    if (lua_type(L, -1) != LUA_TTABLE)
      return luaL_error(L, "owl.core: sse_pick absent must be an array of paths, not %s", luaL_typename(L, -1));
    n = owl_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      char what[32];
      snprintf(what, sizeof what, "absent[%d]", (int)i);
      lua_rawgeti(L, -1, (int)i);
      add_path(L, p, -1, PICK_ABSENT, -1, what);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* picker:pick(data [, event]) -> { field = value } of one event's data
 * (event: its type, "message" when absent), or nil when the event would be
 * handed whole. What a transfer does with each event, for a reader that
 * has its events at hand (a replay) and for testing. */
static int pick_pick(lua_State *L) {
  owl_pick *p = owl_pick_check(L, 1);
  size_t n, tlen, f;
  const char *data = luaL_checklstring(L, 2, &n);
  const char *type = luaL_optlstring(L, 3, "message", &tlen);
  owl_buf out = OWL_BUF_INIT;
  int r = owl_pick_event(p, type, tlen, data, n, &out);
  const char *v, *end;
  if (r < 0) {
    owl_buf_free(&out);
    return luaL_error(L, "owl.core: out of memory");
  }
  if (r == 0) {
    owl_buf_free(&out);
    lua_pushnil(L);
    return 1;
  }
  /* a Lua memory error below would leak out: copy it to the stack first */
  lua_pushlstring(L, out.data ? out.data : "", out.len);
  owl_buf_free(&out);
  v = lua_tostring(L, -1);
  end = v + owl_rawlen(L, -1);
  lua_createtable(L, 0, p->nfields);
  while (v < end) {
    owl_pick_value pv;
    memcpy(&pv, v, sizeof pv);
    v += sizeof pv;
    f = (size_t)pv.field;
    /* one value per field: a path matches once, or the event goes whole */
    lua_pushlstring(L, v, pv.len);
    lua_setfield(L, -2, p->fields[f].name);
    v += pv.len;
  }
  return 1;
}

static int pick_tostring(lua_State *L) {
  pick_ud *u = (pick_ud *)luaL_checkudata(L, 1, OWL_PICK_MT);
  lua_pushfstring(L, "owl.sse_pick (%d fields, %p)", u->p ? u->p->nfields : 0, (void *)u->p);
  return 1;
}

void owl_pick_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"pick", pick_pick}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", pick_gc}, {"__tostring", pick_tostring}, {NULL, NULL}};
  owl_newclass(L, OWL_PICK_MT, methods, meta);
  lua_pushcfunction(L, l_sse_pick);
  lua_setfield(L, -2, "sse_pick");
}
