# owl: build, test, demo. Variables follow LuaRocks' names and can be set
# from the command line (make LUA_VERSION=5.3, make CC=clang).
#
#   make            build owl.core for LUA_VERSION (5.4)
#   make test       install what is missing, build for 5.4, 5.3, 5.1 and LuaJIT,
#                   run luacheck and a clang build, every spec on each Lua,
#                   check-mem, and print the total
#   make test-long  the slow specs' long forms (OWL_LONG=1): a 1000-worker
#                   fan-out against a 600 RPM limit, 5000 workers against
#                   random faults, the fault matrix's child under valgrind
#   make lint       luacheck over lua/, bin/ and spec/ (any warning fails)
#   make check-mem  the C-facing specs under valgrind and ASan/UBSan
#   make demo       the orchestrator-workers coding flow (real API with a key,
#                   owl's mock LLM server without one)
#   make bench      the ../shared/bench table with owl's peer

LUA_VERSION ?= 5.4
# make's built-in CC is "cc", which `?=` would keep: gcc unless set.
ifeq ($(origin CC),default)
CC = gcc
endif
OPT ?= -O2
CFLAGS ?= $(OPT) -g -Wall -Wextra -Werror -std=c99 -pedantic -Wno-overlength-strings
LIBFLAG ?= -shared
PKG_CONFIG ?= pkg-config
LUACHECK ?= luacheck
# bin/owl has no .lua suffix, so luacheck would skip it inside bin/.
LINT_FILES = lua $(wildcard bin/*) spec

# LuaJIT is "jit": its headers and interpreter have names of their own.
lua_pc = $(if $(filter jit,$(1)),luajit,lua$(1))
lua_bin = $(if $(filter jit,$(1)),luajit,lua$(1))

LUA_INCDIR ?= $(patsubst -I%,%,$(firstword $(shell $(PKG_CONFIG) --cflags-only-I $(call lua_pc,$(LUA_VERSION)))))
CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS := $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null)
PCRE2_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpcre2-8 2>/dev/null)
PCRE2_LIBS := $(shell $(PKG_CONFIG) --libs libpcre2-8 2>/dev/null)

BUILD ?= build/$(LUA_VERSION)
SRCS := $(wildcard csrc/*.c)
HDRS := $(wildcard csrc/*.h)
# No -fvisibility flag: the internal headers hide owl's symbols themselves (a
# visibility pragma), so every build, LuaRocks' included, exports only
# luaopen_owl_core.
OWL_CFLAGS = -fPIC -D_POSIX_C_SOURCE=200809L -I$(LUA_INCDIR) $(CURL_CFLAGS) $(PCRE2_CFLAGS) $(EXTRA_CFLAGS)

.PHONY: all build build-all deps test test-long lint check-mem demo bench clean install

all: build

build: $(BUILD)/owl/core.so

$(BUILD)/owl/core.so: $(SRCS) $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(OWL_CFLAGS) $(LIBFLAG) -o $@ $(SRCS) $(CURL_LIBS) $(PCRE2_LIBS) $(EXTRA_LDFLAGS)

build-all:
	@for v in 5.4 5.3 5.1 jit; do $(MAKE) --no-print-directory LUA_VERSION=$$v build || exit 1; done

deps:
	@tools/install-deps test

test: deps
	@$(MAKE) --no-print-directory build-all
	@spec/run.sh

# The long forms of the slow specs (OWL_LONG=1), on 5.4: the issue-sized
# fan-outs that make test runs in a short form.
test-long: deps
	@$(MAKE) --no-print-directory LUA_VERSION=5.4 build
	@OWL_LONG=1 spec/run.sh --lua 5.4 spec/ratelimit_spec.lua spec/load_spec.lua spec/fault_matrix_spec.lua

lint:
	@tools/install-deps lint
	$(LUACHECK) -q --no-color --codes $(LINT_FILES)

check-mem: deps
	@spec/run.sh --mem-only

demo:
	@tools/install-deps demo
	@$(MAKE) --no-print-directory LUA_VERSION=5.4 build
	@examples/demo.sh

bench:
	@tools/install-deps bench
	@$(MAKE) --no-print-directory LUA_VERSION=5.4 build
	../shared/bench/run.sh -p "c_curl_floor lua_http node_openai python_httpx $(CURDIR)/bench/owl" -n "10 100 1000"

clean:
	rm -rf build
