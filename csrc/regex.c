/*
 * regex.c: core.regex(pattern), a PCRE2 regex compiled to behave as close to
 * an ECMA-262 regex as PCRE2 allows, because that is the dialect JSON Schema's
 * "pattern" and "patternProperties" are written in.
 *
 *   local re, msg = core.regex("^[a-z]+$")  -- re, or nil and "offset N: why"
 *   re:test(s)        -- true / false (unanchored search), or nil and a message
 *   re:close()        -- frees the code now; idempotent, also __gc and __close
 *
 * Ownership: the userdata owns code and match data from the moment they are
 * created (the userdata exists first), so a Lua error raised at any point
 * leaves nothing unowned; close sets both to NULL.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string.h>

#include "owl.h"

/*
 * PCRE2's JIT scans subjects with aligned SIMD loads that may run past the
 * end of the string (harmless: an aligned load never crosses a page), and
 * valgrind reports each such load as a use of uninitialised memory. PCRE2's
 * maintainers call these false positives, so under valgrind owl skips the
 * JIT: the interpreter gives the same answers and memcheck stays meaningful.
 */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define OWL_REGEX_JIT_OK() (!RUNNING_ON_VALGRIND)
#endif
#endif
#ifndef OWL_REGEX_JIT_OK
#define OWL_REGEX_JIT_OK() 1
#endif

typedef struct {
  pcre2_code *code;
  pcre2_match_data *match; /* one ovector pair, reused by every test */
} owl_regex;

/*
 * ECMA-262 semantics, option by option:
 * - UTF: patterns and subjects are Unicode text, matched by code point.
 * - ALT_BSUX (+ EXTRA_ALT_BSUX): \uhhhh, \u{h...} and \xhh as in JavaScript.
 * - DOLLAR_ENDONLY: "$" is the end of the subject, not before a final "\n".
 * - ALLOW_EMPTY_CLASS: "[]" matches nothing and "[^]" anything.
 * - MATCH_UNSET_BACKREF: a reference to an unset group matches the empty string.
 * - NEVER_BACKSLASH_C: "\C" could split a UTF-8 sequence; JavaScript has none.
 * - no UCP: \d, \w and \b stay ASCII, as ECMA-262 defines them.
 * - newline CR or LF (ANYCRLF): "." excludes both, as in JavaScript.
 */
#define OWL_REGEX_OPTIONS                                                                     \
  (PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |              \
   PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_BACKSLASH_C)

/*
 * ECMA-262 spells Unicode general categories by their long names
 * (\p{Letter}, \p{gc=Lu}, \p{General_Category=Decimal_Number}); PCRE2 10.42
 * knows only the short ones (\p{L}, \p{Lu}, \p{Nd}). Scripts and binary
 * properties already have the same names in both, so only these are mapped.
 */
