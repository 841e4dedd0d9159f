/*
 * loop.c: the loop object, one libcurl multi handle driven through
 * CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION and
 * curl_multi_socket_action.
 *
 * The loop keeps the set of sockets libcurl wants watched as a pollfd array
 * and the absolute time its timer is due. loop:step() polls them itself;
 * a host loop (Neovim's libuv, a game's frame tick) reads them with
 * loop:sockets() / loop:timeout() and reports readiness with loop:action().
 * Either way, no Lua runs until curl_multi_socket_action has returned.
 *
 * Transfer lifecycle: submit pins the transfer (registry reference) and
 * queues it or adds it to the multi handle; when libcurl reports it done it
 * moves to the done list; the next step, run or action returns it to Lua
 * exactly once and unpins it. A stream transfer that receives body bytes
 * goes on the news list meanwhile: step and action return it too (still
 * pinned, still running), at most once per array and never once it is done.
 *
 * Invariant: the news list is emptied whenever the done list is, so it
 * never holds a transfer the loop has let go of.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"

/* One change of a socket's watch since the last loop:changes(): events is
 * POLLIN/POLLOUT, or CHANGE_REMOVE. An entry whose socket was added and
 * removed again before anyone asked is dead (skipped). */
#define CHANGE_REMOVE ((short)-1)
typedef struct {
  int fd;
  short events;
  char dead;
  char after_remove; /* a remove of the same fd precedes it in the list */
} owl_change;

struct owl_loop {
  CURLM *multi;
  int max_in_flight; /* 0: unlimited */
  int running;
  int queued;
  owl_transfer *pinned;                  /* every transfer this loop pins */
  owl_transfer *queue_head, *queue_tail; /* waiting for a slot */
  owl_transfer *done_head, *done_tail;   /* finished, not yet returned to Lua */
  size_t ndone;
  owl_transfer *news_head, *news_tail;   /* streams with bytes not yet reported, linked by nnext */
  struct pollfd *fds; /* the sockets libcurl wants watched */
  size_t nfds, capfds;
  struct pollfd *ready; /* scratch: copy of the ready ones */
  size_t capready;
  int timer_set;
  int64_t timer_due_ms; /* monotonic */
  int closed;
  int oom;              /* a socket could not be tracked: raised by the next step or action */
  int paced;            /* a host feeds queued transfers itself (loop:feed, a budgeted step) */
  owl_change *changes;  /* watch changes not yet returned by loop:changes() */
  size_t nchanges, capchanges;
  size_t *change_at;    /* fd -> index in changes plus one of its latest entry (0: none) */
  size_t capchange_at;
};

/* ---- libcurl callbacks: they keep C state only ------------------------- */

static short poll_events(int what) {
  short ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= POLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= POLLOUT;
  return ev;
}

/* Drops dead entries; keeps the order and change_at right. */
static void changes_compact(owl_loop *loop) {
  size_t i, n = 0;
  for (i = 0; i < loop->nchanges; i++) {
    owl_change c = loop->changes[i];
    if (c.dead) continue;
    loop->changes[n] = c;
    if ((size_t)c.fd < loop->capchange_at && loop->change_at[c.fd] == i + 1) loop->change_at[c.fd] = n + 1;
    n++;
  }
  loop->nchanges = n;
}

/* Records that fd's watch is now events (or CHANGE_REMOVE), so that the
 * list holds at most a remove and a later state per socket: a host applies
 * them in order and ends up watching what libcurl wants. A socket number
 * closed and opened again keeps its remove: the host must drop its old
 * watcher (libuv's poll handle cannot follow a new socket on the same fd).
 * Returns -1 when out of memory. */
