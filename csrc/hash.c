/*
 * hash.c: core.sha256, a stable name for a request (a run's journal keys
 * each answered call by the hash of its request). SHA-256 (FIPS 180-4),
 * written from the standard; the input may be a string or an array of
 * strings hashed as their concatenation, so a request held as pieces
 * (ropes of worker outputs) is never joined in Lua.
 */
#include <stdint.h>
#include <string.h>

#include "owl.h"

typedef struct {
  uint32_t h[8];
  uint64_t bytes;
  unsigned char block[64];
  size_t used;
} sha256_ctx;

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress(sha256_ctx *c, const unsigned char *p) {
  uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (i = 16; i < 64; i++) {
    uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
  e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
  for (i = 0; i < 64; i++) {
    t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
    h = g; g = f; f = e; e = d + t1;
    d = cc; cc = b; b = a; a = t1 + t2;
  }
  c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
  c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_init(sha256_ctx *c) {
  static const uint32_t H0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  memcpy(c->h, H0, sizeof H0);
  c->bytes = 0;
  c->used = 0;
}

static void sha256_update(sha256_ctx *c, const unsigned char *p, size_t len) {
  c->bytes += len;
  while (len > 0) {
    size_t take = 64 - c->used;
    if (take > len) take = len;
    memcpy(c->block + c->used, p, take);
    c->used += take;
    p += take;
    len -= take;
    if (c->used == 64) {
      compress(c, c->block);
      c->used = 0;
    }
  }
}

static void sha256_final(sha256_ctx *c, unsigned char out[32]) {
  uint64_t bits = c->bytes * 8;
  unsigned char pad = 0x80, zero = 0, len[8];
  int i;
  sha256_update(c, &pad, 1);
  while (c->used != 56) sha256_update(c, &zero, 1);
  for (i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, len, 8);
  for (i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(c->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)c->h[i];
  }
}

/* core.sha256(s | {s1, s2, ...}) -> the SHA-256 of s (or of the pieces
 * one after another) as 64 lowercase hex digits. A piece that is not a
 * string raises naming its index. */
static int l_sha256(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  sha256_ctx c;
  unsigned char digest[32];
  char out[64];
  size_t len, i, n;
  const char *s;
  sha256_init(&c);
  if (lua_type(L, 1) == LUA_TSTRING) {
    s = lua_tolstring(L, 1, &len);
    sha256_update(&c, (const unsigned char *)s, len);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    n = owl_rawlen(L, 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, (int)i);
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "owl.core: sha256: piece %d is a %s, not a string", (int)i, luaL_typename(L, -1));
      s = lua_tolstring(L, -1, &len);
      sha256_update(&c, (const unsigned char *)s, len);
      lua_pop(L, 1);
    }
  }
  sha256_final(&c, digest);
  for (i = 0; i < 32; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  lua_pushlstring(L, out, 64);
  return 1;
}

void owl_hash_open(lua_State *L) {
  lua_pushcfunction(L, l_sha256);
  lua_setfield(L, -2, "sha256");
}
