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
PKGS = openblas libpcre2-8 jansson yaml-0.1

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) $(MARCH) -g -pthread \
	-I. $(PKG_CFLAGS)
CFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
LDLIBS = $(PKG_LIBS) -lm -pthread

BUILD ?= build
CORE_SRC = $(wildcard core/*.c) $(wildcard policy/*.c) $(wildcard classifier/*.c) $(wildcard generator/*.c)
CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/%.o)
CLI_SRC = daemon/guard.c daemon/guard_inspect.c daemon/guard_bench.c daemon/guard_classify.c \
	daemon/cli_util.c
CLI_OBJ = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN = $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/t_*.c)) \
	$(BUILD)/tests/mkmodel

all: guard

guard: $(BUILD)/guard
	cp $(BUILD)/guard guard

$(BUILD)/guard: $(CLI_OBJ) $(BUILD)/libguard.a
	$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libguard.a $(LDLIBS)

$(BUILD)/libguard.a: $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libguard.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libguard.a $(LDLIBS)

tests-build: guard $(TEST_BIN)

models: $(BUILD)/tests/mkmodel
	sh tests/mkmodels.sh $(BUILD)

check: tests-build models
	mandoc -Tlint -W warning man/*.[1-8]
	BUILD=$(BUILD) prove -v -f tests/run/*.t

check-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
		CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check

demo: guard models
	sh tests/demo.sh $(BUILD)

bench: tests-build
	BUILD=$(BUILD) sh tests/bench.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(ETCDIR)
	install -m 755 guard $(DESTDIR)$(BINDIR)/guard
	install -m 644 man/guard.1 $(DESTDIR)$(MANDIR)/man1/guard.1
	install -m 644 man/guard-policy.5 $(DESTDIR)$(MANDIR)/man5/guard-policy.5
	install -m 644 etc/policy.yaml $(DESTDIR)$(ETCDIR)/policy.yaml.example

clean:
	rm -rf build build-asan guard guardd

.PHONY: demo all guard check check-asan bench install clean tests-build models
-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