static int change_record(owl_loop *loop, int fd, short events) {
  size_t at;
  owl_change *c;
  if (fd < 0) return 0;
  if ((size_t)fd >= loop->capchange_at) {
    size_t cap = loop->capchange_at ? loop->capchange_at : 64;
    size_t *p;
    while (cap <= (size_t)fd) cap *= 2;
    p = (size_t *)realloc(loop->change_at, cap * sizeof *p);
    if (p == NULL) return -1;
    memset(p + loop->capchange_at, 0, (cap - loop->capchange_at) * sizeof *p);
    loop->change_at = p;
    loop->capchange_at = cap;
  }
  at = loop->change_at[fd];
  if (at > 0) {
    c = &loop->changes[at - 1];
    if (c->events != CHANGE_REMOVE) {
      if (events == CHANGE_REMOVE && c->after_remove) {
        /* added and removed since the host last looked: only the remove
         * before it is news */
        size_t i;
        c->dead = 1;
        loop->change_at[fd] = 0;
        for (i = at - 1; i > 0; i--)
          if (!loop->changes[i - 1].dead && loop->changes[i - 1].fd == fd) {
            loop->change_at[fd] = i;
            break;
          }
        return 0;
      }
      c->events = events; /* the latest state is what counts */
      return 0;
    }
    if (events == CHANGE_REMOVE) return 0;
  }
  if (loop->nchanges == loop->capchanges) {
    size_t cap;
    owl_change *p;
    changes_compact(loop);
    cap = loop->capchanges ? loop->capchanges * 2 : 64;
    if (loop->nchanges < loop->capchanges / 2) cap = loop->capchanges;
    p = (owl_change *)realloc(loop->changes, cap * sizeof *p);
    if (p == NULL) return -1;
    loop->changes = p;
    loop->capchanges = cap;
  }
  c = &loop->changes[loop->nchanges++];
  c->fd = fd;
  c->events = events;
  c->dead = 0;
  c->after_remove = at > 0; /* the entry before was this fd's remove */
  loop->change_at[fd] = loop->nchanges;
  return 0;
}

/* socketp holds the socket's index in fds plus one (0: not tracked yet). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  owl_loop *loop = (owl_loop *)userp;
  size_t idx = (size_t)(uintptr_t)socketp;
  short events;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (idx > 0 && idx <= loop->nfds) {
      size_t last = loop->nfds - 1;
      if (idx - 1 != last) {
        loop->fds[idx - 1] = loop->fds[last];
        curl_multi_assign(loop->multi, loop->fds[idx - 1].fd, (void *)(uintptr_t)idx);
      }
      loop->nfds--;
      if (change_record(loop, (int)s, CHANGE_REMOVE) < 0) loop->oom = 1;
    }
    curl_multi_assign(loop->multi, s, NULL);
    return 0;
  }
  events = poll_events(what);
  if (idx == 0) {
    if (loop->nfds == loop->capfds) {
      size_t cap = loop->capfds ? loop->capfds * 2 : 64;
      struct pollfd *p = (struct pollfd *)realloc(loop->fds, cap * sizeof *p);
      if (p == NULL) {
        loop->oom = 1;
        return -1; /* libcurl fails this transfer */
      }
      loop->fds = p;
      loop->capfds = cap;
    }
    idx = loop->nfds + 1;
    loop->fds[idx - 1].fd = s;
    loop->fds[idx - 1].events = 0; /* so that it counts as a change below */
  }
  if (loop->fds[idx - 1].events != events || idx > loop->nfds) {
    if (change_record(loop, (int)s, events) < 0) {
      loop->oom = 1;
      return -1; /* libcurl fails this transfer */
    }
  }
  if (idx > loop->nfds) { /* a new socket: tracked from now on */
    loop->nfds = idx;
    curl_multi_assign(loop->multi, s, (void *)(uintptr_t)idx);
  }
  loop->fds[idx - 1].events = events;
  loop->fds[idx - 1].revents = 0;
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  owl_loop *loop = (owl_loop *)userp;
  (void)multi;
  if (timeout_ms < 0) {
    loop->timer_set = 0;
  } else {
    loop->timer_set = 1;
    loop->timer_due_ms = owl_now_ms() + timeout_ms;
  }
  return 0;
}

/* Microseconds on the monotonic clock: budgets are a millisecond or so. */
static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- internal list handling -------------------------------------------- */

