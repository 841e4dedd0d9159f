/*
 * transfer.c: one HTTP exchange (an easy handle with its request body and
 * response buffers) and the Lua methods that read its outcome. It knows
 * nothing of loops: whatever runs a transfer is reached only through the
 * owl_runner hooks it installed (transfer.h).
 *
 * The policy fixed here is not configurable on purpose: only http and https,
 * redirects never followed (an Authorization header must never reach another
 * host), TLS peer and host verified, no signals, and an empty Expect: header
 * so a large body never waits for 100-continue.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "transfer.h"

#define OWL_USER_AGENT "owl/0.1"
#define OWL_DEFAULT_MAX_RESPONSE ((size_t)64 * 1024 * 1024)
/* libcurl's receive buffer per transfer (its default is 16 KiB). A
 * fan-out holds a thousand transfers at once, and what a read fills is
 * what stays resident: 2 KiB costs a few more reads on a large body (a
 * read is a microsecond or two, the network is milliseconds) and keeps a
 * thousand answers of a few KiB from touching a page or two more each. A
 * stream's reads are a tick's events, often a few KiB, split less at 4. */
#define OWL_RECV_BUFFER 2048L
#define OWL_SSE_RECV_BUFFER 4096L
#define OWL_MAX_EXACT 9007199254740991.0 /* 2^53 - 1: above it a Lua number skips integers */

/* ---- header lists, shared and counted ---------------------------------- */

void owl_headers_release(owl_headers *h) {
  if (h == NULL || --h->refs > 0) return;
  curl_slist_free_all(h->list);
  free(h);
}

/* A holder userdata owns one reference while the list is being built, so a
 * Lua error half-way (a bad header, out of memory) frees what was built. */
typedef struct {
  owl_headers *h;
} headers_holder;

static int holder_gc(lua_State *L) {
  headers_holder *hh = (headers_holder *)lua_touserdata(L, 1);
  owl_headers_release(hh->h);
  hh->h = NULL;
  return 0;
}

static int append_header(owl_headers *h, const char *line) {
  struct curl_slist *n = curl_slist_append(h->list, line);
  if (n == NULL) return 0;
  h->list = n;
  return 1;
}

/* Builds the header list from spec.headers (an array of "Name: value"
 * strings) and pushes a holder userdata that owns one reference to it until
 * it is collected: a Lua error half-way frees what was built. A transfer
 * that uses the list takes a reference of its own. */
owl_headers *owl_headers_push(lua_State *L, int spec_idx) {
  headers_holder *hh;
  owl_headers *h;
  size_t i, n;
  spec_idx = owl_absindex(L, spec_idx);
  lua_getfield(L, spec_idx, "headers");
  hh = (headers_holder *)owl_testudata(L, -1, "owl.headers");
  if (hh != NULL && hh->h != NULL) return hh->h; /* built once by core.headers: the holder stays on the stack */
  lua_pop(L, 1);
  hh = (headers_holder *)lua_newuserdata(L, sizeof *hh);
  hh->h = NULL;
  if (luaL_newmetatable(L, "owl.headers")) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  h = (owl_headers *)calloc(1, sizeof *h);
  if (h == NULL) luaL_error(L, "owl.core: out of memory");
  h->refs = 1;
  hh->h = h;
  lua_getfield(L, spec_idx, "headers");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) luaL_error(L, "owl.core: spec.headers must be an array of \"Name: value\" strings");
    n = owl_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      const char *line;
      lua_rawgeti(L, -1, (int)i);
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "owl.core: spec.headers[%d] must be a string", (int)i);
      line = lua_tostring(L, -1);
      if (strchr(line, '\r') || strchr(line, '\n')) luaL_error(L, "owl.core: spec.headers[%d] contains a line break", (int)i);
      if (!append_header(h, line)) luaL_error(L, "owl.core: out of memory");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  /* No 100-continue round trip on large bodies. */
  if (!append_header(h, "Expect:")) luaL_error(L, "owl.core: out of memory");
  return h;
}

/* core.headers(lines) -> a header list built once, for spec.headers: a
 * fan-out started one call at a time (a task per worker) shares it instead
 * of building its own copy per call. */
static int l_headers(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "headers");
  owl_headers_push(L, -1);
  return 1;
}

/* ---- libcurl callbacks: C buffers and flags only, never Lua ------------- */

/* Counts n received bytes against the transfer's budget, if any. */
static int take_budget(owl_transfer *t, size_t n) {
  owl_budget *b = t->budget;
  if (b == NULL) return 1;
  if (n > b->limit - b->used) {
    t->over_budget = 1;
    return 0;
  }
  b->used += n;
  return 1;
}

/* An event the transfer's parser completed, queued for t:events() as a
 * record: an event_head, then the type bytes, then either (EV_RAW) the data
 * and id bytes or (EV_PICK, an event its picker took) data_len bytes of
 * owl_pick_value records. */
enum { EV_RAW, EV_PICK };

/* The event queue's memory kept from one t:events() to the next. */
#define OWL_EVENTS_KEEP 1024

typedef struct {
  int kind;
  int has_id;
  size_t type_len, data_len, id_len;
} event_head;

/* The value of field f among the value records [v, end): its offset in
 * base and length, or 0 when the event gave none. */
