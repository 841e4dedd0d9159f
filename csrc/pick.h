/*
 * pick.h: a compiled JSON-path picker (pick.c) for server-sent events.
 *
 * A provider's stream reader knows which few values of an event's JSON it
 * reads; the picker is told those paths from Lua (core.sse_pick) and takes
 * them out of each event in C, inside libcurl's write callback, so that Lua
 * sees a handful of strings instead of decoding every event. It knows no
 * wire format: the paths are the provider's. An event the picker cannot
 * answer for exactly (not a JSON object, a value of an unexpected type, a
 * present "absent" path, a repeated key on a path, escapes in a key on a
 * path, nesting past OWL_PICK_MAX_DEPTH) is handed to Lua whole, as it
 * would have been without a picker.
 *
 * A picker is shared (counted) by the transfers that use it and by its Lua
 * userdata; the last to let go frees it.
 */
#ifndef OWL_PICK_H
#define OWL_PICK_H

#include <stddef.h>

#include "owl.h"

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden) /* see owl.h */
#endif

#define OWL_PICK_MAX_PATHS 32
#define OWL_PICK_MAX_STEPS 8
#define OWL_PICK_MAX_DEPTH 64

typedef struct owl_pick owl_pick;

/* The value of one field an event gave, as owl_pick_event writes it into
 * the output buffer: this head, then len bytes. */
typedef struct owl_pick_value {
  int field;
  size_t len;
} owl_pick_value;

/* Runs the picker over one event. Returns 1 when the event was picked: the
 * values of its fields (owl_pick_value records) were appended to out; 0
 * when it must go to Lua whole (out is as it was); -1 when out of memory
 * (out is as it was). type: the event's type, matched against the
 * picker's event filter. */
int owl_pick_event(const owl_pick *p, const char *type, size_t type_len, const char *data, size_t len, owl_buf *out);

/*
 * What a stream's last picked event looked like, so that the next can be
 * picked without walking it again. The events of one stream differ mostly
 * in one string: the piece of text (OpenAI's chunks repeat id, object,
 * created, model and the path down to the content, some 200 bytes, and
 * close the same way). An event whose bytes are the last one's up to the
 * opening quote of its joined string and from that string's closing quote
 * on, and whose string in between is one the decoder takes, has the same
 * structure, the same verdict and the same values but that string's: they
 * are copied, and only the string is read. A transfer owns one (zeroed at
 * first); owl_pick_memo_free frees it.
 */
typedef struct owl_pick_memo {
  const owl_pick *p; /* the picker it was made by: another starts afresh */
  owl_buf bytes;     /* the prefix, the suffix, the records before and after */
  size_t prefix, suffix, before, after; /* their lengths, in that order */
  int field;         /* the joined string's field */
  int valid;
} owl_pick_memo;

/* owl_pick_event, with memo: the same answer, the same output. */
int owl_pick_event_memo(const owl_pick *p, owl_pick_memo *memo, const char *type, size_t type_len, const char *data,
                        size_t len, owl_buf *out);
void owl_pick_memo_free(owl_pick_memo *memo);

/* The name of field i, and whether its values are joined when picked
 * events are merged (else the last one counts). */
const char *owl_pick_field(const owl_pick *p, int i, size_t *len, int *join);
int owl_pick_nfields(const owl_pick *p);

void owl_pick_retain(owl_pick *p);
void owl_pick_release(owl_pick *p);

/* The picker of the owl.sse_pick userdata at idx (raises otherwise). */
owl_pick *owl_pick_check(lua_State *L, int idx);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