static void pin_link(owl_loop *loop, owl_transfer *t) {
  t->run.prev = NULL;
  t->run.next = loop->pinned;
  if (loop->pinned) loop->pinned->run.prev = t;
  loop->pinned = t;
}

static void pin_unlink(owl_loop *loop, owl_transfer *t) {
  if (t->run.prev) t->run.prev->run.next = t->run.next;
  else loop->pinned = t->run.next;
  if (t->run.next) t->run.next->run.prev = t->run.prev;
  t->run.prev = t->run.next = NULL;
}

/* The queue and the done list are FIFOs linked through qnext, each with a
 * head and a tail. */
static void list_append(owl_transfer **head, owl_transfer **tail, owl_transfer *t) {
  t->run.qnext = NULL;
  if (*tail) (*tail)->run.qnext = t;
  else *head = t;
  *tail = t;
}

static owl_transfer *list_shift(owl_transfer **head, owl_transfer **tail) {
  owl_transfer *t = *head;
  if (t == NULL) return NULL;
  *head = t->run.qnext;
  if (*head == NULL) *tail = NULL;
  t->run.qnext = NULL;
  return t;
}

/* Removes t from a singly linked list; returns whether it was there. */
static int list_remove(owl_transfer **head, owl_transfer **tail, owl_transfer *t) {
  owl_transfer *prev = NULL, *p;
  for (p = *head; p; prev = p, p = p->run.qnext) {
    if (p != t) continue;
    if (prev) prev->run.qnext = p->run.qnext;
    else *head = p->run.qnext;
    if (*tail == p) *tail = prev;
    p->run.qnext = NULL;
    return 1;
  }
  return 0;
}

static void done_push(owl_loop *loop, owl_transfer *t) {
  list_append(&loop->done_head, &loop->done_tail, t);
  loop->ndone++;
}

static void queue_push(owl_loop *loop, owl_transfer *t) {
  t->state = OWL_QUEUED;
  list_append(&loop->queue_head, &loop->queue_tail, t);
  loop->queued++;
}

static void start_queued(owl_loop *loop);

/* A transfer has ended: record it and fill the freed slot (a paced loop
 * waits for its host's next feed instead). If it is on the news list it
 * stays there, and is reported as done instead. */
static void finish(owl_loop *loop, owl_transfer *t, CURLcode result) {
  owl_transfer_finish(t, result);
  done_push(loop, t);
  if (!loop->paced) start_queued(loop);
}

static int slot_free(owl_loop *loop) {
  return loop->max_in_flight == 0 || loop->running < loop->max_in_flight;
}

/* Hands the next queued transfer to libcurl, which starts it at its next
 * timeout action. */
static void start_one(owl_loop *loop) {
  owl_transfer *t = list_shift(&loop->queue_head, &loop->queue_tail);
  CURLMcode mc;
  loop->queued--;
  mc = curl_multi_add_handle(loop->multi, t->easy);
  if (mc != CURLM_OK) {
    snprintf(t->errbuf, sizeof t->errbuf, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    finish(loop, t, CURLE_FAILED_INIT);
    return;
  }
  owl_transfer_start(t);
  loop->running++;
}

static void start_queued(owl_loop *loop) {
  while (loop->queue_head && slot_free(loop)) start_one(loop);
}

/* Moves every transfer libcurl reports done to the done list. */
static void collect(owl_loop *loop) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(loop->multi, &left)) != NULL) {
    owl_transfer *t = NULL;
    CURLcode result;
    if (m->msg != CURLMSG_DONE) continue;
    result = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(loop->multi, m->easy_handle);
    loop->running--;
    finish(loop, t, result);
  }
}

static void socket_action(owl_loop *loop, curl_socket_t s, int mask) {
  int running;
  curl_multi_socket_action(loop->multi, s, mask, &running);
}