static const char *const regex_categories[][2] = {
  {"Letter", "L"}, {"Cased_Letter", "L&"}, {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"},
  {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"}, {"Other_Letter", "Lo"},
  {"Mark", "M"}, {"Combining_Mark", "M"}, {"Nonspacing_Mark", "Mn"}, {"Spacing_Mark", "Mc"},
  {"Enclosing_Mark", "Me"}, {"Number", "N"}, {"Decimal_Number", "Nd"}, {"digit", "Nd"},
  {"Letter_Number", "Nl"}, {"Other_Number", "No"}, {"Punctuation", "P"}, {"punct", "P"},
  {"Connector_Punctuation", "Pc"}, {"Dash_Punctuation", "Pd"}, {"Open_Punctuation", "Ps"},
  {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"}, {"Final_Punctuation", "Pf"},
  {"Other_Punctuation", "Po"}, {"Symbol", "S"}, {"Math_Symbol", "Sm"}, {"Currency_Symbol", "Sc"},
  {"Modifier_Symbol", "Sk"}, {"Other_Symbol", "So"}, {"Separator", "Z"}, {"Space_Separator", "Zs"},
  {"Line_Separator", "Zl"}, {"Paragraph_Separator", "Zp"}, {"Other", "C"}, {"Control", "Cc"},
  {"cntrl", "Cc"}, {"Format", "Cf"}, {"Surrogate", "Cs"}, {"Private_Use", "Co"},
  {"Unassigned", "Cn"}, {"LC", "L&"},
};

static int regex_name_is(const char *s, size_t n, const char *name) {
  return strlen(name) == n && memcmp(s, name, n) == 0;
}

/*
 * If pattern[i] starts a "\p{...}" or "\P{...}" whose name PCRE2 spells
 * differently, returns the escape's length and sets *name to PCRE2's name;
 * else returns 0.
 */
static size_t regex_property_at(const char *p, size_t len, size_t i, const char **name) {
  size_t start, end, k;
  const char *value;
  size_t vlen;
  int prefixed = 0;
  if (i + 3 >= len || p[i] != '\\' || (p[i + 1] != 'p' && p[i + 1] != 'P') || p[i + 2] != '{') return 0;
  start = i + 3;
  for (end = start; end < len && p[end] != '}'; end++) {}
  if (end == len) return 0;
  value = p + start;
  vlen = end - start;
  for (k = 0; k < vlen; k++) {
    if (value[k] == '=') {
      if (!regex_name_is(value, k, "General_Category") && !regex_name_is(value, k, "gc")) return 0;
      value += k + 1;
      vlen -= k + 1;
      prefixed = 1;
      break;
    }
  }
  for (k = 0; k < sizeof regex_categories / sizeof regex_categories[0]; k++) {
    if (regex_name_is(value, vlen, regex_categories[k][0])) {
      *name = regex_categories[k][1];
      return end + 1 - i;
    }
  }
  if (!prefixed) return 0;
  /* "gc=Lu": a short name behind the prefix PCRE2 does not accept */
  for (k = 0; k < sizeof regex_categories / sizeof regex_categories[0]; k++) {
    if (regex_name_is(value, vlen, regex_categories[k][1])) {
      *name = regex_categories[k][1];
      return end + 1 - i;
    }
  }
  return 0;
}

/*
 * Walks the pattern as regex_translate writes it. With b, appends PCRE2's
 * spelling to b and returns whether anything changed; without b, returns the
 * offset in the pattern that maps to offset target of the translation (for
 * compile errors, which PCRE2 reports in the translated text).
 */
static size_t regex_walk(const char *p, size_t len, luaL_Buffer *b, size_t target) {
  size_t i = 0, out = 0, changed = 0;
  while (i < len) {
    const char *name = NULL;
    size_t n = regex_property_at(p, len, i, &name);
    size_t step, wrote;
    if (n > 0) {
      wrote = 4 + strlen(name);
      if (b != NULL) {
        luaL_addchar(b, '\\');
        luaL_addchar(b, p[i + 1]);
        luaL_addchar(b, '{');
        luaL_addstring(b, name);
        luaL_addchar(b, '}');
      } else if (target < out + wrote) {
        return i;
      }
      changed = 1;
      step = n;
    } else {
      /* an escape is copied whole, so "\\p{Letter}" stays a literal */
      step = (p[i] == '\\' && i + 1 < len) ? 2 : 1;
      wrote = step;
      if (b != NULL) {
        luaL_addlstring(b, p + i, step);
      } else if (target < out + wrote) {
        return i + (target - out);
      }
    }
    i += step;
    out += wrote;
  }
  return b != NULL ? changed : len;
}

static owl_regex *regex_check(lua_State *L) {
  owl_regex *re = (owl_regex *)luaL_checkudata(L, 1, OWL_REGEX_MT);
  if (re->code == NULL) luaL_error(L, "owl.regex: regex is closed");
  return re;
}

static void regex_free(owl_regex *re) {
  if (re->match != NULL) pcre2_match_data_free(re->match);
  if (re->code != NULL) pcre2_code_free(re->code);
  re->match = NULL;
  re->code = NULL;
}

/* Pushes PCRE2's text for an error code. */
static void regex_push_reason(lua_State *L, int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) {
    lua_pushfstring(L, "PCRE2 error %d", code);
  } else {
    lua_pushstring(L, (const char *)buf);
  }
}

static int regex_new(lua_State *L) {
  size_t len, plen;
  const char *pattern = luaL_checklstring(L, 1, &len);
  const char *pcre = pattern;
  owl_regex *re;
  pcre2_compile_context *cctx;
  int errcode = 0, translated = 0, top;
  PCRE2_SIZE erroffset = 0;
  luaL_Buffer b;

  re = (owl_regex *)owl_newuserdata(L, sizeof *re);
  re->code = NULL;
  re->match = NULL;
  owl_setmetatable(L, OWL_REGEX_MT);
  top = lua_gettop(L);

  plen = len;
  if (memchr(pattern, '\\', len) != NULL) {
    luaL_buffinit(L, &b);
    translated = (int)regex_walk(pattern, len, &b, 0);
    luaL_pushresult(&b);
    /* the translation stays on the stack (above the userdata) while used */
    if (translated) pcre = lua_tolstring(L, -1, &plen);
  }

  /* No Lua call happens while the context is alive, so it cannot leak. */
  cctx = pcre2_compile_context_create(NULL);
  if (cctx == NULL) return luaL_error(L, "owl.regex: out of memory");
  pcre2_set_compile_extra_options(cctx, PCRE2_EXTRA_ALT_BSUX);
  pcre2_set_newline(cctx, PCRE2_NEWLINE_ANYCRLF);
  re->code = pcre2_compile((PCRE2_SPTR)pcre, (PCRE2_SIZE)plen, OWL_REGEX_OPTIONS, &errcode, &erroffset, cctx);
  pcre2_compile_context_free(cctx);
  if (re->code == NULL) {
    if (translated) erroffset = (PCRE2_SIZE)regex_walk(pattern, len, NULL, (size_t)erroffset);
    lua_pushnil(L);
    regex_push_reason(L, errcode);
    lua_pushfstring(L, "offset %d: %s", (int)erroffset, lua_tostring(L, -1));
    lua_remove(L, -2);
    return 2;
  }
  /* JIT is an optimisation: where it is missing or fails, the interpreter
   * gives the same answers, so its result is deliberately not checked. */
  if (OWL_REGEX_JIT_OK()) (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
  re->match = pcre2_match_data_create(1, NULL);
  if (re->match == NULL) return luaL_error(L, "owl.regex: out of memory");
  lua_settop(L, top); /* drops the translation: the userdata is on top */
  return 1;
}

static int regex_test(lua_State *L) {
  owl_regex *re = regex_check(L);
  size_t len;
  const char *subject = luaL_checklstring(L, 2, &len);
  int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, (PCRE2_SIZE)len, 0, 0, re->match, NULL);
  if (rc >= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc == PCRE2_ERROR_NOMATCH) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushnil(L);
  regex_push_reason(L, rc);
  if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) {
    /* For a UTF-8 error the start of the bad sequence is the useful fact. */
    lua_pushfstring(L, "subject offset %d: %s", (int)pcre2_get_startchar(re->match), lua_tostring(L, -1));
  } else {
    lua_pushfstring(L, "match failed: %s", lua_tostring(L, -1));
  }
  lua_remove(L, -2);
  return 2;
}

static int regex_close(lua_State *L) {
  owl_regex *re = (owl_regex *)luaL_checkudata(L, 1, OWL_REGEX_MT);
  regex_free(re);
  return 0;
}

static int regex_tostring(lua_State *L) {
  owl_regex *re = (owl_regex *)luaL_checkudata(L, 1, OWL_REGEX_MT);
  if (re->code == NULL) {
    lua_pushliteral(L, "owl.regex (closed)");
  } else {
    lua_pushfstring(L, "owl.regex (%p)", (void *)re);
  }
  return 1;
}

static const luaL_Reg regex_methods[] = {
  {"test", regex_test},
  {"close", regex_close},
  {NULL, NULL},
};

static const luaL_Reg regex_meta[] = {
  {"__gc", regex_close},
  {"__close", regex_close},
  {"__tostring", regex_tostring},
  {NULL, NULL},
};

void owl_regex_open(lua_State *L) {
  owl_newclass(L, OWL_REGEX_MT, regex_methods, regex_meta);
  lua_pushcfunction(L, regex_new);
  lua_setfield(L, -2, "regex");
}