static int find_value(const char *base, size_t v, size_t end, int f, size_t *at, size_t *len) {
  while (v < end) {
    owl_pick_value pv;
    memcpy(&pv, base + v, sizeof pv);
    v += sizeof pv;
    if (pv.field == f) {
      *at = v;
      *len = pv.len;
      return 1;
    }
    v += pv.len;
  }
  return 0;
}

/* Builds the picked record at r merged with the one at e after it (or r
 * alone, e OWL_NO_RUN) after both, then moves it down to r: a joined
 * field's values concatenated, another's the later one; the joined fields
 * last, so that the next merge can extend them in place. 0 when out of
 * memory (the buffer as before). */
static int rebuild_picked(owl_transfer *t, size_t r, size_t e) {
  owl_buf *b = &t->events;
  event_head rh, eh, mh;
  size_t rv, ev = 0, m, f, nf = (size_t)owl_pick_nfields(t->pick);
  int pass;
  memcpy(&rh, b->data + r, sizeof rh);
  memset(&eh, 0, sizeof eh);
  if (e != OWL_NO_RUN) memcpy(&eh, b->data + e, sizeof eh);
  /* room for all of it first: the copies below read from the buffer itself */
  if (!owl_buf_reserve(b, sizeof mh + rh.type_len + rh.data_len + eh.data_len + nf * sizeof(owl_pick_value))) return 0;
  rv = r + sizeof rh + rh.type_len;
  if (e != OWL_NO_RUN) ev = e + sizeof eh + eh.type_len;
  m = b->len;
  mh = rh;
  memcpy(b->data + b->len, &mh, sizeof mh);
  memcpy(b->data + b->len + sizeof mh, b->data + r + sizeof rh, rh.type_len);
  b->len += sizeof mh + rh.type_len;
  for (pass = 0; pass < 2; pass++)
    for (f = 0; f < nf; f++) {
      size_t ra = 0, rl = 0, ea = 0, el = 0, nlen;
      int join, has_r = find_value(b->data, rv, rv + rh.data_len, (int)f, &ra, &rl);
      int has_e = e != OWL_NO_RUN && find_value(b->data, ev, ev + eh.data_len, (int)f, &ea, &el);
      owl_pick_value pv;
      memset(&pv, 0, sizeof pv);
      owl_pick_field(t->pick, (int)f, &nlen, &join);
      if (join != pass || (!has_r && !has_e)) continue;
      if (!join && has_e) has_r = 0; /* the later value counts */
      pv.field = (int)f;
      pv.len = (has_r ? rl : 0) + (has_e ? el : 0);
      memcpy(b->data + b->len, &pv, sizeof pv);
      b->len += sizeof pv;
      if (has_r) memcpy(b->data + b->len, b->data + ra, rl);
      if (has_r) b->len += rl;
      if (has_e) memcpy(b->data + b->len, b->data + ea, el);
      if (has_e) b->len += el;
    }
  mh.data_len = b->len - m - sizeof mh - mh.type_len;
  memcpy(b->data + m, &mh, sizeof mh);
  memmove(b->data + r, b->data + m, b->len - m);
  b->len = r + (b->len - m);
  b->data[b->len] = '\0';
  return 1;
}

/* The common merge, in place: a picker with one joined field j, the
 * record at r (rebuilt, so j is its last value) and the one at e after it
 * whose other values have the lengths of r's (an id or a model repeated).
 * Those are overwritten and e's piece of j appended, without copying r.
 * 0 when it does not apply. */
static int extend_picked(owl_transfer *t, size_t r, size_t e, int j) {
  owl_buf *b = &t->events;
  event_head rh, eh;
  size_t rv, ev, v, ja = 0, jl = 0, rja = 0, rjl = 0, end;
  int has_rj;
  memcpy(&rh, b->data + r, sizeof rh);
  memcpy(&eh, b->data + e, sizeof eh);
  rv = r + sizeof rh + rh.type_len;
  ev = e + sizeof eh + eh.type_len;
  has_rj = find_value(b->data, rv, rv + rh.data_len, j, &rja, &rjl);
  if (has_rj && rja + rjl != e) return 0;
  for (v = ev; v < ev + eh.data_len;) { /* check before changing anything */
    owl_pick_value pv;
    size_t ra, rl;
    memcpy(&pv, b->data + v, sizeof pv);
    if (pv.field != j && (!find_value(b->data, rv, rv + rh.data_len, pv.field, &ra, &rl) || rl != pv.len)) return 0;
    v += sizeof pv + pv.len;
  }
  for (v = ev; v < ev + eh.data_len;) {
    owl_pick_value pv;
    size_t ra = 0, rl = 0;
    memcpy(&pv, b->data + v, sizeof pv);
    v += sizeof pv;
    if (pv.field == j) {
      ja = v;
      jl = pv.len;
    } else {
      find_value(b->data, rv, rv + rh.data_len, pv.field, &ra, &rl);
      memcpy(b->data + ra, b->data + v, rl);
    }
    v += pv.len;
  }
  end = e;
  if (jl > 0 && has_rj) {
    owl_pick_value pv;
    memmove(b->data + e, b->data + ja, jl);
    memcpy(&pv, b->data + rja - sizeof pv, sizeof pv);
    pv.len += jl;
    memcpy(b->data + rja - sizeof pv, &pv, sizeof pv);
    end = e + jl;
  } else if (ja > 0) { /* r had no piece of j yet: e's becomes its last value */
    owl_pick_value pv;
    memset(&pv, 0, sizeof pv);
    pv.field = j;
    pv.len = jl;
    memmove(b->data + e + sizeof pv, b->data + ja, jl);
    memcpy(b->data + e, &pv, sizeof pv);
    end = e + sizeof pv + jl;
  }
  rh.data_len = end - rv;
  memcpy(b->data + r, &rh, sizeof rh);
  owl_buf_truncate(b, end);
  return 1;
}