static void fire_timer_if_due(owl_loop *loop) {
  if (loop->timer_set && owl_now_ms() >= loop->timer_due_ms) {
    loop->timer_set = 0;
    socket_action(loop, CURL_SOCKET_TIMEOUT, 0);
  }
}

/* Starts queued transfers one batch at a time, letting libcurl begin each
 * (a timeout action: the connects), until the queue is empty, the slots
 * are full or budget_ms has passed since start_ms. libcurl starts every
 * transfer added since its last timeout action in one call: added all at
 * once, a thousand cost one long call; fed, they spread over the host's
 * turns. Returns whether transfers are still queued. */
#define FEED_BATCH 1
static int feed(owl_loop *loop, int64_t start_us, double budget_ms) {
  while (loop->queue_head && slot_free(loop)) {
    int i;
    for (i = 0; i < FEED_BATCH && loop->queue_head && slot_free(loop); i++) start_one(loop);
    socket_action(loop, CURL_SOCKET_TIMEOUT, 0);
    if ((double)(now_us() - start_us) >= budget_ms * 1000) break;
  }
  return loop->queue_head != NULL && slot_free(loop);
}

/* ---- what Lua sees ------------------------------------------------------ */

owl_loop *owl_loop_check(lua_State *L, int idx) {
  owl_loop *loop = (owl_loop *)luaL_checkudata(L, idx, OWL_LOOP_MT);
  if (loop->closed) luaL_error(L, "owl.core: the loop is closed");
  return loop;
}

static void cancel(owl_transfer *t);
static void news(owl_transfer *t);
static void forget(owl_transfer *t);
static const owl_runner runner = {cancel, news, forget};

/* The loop lets go of t: unpinned, no runner. t must be on none of the
 * loop's FIFOs. */
static void release(lua_State *L, owl_loop *loop, owl_transfer *t) {
  pin_unlink(loop, t);
  if (L) luaL_unref(L, LUA_REGISTRYINDEX, t->run.ref);
  t->run.ref = LUA_NOREF;
  t->run.owner = NULL;
  t->runner = NULL;
}

void owl_loop_submit(lua_State *L, owl_loop *loop, int t_idx) {
  owl_transfer *t = owl_transfer_check(L, t_idx);
  if (t->state != OWL_NEW || t->runner) luaL_error(L, "owl.core: the transfer was already submitted");
  lua_pushvalue(L, t_idx);
  t->run.ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->run.owner = loop;
  t->runner = &runner;
  pin_link(loop, t);
  queue_push(loop, t);
  if (!loop->paced) start_queued(loop); /* a paced loop starts it at its next feed */
}

/* The runner's cancel: ends t wherever it is; the next step, run or action
 * reports it done with failure "cancelled". */
static void cancel(owl_transfer *t) {
  owl_loop *loop = (owl_loop *)t->run.owner;
  t->cancelled = 1;
  if (t->state == OWL_RUNNING) {
    curl_multi_remove_handle(loop->multi, t->easy);
    loop->running--;
  } else if (t->state == OWL_QUEUED) {
    list_remove(&loop->queue_head, &loop->queue_tail, t);
    loop->queued--;
  }
  finish(loop, t, CURLE_ABORTED_BY_CALLBACK);
}

/* The runner's news: a stream got bytes (inside libcurl's write callback). */
static void news(owl_transfer *t) {
  owl_loop *loop = (owl_loop *)t->run.owner;
  if (t->run.news) return;
  t->run.news = 1;
  t->run.nnext = NULL;
  if (loop->news_tail) loop->news_tail->run.nnext = t;
  else loop->news_head = t;
  loop->news_tail = t;
}

/* Empties the news list. */
static void news_clear(owl_loop *loop) {
  owl_transfer *t = loop->news_head, *next;
  for (; t; t = next) {
    next = t->run.nnext;
    t->run.nnext = NULL;
    t->run.news = 0;
  }
  loop->news_head = loop->news_tail = NULL;
}

