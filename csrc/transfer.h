/*
 * transfer.h: one HTTP exchange (transfer.c) and the header list a fan-out
 * shares.
 *
 * Ownership:
 * - A transfer is a Lua userdata. It owns its easy handle, its request body
 *   and its response buffers. The body lives until the transfer ends
 *   (libcurl reads it in place: CURLOPT_POSTFIELDS is not copied).
 * - Header lists are shared by every member of a fan-out and counted
 *   (owl_headers): the last transfer to let go frees the list.
 * - A budget (budget.h) is shared by the transfers of a run and by its Lua
 *   handle, and counted like a header list.
 * - No libcurl callback touches Lua: they append to C buffers and set flags.
 *
 * A transfer knows nothing of what runs it. Whoever does (loop.c) installs
 * an owl_runner when it takes the transfer, keeps its own bookkeeping in
 * t->run, and clears the runner when it lets go; transfer.c reaches it only
 * through the runner's hooks.
 */
#ifndef OWL_TRANSFER_H
#define OWL_TRANSFER_H

#include <curl/curl.h>
#include <stdint.h>

#include "budget.h"
#include "owl.h"
#include "pick.h"
#include "sse.h"

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

typedef struct owl_transfer owl_transfer;

typedef enum {
  OWL_NEW = 0, /* configured, not yet handed to a loop */
  OWL_QUEUED,  /* waiting for a slot under the loop's max_in_flight */
  OWL_RUNNING, /* handed to libcurl */
  OWL_DONE     /* finished, cancelled or failed */
} owl_state;

/* What a transfer may ask of the loop running it. */
typedef struct owl_runner {
  /* t:cancel() on a transfer that is not done: end it as cancelled. */
  void (*cancel)(owl_transfer *t);
  /* A stream transfer received body bytes. Called from libcurl's write
   * callback, so it may only note the fact in C. */
  void (*news)(owl_transfer *t);
  /* t is collected while its runner still holds it: only when Lua closes
   * the state, which finalizes transfers before their loop. */
  void (*forget)(owl_transfer *t);
} owl_runner;

typedef struct owl_headers {
  struct curl_slist *list;
  int refs;
} owl_headers;

struct owl_transfer {
  CURL *easy;
  owl_headers *headers;  /* counted reference, or NULL */
  owl_buf body;          /* request body, freed when the transfer ends */
  owl_buf response;      /* response body: all of it, or a 2xx sse stream's first OWL_SSE_KEEP bytes */
  size_t received;       /* response body bytes received, kept or not */
  size_t taken;          /* bytes of response already returned by t:take() */
  owl_buf header_lines;  /* raw header lines of the final response */
  size_t max_response;   /* bytes; past this the transfer fails */
  owl_budget *budget;    /* counted reference, or NULL */
  long stall_ms;         /* 0: no stall_timeout */
  int64_t started_ms;    /* when a stream was handed to libcurl; 0 otherwise */
  int64_t last_byte_ms;  /* when a response byte last came; 0: none yet */
  const char *own_kind;  /* a failure owl diagnosed itself (errbuf has the words), or NULL */
  long status;
  CURLcode result;
  owl_state state;       /* QUEUED is the runner's to set; the others are set here */
  int connected;         /* a connection was established or reused */
  int cancelled;
  int too_large;         /* the body passed max_response_bytes */
  int headers_too_large; /* the headers passed OWL_MAX_HEADER_BYTES */
  int over_budget;
  int stalled;
  int socket_errno;      /* EMFILE or ENFILE when socket() failed, else 0 */
  int is_https;
  int stream;            /* spec.stream: reported while running, whenever body bytes came */
  int sse;               /* spec.sse: a 2xx body goes through parser as it arrives */
  int feeding;           /* sse: -1 until the first body byte, then whether the status is 2xx */
  int sse_failed;        /* the parser failed (parser.err says why) */
  owl_sse parser;        /* sse only; its buffers are freed when the transfer ends */
  owl_buf events;        /* sse: events parsed and not yet taken by t:events(), as records */
  owl_pick *pick;        /* sse: t:sse_pick's picker (counted reference), or NULL */
  int pick_merge;        /* t:sse_pick's merge: picked events in a row make one record, and are no news */
  int pick_join;         /* the picker's one joined field, or -1 (none or several) */
  owl_pick_memo pick_memo; /* the last picked event's shape, for the next (pick.h) */
  int raw_queued;        /* this write queued an event whole (news even with pick_merge) */
  size_t open_pick;      /* offset in events of the picked record a merge extends, or OWL_NO_RUN */
  size_t nevents;
  size_t events_off;     /* where the first event not yet taken starts in events */
  const owl_runner *runner; /* NULL unless a loop holds the transfer */
  /* The runner's bookkeeping, valid while runner is set: loop.c reads and
   * writes it, transfer.c never. */
  struct {
    void *owner;               /* the loop */
    int ref;                   /* registry reference pinning the transfer, or LUA_NOREF */
    int news;                  /* on the loop's news list */
    owl_transfer *prev, *next; /* the loop's list of pinned transfers */
    owl_transfer *qnext;       /* its queue or its done list */
    owl_transfer *nnext;       /* its news list */
  } run;
  char errbuf[CURL_ERROR_SIZE];
};

#define OWL_NO_RUN ((size_t)-1)
#define OWL_MAX_HEADER_BYTES ((size_t)256 * 1024)
/* The raw body a 2xx sse stream keeps, for diagnostics: its events are the
 * answer, and a long stream must not be held twice. An error quotes 200
 * bytes of it, redacted: the rest is room to see a secret that starts
 * inside the quote whole. A thousand streams in flight hold this each. */
#define OWL_SSE_KEEP ((size_t)1024)

/* A new transfer userdata on the stack, state OWL_NEW. */
owl_transfer *owl_transfer_push(lua_State *L);
owl_transfer *owl_transfer_check(lua_State *L, int idx);

/* Builds the header list of spec.headers and pushes a holder that owns one
 * reference until it is collected; a transfer takes a reference of its own.
 * spec.headers may be such a holder already (core.headers): it is pushed. */
owl_headers *owl_headers_push(lua_State *L, int spec_idx);
void owl_headers_release(owl_headers *h);

/* Fills in a new transfer from the spec table. headers: the shared list to
 * use (this takes a reference), or NULL to build one from spec.headers.
 * body_idx: the stack index of the body, or 0 for spec.body. Raises on
 * misuse. */
void owl_transfer_configure(lua_State *L, owl_transfer *t, int spec_idx, owl_headers *headers, int body_idx);

/* The runner hands t to libcurl now: state OWL_RUNNING, and a stream's
 * stall_timeout starts counting. */
void owl_transfer_start(owl_transfer *t);

/* The transfer has ended (or never started): keep the outcome, free what
 * libcurl used, state OWL_DONE. The runner calls it once. */
void owl_transfer_finish(owl_transfer *t, CURLcode result);

/* The kind of failure, or NULL when the exchange completed at the HTTP
 * level (whatever its status); *message gets the words. */
const char *owl_transfer_failure(owl_transfer *t, const char **message);

/* Cancels through the runner; a transfer no loop holds, or one that is
 * done, is left alone. */
void owl_transfer_cancel(owl_transfer *t);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