/* Merges the picked record at e (the last one) into the run's record at r
 * when both are of one type; else e opens a new run. 0 when out of memory
 * (the buffer as before). */
static int merge_picked(owl_transfer *t, size_t r, size_t e) {
  owl_buf *b = &t->events;
  event_head rh, eh;
  memcpy(&rh, b->data + r, sizeof rh);
  memcpy(&eh, b->data + e, sizeof eh);
  if (rh.type_len != eh.type_len || memcmp(b->data + r + sizeof rh, b->data + e + sizeof eh, rh.type_len) != 0) {
    t->open_pick = e;
    return rebuild_picked(t, e, OWL_NO_RUN);
  }
  if (t->pick_join >= 0 && extend_picked(t, r, e, t->pick_join)) return 1;
  return rebuild_picked(t, r, e);
}

/* 1 picked (and queued), 0 to be queued whole, -1 out of memory. */
static int keep_picked(owl_transfer *t, const owl_sse_event *ev) {
  owl_buf *b = &t->events;
  size_t at = b->len;
  event_head h;
  int r;
  memset(&h, 0, sizeof h);
  h.kind = EV_PICK;
  h.type_len = ev->type_len;
  if (!owl_buf_append(b, &h, sizeof h) || !owl_buf_append(b, ev->type, h.type_len)) {
    b->len = at;
    return -1;
  }
  r = owl_pick_event_memo(t->pick, &t->pick_memo, ev->type, ev->type_len, ev->data, ev->data_len, b);
  if (r != 1) {
    b->len = at;
    return r;
  }
  h.data_len = b->len - at - sizeof h - h.type_len;
  memcpy(b->data + at, &h, sizeof h);
  if (t->pick_merge && t->open_pick != OWL_NO_RUN) {
    if (!merge_picked(t, t->open_pick, at)) {
      b->len = at;
      return -1;
    }
    /* nevents counts records: one merged into its run adds none */
    if (t->open_pick == at) t->nevents++;
    return 1;
  } else {
    t->open_pick = at;
    /* a run's first record, in the order merges extend */
    if (t->pick_merge && !rebuild_picked(t, at, OWL_NO_RUN)) {
      b->len = at;
      return -1;
    }
  }
  t->nevents++;
  return 1;
}

static int keep_event(void *ud, const owl_sse_event *ev) {
  owl_transfer *t = (owl_transfer *)ud;
  owl_buf *b = &t->events;
  event_head h;
  if (t->pick) {
    int r = keep_picked(t, ev);
    if (r != 0) return r > 0;
  }
  t->open_pick = OWL_NO_RUN; /* a run of picked events ends here */
  t->raw_queued = 1;
  memset(&h, 0, sizeof h);
  h.kind = EV_RAW;
  h.type_len = ev->type_len;
  h.data_len = ev->data_len;
  h.id_len = ev->id_len;
  h.has_id = ev->id != NULL;
  if (!owl_buf_reserve(b, sizeof h + h.type_len + h.data_len + h.id_len)) return 0;
  owl_buf_append(b, &h, sizeof h);
  owl_buf_append(b, ev->type, h.type_len);
  owl_buf_append(b, ev->data, h.data_len);
  if (h.has_id) owl_buf_append(b, ev->id, h.id_len);
  t->nevents++;
  return 1;
}

/* The body of an sse transfer: a 2xx answer feeds the parser and keeps
 * only its first OWL_SSE_KEEP bytes; any other status is an error document,
 * kept whole and never parsed. */