static void news_remove(owl_loop *loop, owl_transfer *t) {
  owl_transfer *prev = NULL, *p;
  if (!t->run.news) return;
  for (p = loop->news_head; p != t; prev = p, p = p->run.nnext) continue;
  if (prev) prev->run.nnext = t->run.nnext;
  else loop->news_head = t->run.nnext;
  if (loop->news_tail == t) loop->news_tail = prev;
  t->run.nnext = NULL;
  t->run.news = 0;
}

/* The runner's forget: takes t out of the loop without reporting it. Only
 * when Lua closes a state, whose finalizers run in reverse order of
 * creation: transfers before their loop. The registry is going away with
 * the state, so the reference is not released. */
static void forget(owl_transfer *t) {
  owl_loop *loop = (owl_loop *)t->run.owner;
  switch (t->state) {
    case OWL_RUNNING:
      curl_multi_remove_handle(loop->multi, t->easy);
      loop->running--;
      break;
    case OWL_QUEUED:
      list_remove(&loop->queue_head, &loop->queue_tail, t);
      loop->queued--;
      break;
    case OWL_DONE:
      if (list_remove(&loop->done_head, &loop->done_tail, t)) loop->ndone--;
      break;
    default:
      break;
  }
  news_remove(loop, t);
  release(NULL, loop, t);
}

/* Pushes the array of transfers with news: the finished ones (let go of),
 * in the order they finished, then, with streams set, the running streams
 * that received bytes, in the order their bytes came. The array is made at
 * its full size first, so nothing can fail half-way. */
static int push_news(lua_State *L, owl_loop *loop, int streams) {
  owl_transfer *t;
  size_t n = loop->ndone;
  int i = 0;
  if (loop->oom) {
    loop->oom = 0;
    return luaL_error(L, "owl.core: out of memory tracking sockets");
  }
  if (streams)
    for (t = loop->news_head; t; t = t->run.nnext)
      if (t->state != OWL_DONE) n++;
  lua_createtable(L, (int)n, 0);
  for (t = loop->done_head; t; t = t->run.qnext) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->run.ref);
    lua_rawseti(L, -2, ++i);
  }
  if (streams)
    for (t = loop->news_head; t; t = t->run.nnext) {
      if (t->state == OWL_DONE) continue;
      lua_rawgeti(L, LUA_REGISTRYINDEX, t->run.ref);
      lua_rawseti(L, -2, ++i);
    }
  news_clear(loop);
  while ((t = list_shift(&loop->done_head, &loop->done_tail)) != NULL) release(L, loop, t);
  loop->ndone = 0;
  return 1;
}

static int pending(owl_loop *loop) {
  return loop->running + loop->queued;
}

/* Waits at most wait_ms (-1: until libcurl's timer or activity) and lets
 * libcurl act on what is ready. With report set (step, not run) it does not
 * wait while it has news to return. With a budget (budget_ms >= 0, from
 * start_us) it acts on ready sockets only until the budget is spent (the
 * rest stay ready for the next step: poll is level-triggered), then feeds
 * queued transfers with what is left (a batch at least). */
