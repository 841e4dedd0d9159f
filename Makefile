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
#   make fuzz       libFuzzer (clang, ASan, UBSan) on the JSON decoder, the
#                   SSE parser and the SSE picker, FUZZ_SECONDS each (60;
#                   make test runs 10 s each): make fuzz FUZZ_SECONDS=600
#                   FUZZ_TARGETS=sse
#   make demo       the orchestrator-workers coding flow (real API with a key,
#                   owl's mock LLM server without one)
#   make analysis   the data-analysis example: tools clean a CSV, find trends,
#                   draw an SVG chart; a Markdown report (mock without a key)
#   make bench      the ../shared/bench table with owl's peer
#   make nvim       owl.core for Neovim (LuaJIT) at lua/owl/core.so, where
#                   Neovim's runtime path finds it (a plugin manager's
#                   build = "make nvim"); git ignores it

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

.PHONY: all build build-all rock deps test test-long lint check-mem fuzz demo analysis bench clean install nvim

all: build

build: $(BUILD)/owl/core.so

# One compiler call from the sources to the library: no object files, so
# nothing but $(BUILD)/owl/core.so is ever written.
link_core = $(CC) $(CFLAGS) $(OWL_CFLAGS) $(LIBFLAG) -o $(1) $(SRCS) $(CURL_LIBS) $(PCRE2_LIBS) $(EXTRA_LDFLAGS)

$(BUILD)/owl/core.so: $(SRCS) $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(call link_core,$@)

# LuaRocks' make backend (rockspec/) calls this with BUILD set to the rock's
# own lib directory in the tree it installs to, and LuaRocks' CC, CFLAGS,
# LIBFLAG, LUA_INCDIR and library flags. LuaRocks' builtin backend would
# compile in the checkout instead (csrc/*.o, ./owl/core.so), where a later
# `lua` or `bin/owl` run picks up a build for another Lua. Always rebuilt:
# the rock's directory may hold a build from an earlier install.
rock:
	@mkdir -p $(BUILD)/owl
	$(call link_core,$(BUILD)/owl/core.so)

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

# ---- make fuzz ---------------------------------------------------------
# The harnesses are in spec/fuzz/, beside their seed corpora and the script
# that runs them: they are test code, and csrc/ holds only owl.core's
# sources. (SRCS, csrc/*.c, which the build and the rockspec's `rock`
# target compile, does not recurse and would not take them in; outside
# csrc/ no later wildcard can either.) Each target links only the files it tests
# with the system's Lua 5.4, every file instrumented for the fuzzer.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= json_decode sse pick
FUZZ_CFLAGS ?= -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Wall -Wextra -Werror -std=c99 -pedantic -Wno-overlength-strings
FUZZ_LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags lua5.4 2>/dev/null)
FUZZ_LUA_LIBS := $(shell $(PKG_CONFIG) --libs lua5.4 2>/dev/null)
FUZZ_SRCS_json_decode = csrc/json_decode.c csrc/json_encode.c csrc/buffer.c
FUZZ_SRCS_sse = csrc/sse.c csrc/buffer.c
FUZZ_SRCS_pick = csrc/pick.c csrc/json_decode.c csrc/json_encode.c csrc/buffer.c

build/fuzz/json_decode: spec/fuzz/json_decode_fuzz.c spec/fuzz/check.h $(FUZZ_SRCS_json_decode) $(HDRS) Makefile
build/fuzz/sse: spec/fuzz/sse_fuzz.c spec/fuzz/check.h $(FUZZ_SRCS_sse) $(HDRS) Makefile
build/fuzz/pick: spec/fuzz/pick_fuzz.c spec/fuzz/check.h $(FUZZ_SRCS_pick) $(HDRS) Makefile
build/fuzz/%:
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -D_POSIX_C_SOURCE=200809L $(FUZZ_LUA_CFLAGS) -o $@ $(filter %.c,$^) $(FUZZ_LUA_LIBS) -lm

fuzz:
	@tools/install-deps fuzz
	@$(MAKE) --no-print-directory $(addprefix build/fuzz/,$(FUZZ_TARGETS))
	@spec/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo:
	@tools/install-deps demo
	@$(MAKE) --no-print-directory LUA_VERSION=5.4 build
	@examples/demo.sh

# OUT=folder keeps the report and chart there (default: a new temporary folder).
analysis:
	@tools/install-deps demo
	@$(MAKE) --no-print-directory LUA_VERSION=5.4 build
	@examples/analysis.sh $(if $(OUT),'$(OUT)')

bench:
	@tools/install-deps bench
	@$(MAKE) --no-print-directory LUA_VERSION=5.4 build
	../shared/bench/run.sh -p "c_curl_floor lua_http node_openai python_httpx $(CURDIR)/bench/owl" -n "10 100 1000"

# Neovim loads lua/owl/core.so from its runtime path; the build is LuaJIT's
# (Neovim's Lua), so no system Lua is needed at run time.
nvim:
	@$(MAKE) --no-print-directory LUA_VERSION=jit build
	cp build/jit/owl/core.so lua/owl/core.so

# csrc/*.o and owl/core.so: what LuaRocks' builtin backend left in a
# checkout before the rockspec moved to the make backend.
clean:
	rm -rf build lua/owl/core.so
	rm -f csrc/*.o owl/core.so
	-@rmdir owl 2>/dev/null || true
