/*
 * http.h: the structures shared by loop.c (the multi loop), transfer.c (one
 * HTTP exchange) and flow.c (the orchestrate / work / aggregate primitives).
 *
 * Ownership, in one place:
 * - A transfer is a Lua userdata. From the moment it is handed to a loop
 *   until the loop reports it complete, the loop pins it with a registry
 *   reference (t->ref), so it cannot be collected while libcurl uses it.
 * - A transfer owns its easy handle, its request body and its response
 *   buffers. The body lives until the transfer ends (libcurl reads it in
 *   place: CURLOPT_POSTFIELDS is not copied).
 * - Header lists are shared by every member of a fan-out and counted
 *   (owl_headers): the last transfer to let go frees the list.
 * - A budget (owl_budget) is shared by the transfers of a run and by its
 *   Lua handle, and counted like a header list.
 * - A window (owl_window) caps how many members of one fan-out run at once;
 *   it is counted by its members and freed with the last of them.
 * - No libcurl callback touches Lua: they append to C buffers and set flags.
 *   Lua runs only after curl_multi_socket_action has returned.
 */
#ifndef OWL_HTTP_H
#define OWL_HTTP_H

#include <curl/curl.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>

#include "owl.h"

typedef struct owl_loop owl_loop;
typedef struct owl_transfer owl_transfer;

typedef enum {
  OWL_NEW = 0, /* configured, not yet handed to a loop */
  OWL_HELD,    /* a fan-out member waiting for its window */
  OWL_QUEUED,  /* waiting for a slot under the loop's max_in_flight */
  OWL_RUNNING, /* added to the multi handle */
  OWL_DONE     /* finished, cancelled or failed; reported or about to be */
} owl_state;

typedef struct owl_headers {
  struct curl_slist *list;
  int refs;
} owl_headers;

/* The bytes every transfer given this budget may receive, together. */
typedef struct owl_budget {
  size_t limit;
  size_t used; /* only grows: a run's budget, not a rate */
  int refs;
} owl_budget;

typedef struct owl_window {
  int limit;  /* members that may run at once */
  int active; /* members queued or running */
  owl_transfer *held_head, *held_tail;
  int refs;   /* members still attached */
} owl_window;

struct owl_transfer {
  CURL *easy;
  owl_loop *loop;        /* set while the loop pins this transfer */
  owl_headers *headers;  /* counted reference, or NULL */
  owl_window *window;    /* counted reference for fan-out members, or NULL */
  owl_buf body;          /* request body, freed when the transfer ends */
  owl_buf response;      /* response body */
  owl_buf header_lines;  /* raw header lines of the final response */
  size_t max_response;   /* bytes; past this the transfer fails */
  owl_budget *budget;    /* counted reference, or NULL */
  long stall_ms;         /* 0: no stall_timeout */
  int64_t last_byte_ms;  /* when a response byte last came; 0: none yet */
  const char *own_kind;  /* a failure owl diagnosed itself (errbuf has the words), or NULL */
  long status;
  CURLcode result;
  owl_state state;
  int ref;               /* registry reference while pinned, else LUA_NOREF */
  int connected;         /* a connection was established or reused */
  int cancelled;
  int too_large;         /* the body passed max_response_bytes */
  int headers_too_large; /* the headers passed OWL_MAX_HEADER_BYTES */
  int over_budget;
  int stalled;
  int socket_errno;      /* EMFILE or ENFILE when socket() failed, else 0 */
  int is_https;
  owl_transfer *prev, *next; /* the loop's list of pinned transfers */
  owl_transfer *qnext;       /* queue, window's held list or done list */
  char errbuf[CURL_ERROR_SIZE];
};

#define OWL_MAX_HEADER_BYTES ((size_t)256 * 1024)

static inline int64_t owl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* transfer.c */
owl_transfer *owl_transfer_push(lua_State *L);
owl_transfer *owl_transfer_check(lua_State *L, int idx);
owl_headers *owl_headers_push(lua_State *L, int spec_idx);
void owl_headers_release(owl_headers *h);
void owl_budget_release(owl_budget *b);
void owl_transfer_configure(lua_State *L, owl_transfer *t, int spec_idx, owl_headers *headers, int body_idx);
void owl_transfer_finish(owl_transfer *t, CURLcode result);
const char *owl_transfer_failure(owl_transfer *t, const char **message);

/* loop.c */
owl_loop *owl_loop_check(lua_State *L, int idx);
void owl_loop_submit(lua_State *L, owl_loop *loop, int t_idx, owl_window *window);
void owl_loop_cancel(owl_transfer *t);
void owl_loop_detach(owl_transfer *t);
int owl_loop_request(lua_State *L);
owl_window *owl_window_new(int limit);

#endif