static int write_sse(owl_transfer *t, const char *ptr, size_t n) {
  size_t keep = n;
  if (t->feeding < 0) {
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->feeding = code >= 200 && code <= 299;
  }
  if (!t->feeding) return owl_buf_append(&t->response, ptr, n);
  /* the kept bytes at their exact size: doubling would give twice that */
  if (t->response.cap == 0 && !owl_buf_reserve_exact(&t->response, OWL_SSE_KEEP)) return 0;
  if (t->response.len >= OWL_SSE_KEEP) keep = 0;
  else if (keep > OWL_SSE_KEEP - t->response.len) keep = OWL_SSE_KEEP - t->response.len;
  if (!owl_buf_append(&t->response, ptr, keep)) return 0;
  if (!owl_sse_feed(&t->parser, ptr, n, keep_event, t)) {
    t->sse_failed = 1;
    return 0;
  }
  return 1;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud) {
  owl_transfer *t = (owl_transfer *)ud;
  size_t n = size * nmemb;
  t->last_byte_ms = owl_now_ms();
  if (n > t->max_response - t->received) {
    t->too_large = 1;
    return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
  }
  if (!take_budget(t, n)) return 0;
  if (!t->sse && t->response.cap == 0) {
    /* a body of announced size gets exactly its room, not a chain of
     * doublings that leaves up to twice that behind */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
        (double)cl <= (double)t->max_response && !owl_buf_reserve_exact(&t->response, (size_t)cl))
      return 0;
  }
  if (!(t->sse ? write_sse(t, ptr, n) : owl_buf_append(&t->response, ptr, n))) return 0;
  t->received += n;
  /* with merge, picked events wait for the next event that comes whole,
   * or the end: only those are news */
  if (t->stream && n > 0 && t->runner && (!t->pick_merge || t->raw_queued || t->feeding != 1)) t->runner->news(t);
  t->raw_queued = 0;
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  owl_transfer *t = (owl_transfer *)ud;
  size_t n = size * nmemb;
  t->last_byte_ms = owl_now_ms();
  /* A status line starts a new response (after a 100 Continue, say): keep
   * only the headers of the final one. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) owl_buf_reset(&t->header_lines);
  if (n > OWL_MAX_HEADER_BYTES - t->header_lines.len) {
    t->headers_too_large = 1;
    return 0;
  }
  if (!take_budget(t, n)) return 0;
  if (!owl_buf_append(&t->header_lines, ptr, n)) return 0;
  return n;
}

/* libcurl calls this about once a second while stall_timeout is set (the
 * low-speed check below makes it revisit an idle transfer). The silence
 * counts from the last response byte; before the first one, only for a
 * stream (from its start): a non-streaming server may think for minutes,
 * a streaming one answers at once. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  owl_transfer *t = (owl_transfer *)ud;
  int64_t since = t->last_byte_ms ? t->last_byte_ms : t->started_ms;
  (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
  if (since && owl_now_ms() - since >= t->stall_ms) {
    t->stalled = 1;
    return 1; /* CURLE_ABORTED_BY_CALLBACK */
  }
  return 0;
}

/* libcurl's own socket(), except that running out of descriptors is
 * remembered: libcurl would only say "Couldn't connect to server". */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  curl_socket_t s;
  (void)purpose;
  s = socket(a->family, a->socktype, a->protocol);
  if (s == CURL_SOCKET_BAD && (errno == EMFILE || errno == ENFILE)) ((owl_transfer *)ud)->socket_errno = errno;
  return s;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Called once a connection is set up (TCP and TLS) or reused, right before
 * the request goes out: what tells a connect timeout from a slow answer. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  (void)primary_ip; (void)local_ip; (void)primary_port; (void)local_port;
  ((owl_transfer *)ud)->connected = 1;
  return CURL_PREREQFUNC_OK;
}
#endif

/* ---- creation and configuration --------------------------------------- */

owl_transfer *owl_transfer_push(lua_State *L) {
  owl_transfer *t = (owl_transfer *)owl_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  t->state = OWL_NEW;
  t->max_response = OWL_DEFAULT_MAX_RESPONSE;
  t->feeding = -1;
  t->open_pick = OWL_NO_RUN;
  owl_setmetatable(L, OWL_TRANSFER_MT);
  return t;
}

owl_transfer *owl_transfer_check(lua_State *L, int idx) {
  return (owl_transfer *)luaL_checkudata(L, idx, OWL_TRANSFER_MT);
}

static const char *const spec_keys[] = {"url",     "headers",       "body",   "timeout", "connect_timeout",
                                        "ca_file", "stall_timeout", "budget", "stream",  "max_response_bytes",
                                        "sse",     NULL};

static void check_spec_keys(lua_State *L, int spec_idx) {
  lua_pushnil(L);
  while (lua_next(L, spec_idx)) {
    int i, known = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      for (i = 0; spec_keys[i]; i++)
        if (strcmp(k, spec_keys[i]) == 0) known = 1;
      if (!known) luaL_error(L, "owl.core: unknown spec field '%s'", k);
    } else {
      luaL_error(L, "owl.core: spec keys must be strings");
    }
    lua_pop(L, 1);
  }
}

/* A spec field in seconds as whole ms, 0 when absent. The range is checked
 * on the double, before any cast; 1e9 s in ms fits a 64-bit long, and a
 * 32-bit one is capped (24 days). */
static long opt_ms(lua_State *L, int spec_idx, const char *name) {
  lua_Number s;
  double ms;
  lua_getfield(L, spec_idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "owl.core: spec.%s must be a number of seconds", name);
  s = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(s >= 0) || s > 1e9) luaL_error(L, "owl.core: spec.%s must be between 0 and 1e9 seconds", name);
  if (s > 0 && s < 0.001) return 1; /* a positive timeout never rounds to "none" */
  ms = s * 1000.0 + 0.5;
  return ms >= (double)LONG_MAX ? LONG_MAX : (long)ms;
}

/* A byte count from Lua as a size_t: an exact integer from 1 to 2^53 - 1
 * (raises otherwise), capped where size_t is narrower. */
static size_t check_bytes(lua_State *L, int idx, const char *what) {
  double v = owl_checkint(L, idx, 1, OWL_MAX_EXACT, what);
  return v >= (double)SIZE_MAX ? SIZE_MAX : (size_t)v;
}

