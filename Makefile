# bloomsync — build, test, demo, bench, install.
#
#   make            build build/bloomsync and build/bloomsim
#   make check      install missing packages, build (plain + ASan/UBSan), run all tests
#   make demo       install missing packages, build, run a demo sync against bloomsim
#   make bench      benchmark figures (writes bench/results.md)
#   make install    PREFIX=/usr/local DESTDIR=
#
# BUILDDIR and SANITIZE are for the sanitizer build that `make check` drives:
#   make BUILDDIR=build/san SANITIZE=1

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILDDIR ?= build
SANITIZE ?=

CC      ?= cc
PKGS     = libcurl jansson libpq libconfig
SIMPKGS  = libmicrohttpd jansson

OPT      = -O2
ifneq ($(SANITIZE),)
OPT      = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation -g $(OPT) -pthread -MMD -MP
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SIM_CFLAGS := $(shell pkg-config --cflags $(SIMPKGS) 2>/dev/null)
SIM_LIBS   := $(shell pkg-config --libs $(SIMPKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null)
LDFLAGS += -pthread $(if $(SANITIZE),-fsanitize=address$(comma)undefined)
comma := ,

SRCS     := $(filter-out src/main.c,$(wildcard src/*.c))
OBJS     := $(SRCS:src/%.c=$(BUILDDIR)/obj/%.o) $(BUILDDIR)/obj/migrations.o
SIMSRCS  := $(wildcard tests/sim/*.c)
SIMOBJS  := $(SIMSRCS:tests/sim/%.c=$(BUILDDIR)/sim/%.o)
TESTSRCS := $(wildcard tests/test_*.c)
TESTBINS := $(TESTSRCS:tests/%.c=$(BUILDDIR)/tests/%)
MIGRATIONS := $(sort $(wildcard sql/[0-9]*.sql))

.PHONY: all tests check check-unit check-it demo bench install deps clean format san

all: $(BUILDDIR)/bloomsync $(BUILDDIR)/bloomsim

$(BUILDDIR)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -c -o $@ $<

# SQL migrations are embedded in the binary so an installed bloomsync runs from any directory.
$(BUILDDIR)/gen/migrations.c: $(MIGRATIONS) sql/embed.sh
	@mkdir -p $(dir $@)
	sh sql/embed.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILDDIR)/obj/migrations.o: $(BUILDDIR)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

$(BUILDDIR)/libbloomsync.a: $(OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILDDIR)/bloomsync: $(BUILDDIR)/obj/main.o $(BUILDDIR)/libbloomsync.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILDDIR)/sim/%.o: tests/sim/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SIM_CFLAGS) -Itests/sim -c -o $@ $<

$(BUILDDIR)/bloomsim: $(SIMOBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LIBS) -lm

# Unit tests link the library; a test may add link-time wraps in a
# `// LDWRAP: sym sym` line (for faults a real server cannot produce on demand).
$(BUILDDIR)/tests/%: tests/%.c $(BUILDDIR)/libbloomsync.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(SIM_CFLAGS) -Isrc -o $@ $< $(BUILDDIR)/libbloomsync.a \
	  $(foreach s,$(shell sed -n 's#^// LDWRAP: ##p' $<),-Wl$(comma)--wrap=$(s)) \
	  $(LDFLAGS) $(TEST_LIBS) $(PKG_LIBS) $(SIM_LIBS) -lm

tests: all $(TESTBINS)

san:
	$(MAKE) BUILDDIR=build/san SANITIZE=1 tests

deps:
	sh deploy/install-deps.sh

# The test command of the README: installs what is missing, builds the plain and
# the sanitizer variants, runs unit tests then integration tests.
check:
	@sh deploy/install-deps.sh --if-missing
	$(MAKE) tests
	$(MAKE) san
	sh tests/run.sh

demo:
	@sh deploy/install-deps.sh --if-missing
	$(MAKE) all
	sh tests/demo.sh

bench:
	@sh deploy/install-deps.sh --if-missing --bench
	$(MAKE) all
	sh tests/bench.sh

install: $(BUILDDIR)/bloomsync
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/bloomsync $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILDDIR)/bloomsync $(DESTDIR)$(PREFIX)/bin/bloomsync
	install -m 0644 config/bloomsync.conf.example $(DESTDIR)$(PREFIX)/share/bloomsync/bloomsync.conf.example
	install -m 0644 $(MIGRATIONS) $(DESTDIR)$(PREFIX)/share/bloomsync/
	if [ -f docs/bloomsync.1 ]; then install -m 0644 docs/bloomsync.1 $(DESTDIR)$(PREFIX)/share/man/man1/bloomsync.1; fi

format:
	clang-format -i src/*.c src/*.h tests/*.c tests/sim/*.c tests/sim/*.h

clean:
	rm -rf build

-include $(wildcard $(BUILDDIR)/obj/*.d $(BUILDDIR)/sim/*.d $(BUILDDIR)/tests/*.d)
