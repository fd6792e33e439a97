# guardd - Llama Guard 3 moderation daemon and filter.
# Variables: PREFIX (/usr/local), DESTDIR, CC, OPT (-O2), MARCH (empty: kernels are chosen at
# run time; e.g. MARCH=-march=native to let the compiler tune everything for this host).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
ETCDIR ?= $(PREFIX)/etc/guardd
CC ?= cc
OPT ?= -O2
MARCH ?=
PKGS = libpcre2-8 jansson yaml-0.1 libpng libjpeg
DPKGS = libevent libevent_openssl openssl msgpack
# the guard command only (guard chat's line editing)
CPKGS = libedit zlib

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) $(MARCH) -g -pthread \
	-I. $(PKG_CFLAGS) $(DPKG_CFLAGS)
CFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
DPKG_CFLAGS := $(shell pkg-config --cflags $(DPKGS))
DPKG_LIBS := $(shell pkg-config --libs $(DPKGS))
CPKG_LIBS := $(shell pkg-config --libs $(CPKGS))
LDLIBS = $(PKG_LIBS) -lm -pthread

BUILD ?= build
# test files run side by side (each daemon test has its own temp dir and sockets)
JOBS ?= 2
# Libraries below, programs on top: every folder is one archive-layer, picked up by wildcard
# (a new file needs no edit here). tests/layers.sh checks that includes point down only.
LIB_SRC = $(wildcard util/*.c) $(wildcard core/*.c) $(wildcard policy/*.c) \
	$(wildcard classifier/*.c) $(wildcard generator/*.c)
CORE_SRC = $(LIB_SRC)
CORE_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
PROTO_SRC = $(wildcard proto/*.c)
PROTO_OBJ = $(PROTO_SRC:%.c=$(BUILD)/%.o)
CLI_SRC = $(wildcard cli/*.c)
D_SRC = $(wildcard daemon/*.c)
D_OBJ = $(D_SRC:%.c=$(BUILD)/%.o) $(PROTO_OBJ)
CLI_OBJ = $(CLI_SRC:%.c=$(BUILD)/%.o) $(PROTO_OBJ)
# daemon objects a test or fuzz target may link (everything but main)
D_LIB_OBJ = $(filter-out $(BUILD)/daemon/guardd.o,$(D_SRC:%.c=$(BUILD)/%.o))
TEST_BIN = $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/t_*.c)) $(BUILD)/tests/loadgen $(BUILD)/tests/chatgen \
	$(BUILD)/tests/mkmodel $(BUILD)/tests/mkmllama

all: guard guardd

# copied by rename, so a running daemon's binary ("text file busy") is no obstacle
guard: $(BUILD)/guard
	cp $(BUILD)/guard guard.tmp && mv -f guard.tmp guard

guardd: $(BUILD)/guardd
	cp $(BUILD)/guardd guardd.tmp && mv -f guardd.tmp guardd

$(BUILD)/guard: $(CLI_OBJ) $(BUILD)/libguard.a
	$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libguard.a $(DPKG_LIBS) $(CPKG_LIBS) $(LDLIBS)

$(BUILD)/guardd: $(D_OBJ) $(BUILD)/libguard.a
	$(CC) $(ALL_CFLAGS) -o $@ $(D_OBJ) $(BUILD)/libguard.a $(DPKG_LIBS) $(LDLIBS)

$(BUILD)/libguard.a: $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# HOT_OPT: extra flags for the compute files only (kernels, vision tower, forward pass,
# matmul), after OPT; empty by default (make check-asan sets it)
HOT_OPT ?=
HOT_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(wildcard core/kern*.c core/vision*.c core/forward*.c \
	core/matmul.c))
$(HOT_OBJ): ALL_CFLAGS += $(HOT_OPT)

# tests and fuzz targets link the daemon's and the protocol's objects from archives, so each
# takes only what it uses
$(BUILD)/libguardd.a: $(D_LIB_OBJ) $(PROTO_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/%.c $(BUILD)/libguard.a $(BUILD)/libguardd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libguardd.a $(BUILD)/libguard.a \
		$(DPKG_LIBS) $(LDLIBS)

FUZZ = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN = $(FUZZ:%=$(BUILD)/tests/fuzz_%)
FUZZ_DOBJ = $(BUILD)/libguardd.a

$(BUILD)/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/driver.c $(BUILD)/libguard.a $(FUZZ_DOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/driver.c $(FUZZ_DOBJ) $(BUILD)/libguard.a \
		$(DPKG_LIBS) $(LDLIBS) $(FUZZ_LIBS_$*)
# targets that compile a cli/ reader in need what it links
FUZZ_LIBS_evalset = -lz

# real coverage-guided fuzzing (libFuzzer + ASan + UBSan, clang from Debian): make fuzz T=request
# The libraries are built with clang in build-fuzz/ and linked as archives, so a target takes
# only the objects it uses. New inputs go to build-fuzz/corpus/T (the committed corpus in
# tests/fuzz/corpus/T is read as seeds, never written). FUZZ_ARGS: libFuzzer flags, e.g.
# FUZZ_ARGS="-runs=1000000 -max_len=4096". make fuzz-merge T=x minimises both into the
# committed corpus (-merge=1 into a fresh dir, FUZZ_MERGE_ARGS); make fuzz-all runs every
# target in turn; tests/fuzz/campaign.sh is the recorded campaign (tests/fuzz/CAMPAIGN.md).
FUZZ_CC ?= clang
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_ARGS ?=
# merge on edges only (no hit counts): every edge the campaign reached, in far fewer files
FUZZ_MERGE_ARGS ?= -use_counters=0
fuzz-build:
	@test -n "$(T)" || { echo "usage: make fuzz T=target ($(FUZZ))"; exit 2; }
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT=-O1 \
		CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" build-fuzz/libguard.a build-fuzz/libguardd.a
	$(FUZZ_CC) $(CFLAGS_BASE:$(OPT)=-O1) -fsanitize=fuzzer $(FUZZ_SAN) -o build-fuzz/fuzz-$(T) \
		tests/fuzz/fuzz_$(T).c build-fuzz/libguardd.a build-fuzz/libguard.a $(DPKG_LIBS) $(LDLIBS) \
		$(FUZZ_LIBS_$(T))

fuzz: fuzz-build
	@mkdir -p build-fuzz/corpus/$(T)
	./build-fuzz/fuzz-$(T) $(FUZZ_ARGS) build-fuzz/corpus/$(T) tests/fuzz/corpus/$(T)

fuzz-merge: fuzz-build
	rm -rf build-fuzz/merged-$(T) && mkdir -p build-fuzz/merged-$(T) build-fuzz/corpus/$(T)
	./build-fuzz/fuzz-$(T) -merge=1 $(FUZZ_MERGE_ARGS) $(FUZZ_ARGS) build-fuzz/merged-$(T) \
		tests/fuzz/corpus/$(T) build-fuzz/corpus/$(T)
	rm -rf tests/fuzz/corpus/$(T) && cp -r build-fuzz/merged-$(T) tests/fuzz/corpus/$(T)

fuzz-all:
	for t in $(FUZZ); do $(MAKE) fuzz T=$$t FUZZ_ARGS="$(FUZZ_ARGS)" || exit 1; done

tests-build: guard guardd $(TEST_BIN) $(FUZZ_BIN)

# models are data, the same from every build: MODELS_FROM names the build whose models
# (made and kept current by its own `make models`) this one links to instead of remaking them
MODELS_FROM ?= $(BUILD)
models: $(BUILD)/tests/mkmodel
	sh tests/mkmodels.sh $(BUILD) $(MODELS_FROM)

# The longest test files start first, so that neither of the JOBS slots is left with a long
# one at the end (the "# N s: command" lines of make check's log give each command's time;
# this order: prove --timer of make check-asan at 3481315..c5d82dd, -O2 compute files)
SLOW_T = 41-imgchat 20-reference 28-mllama 65-gen 31-guard-image-stream 27-mllama-gguf \
	22-quant 24-quantize 64-chat 74-chatcli 94-eval 80-daemon 26-pruned 29-guard-image \
	39-imaged-sock 86-chatd 39-imaged 58-draft 85-faults 27-vision 30-kvcache 06-kq 90-fuzz \
	72-gstream
ALL_T = $(wildcard tests/run/*.t)
RUN_T = $(foreach t,$(SLOW_T),$(filter tests/run/$(t).t,$(ALL_T))) \
	$(filter-out $(SLOW_T:%=tests/run/%.t),$(ALL_T))
check: tests-build models
	mandoc -Tlint -W warning man/*.[1-8]
	BUILD=$(BUILD) prove -j$(JOBS) -v --timer -f $(RUN_T)

# The same tests on an ASan+UBSan build. Its models are the plain build's (made first, by
# the plain mkmodel if need be): data, not code, so remaking them under ASan tests nothing.
# ASAN_OPT: -O1; -O2 for the whole tree compiled about 100 CPU-s longer and was no clear gain
# on the tests (t_ref's F32 run 40% less CPU, t_mllama 7%, 20-reference.t none). The compute
# files alone at -O2 (ASAN_HOT_OPT, HOT_OBJ above) are: t_vision 24.4 -> 11.5 CPU-s, t_guard
# 7.6 -> 3.2, t_gen parity 7.9 -> 5.2, for 14 files compiled longer. make does not see a flag
# change: rm -rf build-asan after changing either.
ASAN_OPT ?= -O1 -fno-omit-frame-pointer
ASAN_HOT_OPT ?= -O2
check-asan:
	$(MAKE) BUILD=build models
	$(MAKE) BUILD=build-asan MODELS_FROM=build OPT="$(ASAN_OPT)" HOT_OPT="$(ASAN_HOT_OPT)" \
		CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check

demo: guard models
	sh tests/demo.sh $(BUILD)

bench: tests-build
	BUILD=$(BUILD) sh tests/bench.sh

# guard against llama.cpp (the measuring instrument, built outside this tree) on the same
# files, interleaved, with this run's OpenBLAS SGEMM rate: make bench-compare LLAMACPP=DIR
# (tests/bench_compare.sh; DIR holds bin/llama-bench, llama-quantize, llama-server)
LLAMACPP ?=
# (after models: its VERSION check would remove a models dir it did not make)
bench-compare: guard guardd models $(BUILD)/tests/bench_sgemm
	BUILD=$(BUILD) LLAMACPP=$(LLAMACPP) sh tests/bench_compare.sh

# the quantized kernels' microbenchmark (tests/bench_kq.c) runs our own kernels
$(BUILD)/tests/bench_kq: tests/bench_kq.c $(BUILD)/libguard.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libguard.a $(LDLIBS)

# the in-process verdict timer (tests/bench_verdict.c) runs our own classifier
$(BUILD)/tests/bench_verdict: tests/bench_verdict.c $(BUILD)/libguardd.a $(BUILD)/libguard.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DPKG_CFLAGS) -o $@ $< $(BUILD)/libguardd.a $(BUILD)/libguard.a $(DPKG_LIBS) $(LDLIBS)

# the vision tower's encode timer (tests/bench_vision.c) runs our own core
$(BUILD)/tests/bench_vision: tests/bench_vision.c $(BUILD)/libguard.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libguard.a $(LDLIBS)

# benchmark helpers tests/bench_*.c: OpenBLAS, and none of our libraries
$(BUILD)/tests/bench_%: tests/bench_%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $$(pkg-config --libs openblas)

# the long soak (64 clients x 1000 requests, 20 hostile ones; minutes): not part of check
soak: tests-build models
	BUILD=$(BUILD) sh tests/soak.sh 64 1000 20

# guard eval on both shipped sets (eval/): make eval MODEL=model.gguf [POLICY=file]; the
# report, JSON, per-item verdicts (resumable) and plots go to $(BUILD)/eval/
MODEL ?=
POLICY ?=
eval: guard
	sh eval/report.sh ./guard "$(MODEL)" $(BUILD)/eval "$(POLICY)"

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(ETCDIR)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8
	install -m 755 guard $(DESTDIR)$(BINDIR)/guard
	install -m 755 guardd $(DESTDIR)$(SBINDIR)/guardd
	install -m 644 man/guard.1 $(DESTDIR)$(MANDIR)/man1/guard.1
	install -m 644 man/guard-policy.5 man/guardd.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 man/guardd-protocol.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 644 man/guardd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 etc/policy.yaml $(DESTDIR)$(ETCDIR)/policy.yaml.example
	install -m 644 etc/guardd.yaml $(DESTDIR)$(ETCDIR)/guardd.yaml.example
	install -m 644 etc/guardd.service etc/guardd.socket $(DESTDIR)$(ETCDIR)/

clean:
	rm -rf build build-asan build-fuzz guard guardd

.PHONY: eval bench-compare fuzz fuzz-build fuzz-merge fuzz-all demo all guard guardd check check-asan bench soak install clean tests-build models
-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(D_OBJ:.o=.d)