/* Raises on misuse; on success the transfer is ready for a runner. */
void owl_transfer_configure(lua_State *L, owl_transfer *t, int spec_idx, owl_headers *headers, int body_idx) {
  const char *url, *ca_file = NULL;
  long timeout_ms, connect_ms, stall_ms;
  CURL *e;
  char err[256];
  int top = lua_gettop(L);
  spec_idx = owl_absindex(L, spec_idx);
  if (body_idx) body_idx = owl_absindex(L, body_idx);
  luaL_checktype(L, spec_idx, LUA_TTABLE);
  check_spec_keys(L, spec_idx);

  lua_getfield(L, spec_idx, "url");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "owl.core: spec.url must be a string");
  url = lua_tostring(L, -1);
  if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
    luaL_error(L, "owl.core: spec.url must start with http:// or https://");
  t->is_https = strncasecmp(url, "https://", 8) == 0;
  timeout_ms = opt_ms(L, spec_idx, "timeout");
  connect_ms = opt_ms(L, spec_idx, "connect_timeout");
  stall_ms = opt_ms(L, spec_idx, "stall_timeout");
  lua_getfield(L, spec_idx, "ca_file");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "owl.core: spec.ca_file must be a string");
    ca_file = lua_tostring(L, -1);
  }
  lua_getfield(L, spec_idx, "max_response_bytes");
  if (!lua_isnil(L, -1)) t->max_response = check_bytes(L, -1, "spec.max_response_bytes");
  lua_pop(L, 1);
  lua_getfield(L, spec_idx, "stream");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) luaL_error(L, "owl.core: spec.stream must be a boolean");
  t->stream = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, spec_idx, "sse");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) luaL_error(L, "owl.core: spec.sse must be a boolean");
  if (lua_toboolean(L, -1)) {
    t->sse = t->stream = 1;
    owl_sse_init(&t->parser, OWL_SSE_DEFAULT_MAX);
  }
  lua_pop(L, 1);
  lua_getfield(L, spec_idx, "budget");
  if (!lua_isnil(L, -1)) {
    owl_budget **bp = (owl_budget **)owl_testudata(L, -1, OWL_BUDGET_MT);
    if (bp == NULL) luaL_error(L, "owl.core: spec.budget must be a budget made by core.budget");
    t->budget = *bp;
    t->budget->refs++;
  }
  lua_pop(L, 1);

  if (headers == NULL) headers = owl_headers_push(L, spec_idx);
  headers->refs++;
  t->headers = headers;

  if (body_idx == 0) {
    lua_getfield(L, spec_idx, "body");
    body_idx = lua_gettop(L);
  }
  if (lua_type(L, body_idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, body_idx, &n);
    if (!owl_buf_append(&t->body, s, n)) luaL_error(L, "owl.core: out of memory");
  } else if (lua_type(L, body_idx) == LUA_TTABLE) {
    if (!owl_json_encode(L, body_idx, &t->body, err, sizeof err)) luaL_error(L, "owl.core: request body: %s", err);
  } else if (!lua_isnil(L, body_idx)) {
    luaL_error(L, "owl.core: a request body must be a table or a string, not %s", luaL_typename(L, body_idx));
  }

  t->easy = e = curl_easy_init();
  if (e == NULL) luaL_error(L, "owl.core: curl_easy_init failed");
  if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK) luaL_error(L, "owl.core: bad url");
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK) luaL_error(L, "owl.core: spec.ca_file not accepted");
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, t->sse ? OWL_SSE_RECV_BUFFER : OWL_RECV_BUFFER);
  curl_easy_setopt(e, CURLOPT_USERAGENT, OWL_USER_AGENT);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers->list);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  /* Over TLS a server may speak HTTP/2: wait to multiplex on a connection
   * being set up rather than opening one per call. Never on cleartext, where
   * only HTTP/1.1 is spoken and waiting would serialize a fan-out. */
  if (t->is_https) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  /* Any body, even "", allocated the buffer: POST. No body: GET. */
  if (t->body.data) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body.len);
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
  if (stall_ms > 0) {
    t->stall_ms = stall_ms;
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    /* With a low-speed limit set, libcurl revisits the transfer every
     * second (EXPIRE_SPEEDCHECK), so on_progress runs while nothing
     * arrives. The time is a year: the limit itself never fires first. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 365L * 86400L);
  }
#if LIBCURL_VERSION_NUM >= 0x075000
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
#endif
  lua_settop(L, top); /* url and ca_file were copied by libcurl */
}

/* A failure owl can name better than libcurl: sets own_kind and writes
 * the words into errbuf, which libcurl no longer uses. */