static void step(lua_State *L, owl_loop *loop, long wait_ms, int report, int64_t start_us, double budget_ms) {
  int n;
  size_t i, nready = 0;
  if (budget_ms < 0) start_queued(loop); /* a paced loop driven by a plain step */
  fire_timer_if_due(loop);
  collect(loop);
  if ((report && (loop->ndone > 0 || loop->news_head)) || pending(loop) == 0) wait_ms = 0;
  if (loop->timer_set) {
    int64_t left = loop->timer_due_ms - owl_now_ms();
    if (left < 0) left = 0;
    if (wait_ms < 0 || left < wait_ms) wait_ms = (long)left;
  }
  /* Running transfers always have a timer or a socket; this bound only
   * guards an unbounded wait against a state libcurl did not announce. */
  if (wait_ms < 0) wait_ms = 1000;
  n = poll(loop->fds, (nfds_t)loop->nfds, (int)wait_ms);
  if (n < 0 && errno != EINTR) luaL_error(L, "owl.core: poll failed: %s", strerror(errno));
  if (wait_ms > 0 && budget_ms >= 0) start_us = now_us(); /* the budget is for work, not the wait */
  if (n > 0) {
    /* socket_action may add and remove sockets: act on a copy. */
    if (loop->capready < loop->nfds) {
      struct pollfd *p = (struct pollfd *)realloc(loop->ready, loop->nfds * sizeof *p);
      if (p == NULL) luaL_error(L, "owl.core: out of memory");
      loop->ready = p;
      loop->capready = loop->nfds;
    }
    for (i = 0; i < loop->nfds; i++)
      if (loop->fds[i].revents) loop->ready[nready++] = loop->fds[i];
    for (i = 0; i < nready; i++) {
      short re = loop->ready[i].revents;
      if (budget_ms >= 0 && i > 0 && (double)(now_us() - start_us) >= budget_ms * 1000) break;
      int mask = 0;
      if (re & (POLLIN | POLLHUP)) mask |= CURL_CSELECT_IN;
      if (re & POLLOUT) mask |= CURL_CSELECT_OUT;
      if (re & (POLLERR | POLLNVAL)) mask |= CURL_CSELECT_ERR;
      socket_action(loop, loop->ready[i].fd, mask);
    }
  }
  fire_timer_if_due(loop);
  collect(loop);
  if (budget_ms >= 0) { /* one batch at least, so that starts never starve */
    feed(loop, start_us, budget_ms);
    collect(loop);
  }
}

/* A budget in ms: a number from 0 to a day (NaN raises). */
static double check_budget(lua_State *L, int idx) {
  lua_Number b = luaL_checknumber(L, idx);
  if (!(b >= 0 && b <= 86400000)) luaL_argerror(L, idx, "budget_ms must be a number from 0 to 86400000");
  return (double)b;
}

/* The wait of step, in ms: negative (-inf too) waits for libcurl's timer
 * or activity, more than a day (inf, 1e20) is a day, a fraction is cut to
 * whole ms. NaN is nobody's wait: it raises. */
static long check_wait(lua_State *L, int idx) {
  lua_Number w = luaL_optnumber(L, idx, 0);
  if (w != w) luaL_argerror(L, idx, "timeout_ms is NaN");
  if (w < 0) return -1;
  if (w > 86400000) w = 86400000;
  return (long)w;
}

/* loop:step([timeout_ms [, budget_ms]]): with a budget the loop is paced
 * from then on (see feed). */
static int l_step(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  int64_t start = now_us();
  long wait = check_wait(L, 2);
  double budget = lua_isnoneornil(L, 3) ? -1 : check_budget(L, 3);
  if (budget >= 0) loop->paced = 1;
  step(L, loop, wait, 1, start, budget);
  return push_news(L, loop, 1);
}

/* loop:feed(budget_ms) -> reported, more: starts queued transfers until
 * budget_ms is spent; more is true while some could start but wait for the
 * next feed. The loop is paced from then on: a submitted or freed slot
 * waits for a feed (or a plain step or run) instead of starting at once. */
static int l_feed(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  int64_t start = now_us();
  double budget = check_budget(L, 2);
  int more;
  loop->paced = 1;
  more = feed(loop, start, budget);
  collect(loop);
  push_news(L, loop, 1);
  lua_pushboolean(L, more);
  return 2;
}

/* loop:changes() -> { {fd, "r"|"w"|"rw"|"remove"}, ... }: how the sockets
 * libcurl wants watched changed since the last call, in order. A host keeps
 * one watcher per fd: it applies each entry (a remove drops the watcher;
 * one for an fd it never saw is ignored), and then watches exactly what
 * loop:sockets() would say. */
