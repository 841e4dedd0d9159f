/*
 * file.c: core.append_line, the one durable write owl makes (a run's
 * journal). Lua's io library can flush but not fsync, and a journal line
 * that is in the page cache when the machine dies is lost: this appends a
 * line in one write(2) and fsyncs the file before it returns, so a line
 * the caller was told is written survives a crash, and a process killed
 * mid-write leaves at most one torn last line (the reader skips it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "owl.h"

/* Writes all len bytes of s to fd, resuming after a signal or a short
 * write. Returns 0, or -1 with errno set. */
static int write_all(int fd, const char *s, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, s, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    s += n;
    len -= (size_t)n;
  }
  return 0;
}

/* core.append_line(path, line) -> true, or nil and "path: reason". line
 * must hold no newline (one call, one line): the "\n" is added here. The
 * file is created (mode 0644 less the umask) when missing. Blocks for the
 * write and the fsync. */
static int l_append_line(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *line = luaL_checklstring(L, 2, &len);
  char *buf;
  int fd, rc, saved;
  if (memchr(line, '\n', len) != NULL) return luaL_argerror(L, 2, "a line must not contain a newline");
  /* one buffer, so the line and its newline go out in one write(2) */
  buf = (char *)malloc(len + 1);
  if (buf == NULL) return luaL_error(L, "owl.core: append_line: out of memory");
  memcpy(buf, line, len);
  buf[len] = '\n';
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    saved = errno;
    free(buf);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(saved));
    return 2;
  }
  rc = write_all(fd, buf, len + 1);
  if (rc == 0) rc = fsync(fd);
  saved = errno;
  free(buf);
  if (close(fd) != 0 && rc == 0) {
    rc = -1;
    saved = errno;
  }
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(saved));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void owl_file_open(lua_State *L) {
  lua_pushcfunction(L, l_append_line);
  lua_setfield(L, -2, "append_line");
}