static void explain(owl_transfer *t, CURLcode result) {
  char *m = t->errbuf;
  size_t n = sizeof t->errbuf;
  if (t->sse_failed) {
    t->own_kind = "protocol";
    snprintf(m, n, "%s", t->parser.err);
  } else if (t->too_large) {
    t->own_kind = "protocol";
    snprintf(m, n, "the response body is larger than max_response_bytes (%.0f bytes)", (double)t->max_response);
  } else if (t->over_budget) {
    t->own_kind = "protocol";
    snprintf(m, n, "the responses of this run passed their budget of %.0f bytes (max_total_response_bytes)",
             (double)t->budget->limit);
  } else if (t->headers_too_large) {
    t->own_kind = "protocol";
    snprintf(m, n, "the response headers are larger than %u KiB", (unsigned)(OWL_MAX_HEADER_BYTES / 1024));
  } else if (t->stalled) {
    t->own_kind = "timeout";
    snprintf(m, n, "no data from the server for %g s (stall_timeout)", (double)t->stall_ms / 1000.0);
  } else if (t->socket_errno) {
    struct rlimit rl;
    t->own_kind = "connect";
    if (t->socket_errno == ENFILE || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
      snprintf(m, n, "out of file descriptors: %s; lower max_workers or raise the limit",
               t->socket_errno == ENFILE ? "the system's file table is full" : "this process hit its limit (ulimit -n)");
    else
      snprintf(m, n, "out of file descriptors: this process may open %.0f (ulimit -n); lower max_workers or raise the limit",
               (double)rl.rlim_cur);
  } else if ((result == CURLE_OUT_OF_MEMORY
#if LIBCURL_VERSION_NUM >= 0x080600
              || result == CURLE_TOO_LARGE
#endif
              ) && t->last_byte_ms && t->response.len == 0) {
    /* libcurl refuses one header line past its own limit (100 KB), and
     * says "out of memory" before 8.6 */
    t->own_kind = "protocol";
    snprintf(m, n, "a response header line is larger than libcurl accepts (100 KB)");
  }
}

void owl_transfer_start(owl_transfer *t) {
  t->state = OWL_RUNNING;
  if (t->stream) t->started_ms = owl_now_ms();
}

void owl_transfer_finish(owl_transfer *t, CURLcode result) {
  if (t->easy) {
    long code = 0;
#if LIBCURL_VERSION_NUM < 0x075000
    curl_off_t connect_us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    if (connect_us > 0) t->connected = 1;
#endif
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->status = code;
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  t->result = result;
  t->state = OWL_DONE;
  if (result != CURLE_OK && !t->cancelled) explain(t, result);
  if (t->sse) owl_sse_free(&t->parser);
  owl_pick_memo_free(&t->pick_memo);
  owl_buf_free(&t->body);
  owl_headers_release(t->headers);
  t->headers = NULL;
  owl_budget_release(t->budget);
  t->budget = NULL;
}

const char *owl_transfer_failure(owl_transfer *t, const char **message) {
  CURLcode r = t->result;
  *message = t->errbuf[0] ? t->errbuf : curl_easy_strerror(r);
  if (t->cancelled) {
    *message = "the transfer was cancelled";
    return "cancelled";
  }
  if (t->state != OWL_DONE) {
    *message = "the transfer has not finished";
    return "pending";
  }
  if (t->own_kind) return t->own_kind;
  switch (r) {
    case CURLE_OK:
      return NULL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return "connect";
    case CURLE_OPERATION_TIMEDOUT:
      /* The connect timeout covers TCP and TLS set-up: until a connection is
       * ready, a timeout is a failure to connect. */
      return t->connected ? "timeout" : "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return "tls";
    default:
      /* Empty, truncated, reset or unparsable responses. */
      return "protocol";
  }
}

/* ---- Lua methods ------------------------------------------------------- */

static const char *const state_names[] = {"new", "queued", "running", "done"};

static int t_state(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  lua_pushstring(L, state_names[t->state]);
  return 1;
}

static int t_status(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  lua_pushinteger(L, (lua_Integer)t->status);
  return 1;
}

static int t_failure(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  const char *message;
  const char *kind = owl_transfer_failure(t, &message);
  if (kind == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, kind);
  lua_pushstring(L, message);
  /* Whether owl ended the transfer at one of its own limits (a body over
   * max_response_bytes, the run's budget, oversized headers or events):
   * the same request would fail the same way, so a retry policy skips it. */
  lua_pushboolean(L, t->own_kind != NULL && strcmp(t->own_kind, "protocol") == 0);
  return 3;
}

/* t:body([max_bytes]): the body, or only its first max_bytes bytes (a
 * huge error body is quoted from a prefix without copying the rest). */
static int t_body(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  size_t n = t->response.len;
  if (!lua_isnoneornil(L, 2)) {
    double max = owl_checkint(L, 2, 0, OWL_MAX_EXACT, "t:body max_bytes");
    if (max < (double)n) n = (size_t)max;
  }
  lua_pushlstring(L, t->response.data ? t->response.data : "", n);
  return 1;
}

/* t:take([max_bytes]): the body bytes not taken yet, or only the first
 * max_bytes of them; they are taken. A stream consumer reads each byte
 * once, without the body being copied whole each time. */
static int t_take(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  size_t n = t->response.len - t->taken;
  if (!lua_isnoneornil(L, 2)) {
    double max = owl_checkint(L, 2, 0, OWL_MAX_EXACT, "t:take max_bytes");
    if (max < (double)n) n = (size_t)max;
  }
  lua_pushlstring(L, n ? t->response.data + t->taken : "", n);
  t->taken += n;
  return 1;
}

static int t_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)owl_transfer_check(L, 1)->received);
  return 1;
}

/* The record at p: its head, and where its type and payload begin. */
static const char *read_head(const char *p, event_head *h) {
  memcpy(h, p, sizeof *h);
  return p + sizeof *h;
}

static const char *next_record(const char *p) {
  event_head h;
  p = read_head(p, &h);
  return p + h.type_len + h.data_len + (h.kind == EV_RAW && h.has_id ? h.id_len : 0);
}

/* Pushes { event =, pick = { field = value } } for the picked record at
 * p; a field its events did not give is absent. */