static int l_changes(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  size_t i;
  int n = 0;
  if (loop->oom) {
    loop->oom = 0;
    return luaL_error(L, "owl.core: out of memory tracking sockets");
  }
  lua_createtable(L, (int)loop->nchanges, 0);
  for (i = 0; i < loop->nchanges; i++) {
    owl_change c = loop->changes[i];
    if (c.dead) continue;
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, c.fd);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, c.events == CHANGE_REMOVE ? "remove"
                      : (c.events & POLLIN) && (c.events & POLLOUT) ? "rw"
                      : (c.events & POLLOUT) ? "w" : "r");
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, ++n);
  }
  /* made in full first: a memory error above leaves the list as it was */
  for (i = 0; i < loop->nchanges; i++)
    if ((size_t)loop->changes[i].fd < loop->capchange_at) loop->change_at[loop->changes[i].fd] = 0;
  loop->nchanges = 0;
  return 1;
}

/* Steps until nothing is queued or running; returns every transfer that
 * completed meanwhile (finished ones only: whatever ran has finished). */
static int l_run(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  while (pending(loop) > 0) step(L, loop, -1, 0, 0, -1);
  return push_news(L, loop, 0);
}

static int l_pending(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  lua_pushinteger(L, loop->queued);
  lua_pushinteger(L, loop->running);
  return 2;
}

static int l_sockets(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  size_t i;
  lua_createtable(L, 0, (int)loop->nfds);
  for (i = 0; i < loop->nfds; i++) {
    short ev = loop->fds[i].events;
    lua_pushinteger(L, loop->fds[i].fd);
    lua_pushstring(L, (ev & POLLIN) && (ev & POLLOUT) ? "rw" : (ev & POLLOUT) ? "w" : (ev & POLLIN) ? "r" : "");
    lua_rawset(L, -3);
  }
  return 1;
}

static int l_timeout(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  if (!loop->timer_set) {
    lua_pushinteger(L, -1);
  } else {
    int64_t left = loop->timer_due_ms - owl_now_ms();
    lua_pushinteger(L, (lua_Integer)(left < 0 ? 0 : left));
  }
  return 1;
}

static int l_action(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  /* any negative integer is the timer; a socket is an int */
  double fd = owl_checkint(L, 2, -2147483648.0, 2147483647.0, "loop:action fd");
  if (fd < 0) {
    loop->timer_set = 0;
    socket_action(loop, CURL_SOCKET_TIMEOUT, 0);
  } else {
    const char *ev = luaL_optstring(L, 3, "rw");
    int mask = 0;
    if (strchr(ev, 'r')) mask |= CURL_CSELECT_IN;
    if (strchr(ev, 'w')) mask |= CURL_CSELECT_OUT;
    if (strchr(ev, 'e')) mask |= CURL_CSELECT_ERR;
    socket_action(loop, (curl_socket_t)(int)fd, mask);
  }
  fire_timer_if_due(loop);
  collect(loop);
  return push_news(L, loop, 1);
}

/* Cancels and frees every transfer, then the multi handle. Idempotent:
 * close, __gc and __close all come here. With report set it leaves on the
 * stack an array of the transfers it ended or had not yet reported (those
 * finished but unreported first, in the order they finished; then the ones
 * it cancels, oldest first), so that a driver can hand each one to whoever
 * waits for it. */
static void close_loop(lua_State *L, owl_loop *loop, int report) {
  owl_transfer *t, *oldest;
  int n = 0;
  if (report) lua_newtable(L);
  if (loop->closed) return;
  if (report) { /* before any change: a memory error here leaves the loop as it was */
    for (t = loop->done_head; t; t = t->run.qnext) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, t->run.ref);
      lua_rawseti(L, -2, ++n);
    }
    for (oldest = loop->pinned; oldest && oldest->run.next; oldest = oldest->run.next) continue;
    for (t = oldest; t; t = t->run.prev) {
      if (t->state == OWL_DONE) continue;
      lua_rawgeti(L, LUA_REGISTRYINDEX, t->run.ref);
      lua_rawseti(L, -2, ++n);
    }
  }
  loop->closed = 1;
  news_clear(loop);
  while ((t = loop->pinned) != NULL) {
    if (t->state == OWL_RUNNING) curl_multi_remove_handle(loop->multi, t->easy);
    if (t->state != OWL_DONE) {
      t->cancelled = 1;
      owl_transfer_finish(t, CURLE_ABORTED_BY_CALLBACK);
    }
    t->run.qnext = NULL;
    release(L, loop, t);
  }
  loop->queue_head = loop->queue_tail = loop->done_head = loop->done_tail = NULL;
  loop->running = loop->queued = 0;
  loop->ndone = 0;
  if (loop->multi) curl_multi_cleanup(loop->multi);
  loop->multi = NULL;
  free(loop->fds);
  free(loop->ready);
  free(loop->changes);
  free(loop->change_at);
  loop->fds = loop->ready = NULL;
  loop->changes = NULL;
  loop->change_at = NULL;
  loop->nfds = loop->capfds = loop->capready = 0;
  loop->nchanges = loop->capchanges = loop->capchange_at = 0;
}