static void push_picked(lua_State *L, const owl_pick *pick, const char *p) {
  event_head h;
  const char *v = read_head(p, &h), *vend;
  lua_createtable(L, 0, 2);
  lua_pushlstring(L, v, h.type_len);
  lua_setfield(L, -2, "event");
  v += h.type_len;
  vend = v + h.data_len;
  lua_createtable(L, 0, owl_pick_nfields(pick));
  while (v < vend) {
    owl_pick_value pv;
    size_t nlen;
    int join;
    memcpy(&pv, v, sizeof pv);
    v += sizeof pv;
    lua_pushlstring(L, v, pv.len);
    lua_setfield(L, -2, owl_pick_field(pick, pv.field, &nlen, &join));
    v += pv.len;
  }
  lua_setfield(L, -2, "pick");
}

/* t:events([max]): the events parsed since the last call (or only the
 * first max of them), as an array of { event =, data =, id = }, and of
 * { event =, pick = } for the events a picker took (t:sse_pick; one per
 * event, or with merge one per run of them); they are taken. The array is
 * made at its full size first; a memory error while filling it loses
 * nothing, as the queue moves on only after. A consumer that takes a few
 * at a time keeps a flood of small events (a server's pings) from becoming
 * one Lua table per event all at once: the queue holds them as compact
 * records until then (the fault matrix's endless ping stream: 4 MiB of
 * pings made 89k tables, 19 MiB, in one call). */
static int t_events(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  const char *p;
  size_t n, i;
  if (!t->sse) return luaL_error(L, "owl.core: t:events() is for a transfer made with spec.sse");
  n = t->nevents;
  if (!lua_isnoneornil(L, 2)) {
    double max = owl_checkint(L, 2, 1, OWL_MAX_EXACT, "t:events max");
    if (max < (double)n) n = (size_t)max;
  }
  lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
  p = t->events.data + t->events_off;
  for (i = 0; i < n; i++, p = next_record(p)) {
    event_head h;
    const char *q = read_head(p, &h);
    if (h.kind == EV_PICK) {
      push_picked(L, t->pick, p);
      lua_rawseti(L, -2, (int)i + 1);
      continue;
    }
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, q, h.type_len);
    lua_setfield(L, -2, "event");
    q += h.type_len;
    lua_pushlstring(L, q, h.data_len);
    lua_setfield(L, -2, "data");
    q += h.data_len;
    if (h.has_id) {
      lua_pushlstring(L, q, h.id_len);
      lua_setfield(L, -2, "id");
    }
    lua_rawseti(L, -2, (int)i + 1);
  }
  t->nevents -= n;
  t->events_off = (size_t)(p - t->events.data);
  /* a merged run of picked events may have been taken: the next picked
   * event starts a record of its own */
  t->open_pick = OWL_NO_RUN;
  if (t->nevents == 0) {
    /* taken: a large queue's memory goes now, not at the end of the stream
     * (a thousand streams would each hold their largest turn's worth); a
     * turn's usual few hundred bytes stay for the next one */
    if (t->events.cap > OWL_EVENTS_KEEP) owl_buf_free(&t->events);
    else owl_buf_reset(&t->events);
    t->events_off = 0;
  }
  return 1;
}

/* t:sse_pick(picker or nil [, merge]): the events that arrive from now on
 * go through picker (core.sse_pick), which takes out the values its paths
 * name in C; t:events() hands those as { event =, pick = }. With merge,
 * picked events of one type that arrive in a row (no event handed whole
 * between them, no t:events() call) make one: joined fields concatenated,
 * the others the last value; and picked events are no news to the loop
 * (the transfer is reported when an event comes whole, or at its end), so
 * a reader that wants no delta as it comes wakes a few times per stream,
 * not once per read. Events queued before are handed as they are; nil
 * stops picking. */
static int t_sse_pick(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  owl_pick *p = lua_isnoneornil(L, 2) ? NULL : owl_pick_check(L, 2);
  if (!t->sse) return luaL_error(L, "owl.core: t:sse_pick() is for a transfer made with spec.sse");
  if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TBOOLEAN)
    return luaL_error(L, "owl.core: t:sse_pick merge must be a boolean, not %s", luaL_typename(L, 3));
  if (p != t->pick) {
    /* picked records already queued name the old picker's fields */
    const char *q, *end = t->events.data + t->events.len;
    for (q = t->events.data; q < end; q = next_record(q)) {
      event_head h;
      read_head(q, &h);
      if (h.kind == EV_PICK)
        return luaL_error(L, "owl.core: t:sse_pick() while picked events wait (take them with t:events() first)");
    }
  }
  if (p) owl_pick_retain(p);
  owl_pick_release(t->pick);
  owl_pick_memo_free(&t->pick_memo); /* made by the old picker (whose address a new one may reuse) */
  t->pick = p;
  t->pick_merge = lua_toboolean(L, 3);
  t->pick_join = -1; /* the one joined field merges extend in place, if one */
  if (p) {
    int f, n = 0;
    for (f = 0; f < owl_pick_nfields(p); f++) {
      size_t nlen;
      int join;
      owl_pick_field(p, f, &nlen, &join);
      if (join) t->pick_join = n++ == 0 ? f : -1;
    }
    if (n > 1) t->pick_join = -1;
  }
  t->open_pick = OWL_NO_RUN;
  return 0;
}

static int t_json(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  char err[256];
  if (!owl_json_decode(L, t->response.data ? t->response.data : "", t->response.len, OWL_JSON_MAX_DEPTH, err, sizeof err)) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/* Calls fn for each "Name: value" line of the final response. */
typedef int (*header_fn)(lua_State *L, const char *name, size_t nlen, const char *value, size_t vlen, void *ud);

static int each_header(lua_State *L, owl_transfer *t, header_fn fn, void *ud) {
  const char *p = t->header_lines.data, *end;
  if (p == NULL) return 0;
  end = p + t->header_lines.len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end, *colon, *v, *ve;
    colon = memchr(p, ':', (size_t)(line_end - p));
    int status_line = line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0;
    if (colon && !status_line) {
      v = colon + 1;
      ve = line_end;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      if (fn(L, p, (size_t)(colon - p), v, (size_t)(ve - v), ud)) return 1;
    }
    p = eol ? eol + 1 : end;
  }
  return 0;
}

typedef struct {
  const char *want;
  size_t wlen;
  int found;
} header_query;

static int find_header(lua_State *L, const char *name, size_t nlen, const char *value, size_t vlen, void *ud) {
  header_query *q = (header_query *)ud;
  if (nlen != q->wlen || strncasecmp(name, q->want, nlen) != 0) return 0;
  if (q->found) {
    lua_pushliteral(L, ", ");
    lua_pushlstring(L, value, vlen);
    lua_concat(L, 3);
  } else {
    lua_pushlstring(L, value, vlen);
    q->found = 1;
  }
  return 0;
}

static int t_header(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  header_query q;
  q.want = luaL_checklstring(L, 2, &q.wlen);
  q.found = 0;
  each_header(L, t, find_header, &q);
  if (!q.found) lua_pushnil(L);
  return 1;
}

static int add_header(lua_State *L, const char *name, size_t nlen, const char *value, size_t vlen, void *ud) {
  char lower[256];
  size_t i;
  (void)ud;
  if (nlen >= sizeof lower) return 0;
  for (i = 0; i < nlen; i++) lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
  lua_pushlstring(L, lower, nlen);
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushlstring(L, value, vlen);
  } else {
    lua_pushliteral(L, ", ");
    lua_pushlstring(L, value, vlen);
    lua_concat(L, 3);
  }
  lua_rawset(L, -3);
  return 0;
}

static int t_headers(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  lua_newtable(L);
  each_header(L, t, add_header, NULL);
  return 1;
}

void owl_transfer_cancel(owl_transfer *t) {
  if (t->runner && t->state != OWL_DONE) t->runner->cancel(t);
}

static int t_cancel(lua_State *L) {
  owl_transfer_cancel(owl_transfer_check(L, 1));
  return 0;
}

/* t:release(): frees a finished transfer's buffers (request and response
 * bodies, headers, events) and, once its loop has let go, its libcurl
 * handle, now rather than whenever the collector gets to it: the collector
 * sees only the small userdata, not the kilobytes behind it, so a thousand
 * read transfers could otherwise hold their memory for a long time.
 * status() and failure() still answer; body(), take(), header() and
 * events() are empty. */
static int t_release(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  if (t->state != OWL_DONE) return luaL_error(L, "owl.core: t:release needs a finished transfer (it is %s)", state_names[t->state]);
  if (t->easy && t->runner == NULL) {
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  owl_buf_free(&t->body);
  owl_buf_free(&t->response);
  t->taken = 0; /* else take() would count from the freed body's end: response.len - taken wraps */
  owl_buf_free(&t->header_lines);
  owl_buf_free(&t->events);
  t->nevents = 0;
  owl_pick_release(t->pick);
  t->pick = NULL;
  owl_pick_memo_free(&t->pick_memo);
  t->events_off = 0;
  if (t->sse) owl_sse_free(&t->parser); /* idempotent: __gc frees it again */
  return 0;
}

/* Normally reached once the runner has let go (a loop pins what it holds);
 * when Lua closes the state, transfers may be finalized before their loop
 * and have it forget them first. */
static int t_gc(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  if (t->runner) t->runner->forget(t);
  if (t->easy) {
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  owl_buf_free(&t->body);
  owl_buf_free(&t->response);
  owl_buf_free(&t->header_lines);
  owl_buf_free(&t->events);
  owl_pick_release(t->pick);
  t->pick = NULL;
  owl_pick_memo_free(&t->pick_memo);
  if (t->sse) owl_sse_free(&t->parser);
  owl_headers_release(t->headers);
  t->headers = NULL;
  owl_budget_release(t->budget);
  t->budget = NULL;
  return 0;
}

static int t_tostring(lua_State *L) {
  owl_transfer *t = owl_transfer_check(L, 1);
  lua_pushfstring(L, "owl.transfer (%s, %p)", state_names[t->state], (void *)t);
  return 1;
}

void owl_transfer_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"state", t_state},     {"status", t_status},   {"failure", t_failure}, {"body", t_body},
      {"json", t_json},       {"header", t_header},   {"headers", t_headers}, {"cancel", t_cancel},
      {"size", t_size},       {"take", t_take},       {"events", t_events}, {"release", t_release},
      {"sse_pick", t_sse_pick},
      {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", t_gc}, {"__tostring", t_tostring}, {NULL, NULL}};
  owl_newclass(L, OWL_TRANSFER_MT, methods, meta);
  lua_pushcfunction(L, l_headers);
  lua_setfield(L, -2, "headers");
}