static int l_close(lua_State *L) {
  close_loop(L, (owl_loop *)luaL_checkudata(L, 1, OWL_LOOP_MT), 1);
  return 1;
}

/* __gc and __close: nobody is there to take the array. */
static int l_gc(lua_State *L) {
  close_loop(L, (owl_loop *)luaL_checkudata(L, 1, OWL_LOOP_MT), 0);
  return 0;
}

static int l_is_closed(lua_State *L) {
  lua_pushboolean(L, ((owl_loop *)luaL_checkudata(L, 1, OWL_LOOP_MT))->closed);
  return 1;
}

static int l_tostring(lua_State *L) {
  owl_loop *loop = (owl_loop *)luaL_checkudata(L, 1, OWL_LOOP_MT);
  if (loop->closed) lua_pushliteral(L, "owl.loop (closed)");
  else lua_pushfstring(L, "owl.loop (%d running, %d waiting)", loop->running, loop->queued);
  return 1;
}

/* loop:request(spec) -> transfer; also core.orchestrate and core.aggregate. */
int owl_loop_request(lua_State *L) {
  owl_loop *loop = owl_loop_check(L, 1);
  owl_transfer *t = owl_transfer_push(L);
  owl_transfer_configure(L, t, 2, NULL, 0);
  owl_loop_submit(L, loop, lua_gettop(L));
  return 1;
}

/* core.loop{ max_in_flight = n } */
static int l_new(lua_State *L) {
  owl_loop *loop;
  int max_in_flight = 0;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "max_in_flight") != 0)
        return luaL_error(L, "owl.core.loop: unknown option '%s'", lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
      lua_pop(L, 1);
    }
    lua_getfield(L, 1, "max_in_flight");
    if (!lua_isnil(L, -1)) {
      lua_Number m = lua_tonumber(L, -1);
      /* the range first: (int) of NaN or 1e20 is undefined */
      if (lua_type(L, -1) != LUA_TNUMBER || !(m >= 1 && m <= 1e9) || m != (lua_Number)(int)m)
        return luaL_error(L, "owl.core.loop: max_in_flight must be a positive integer");
      max_in_flight = (int)m;
    }
    lua_pop(L, 1);
  }
  loop = (owl_loop *)owl_newuserdata(L, sizeof *loop);
  memset(loop, 0, sizeof *loop);
  loop->closed = 1; /* until the multi handle exists, so __gc has nothing to do */
  owl_setmetatable(L, OWL_LOOP_MT);
  loop->multi = curl_multi_init();
  if (loop->multi == NULL) return luaL_error(L, "owl.core: curl_multi_init failed");
  loop->closed = 0;
  loop->max_in_flight = max_in_flight;
  curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
  curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
  return 1;
}

void owl_loop_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"step", l_step},       {"run", l_run},         {"pending", l_pending}, {"sockets", l_sockets},
      {"timeout", l_timeout}, {"action", l_action},   {"close", l_close},     {"request", owl_loop_request},
      {"is_closed", l_is_closed}, {"changes", l_changes}, {"feed", l_feed}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_gc}, {"__close", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
  owl_newclass(L, OWL_LOOP_MT, methods, meta);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "loop");
}
