# pathfinder build. `make` builds the libraries and the tool; `make check` runs
# the test suite; `make asan` runs it under AddressSanitizer+UBSan;
# `make install PREFIX=/usr/local DESTDIR=...` installs (see README).

CC      ?= gcc
BUILD   ?= build
VERSION := $(shell sed -n 's/^\#define PF_VERSION "\(.*\)"/\1/p' include/pathfinder/core.h)
SOVERSION := 0
LIB_PKGS := openblas libcjson zlib lapacke
FIG_PKGS := plplot
PKGS    := $(LIB_PKGS) $(FIG_PKGS)
# Local builds tune for this CPU; PORTABLE=1 for builds that run elsewhere (packages).
ifeq ($(PORTABLE),1)
ARCH_OPT :=
else
ARCH_OPT := -march=native
endif
OPT     ?= -O2 $(ARCH_OPT) -fno-math-errno -ftree-vectorize -fvect-cost-model=dynamic
CFLAGS  ?=
CFLAGS  += -std=c11 -Wall -Wextra -Wpedantic $(OPT) -g -fPIC -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
           -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIB_LIBS := $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null || echo -lopenblas -lcjson -lz -llapacke) -lm -lpthread
FIG_LIBS := $(shell pkg-config --libs $(FIG_PKGS) 2>/dev/null || echo -lplplot)
LDLIBS  := $(LIB_LIBS) $(FIG_LIBS)
# Open MPI: under mpirun the tool shares a command's tasks out among the
# ranks (src/cli/mpi.c; the libraries do not use MPI). Built with it when
# mpicc is there (scripts/install-deps.sh installs it); MPI=0, or no mpicc,
# builds the tool without it, and that tool refuses to run under mpirun.
MPI     ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DPF_MPI $(shell mpicc --showme:compile)
MPI_LIBS   := $(shell mpicc --showme:link)
endif
SAN     ?=

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=

LIB_SRC  := $(sort $(wildcard src/core/*.c src/exp/*.c src/io/*.c src/run/*.c))
FIG_SRC  := $(sort $(wildcard src/fig/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
FIG_OBJ  := $(FIG_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS  := $(wildcard include/*.h include/pathfinder/*.h src/*/*.h tests/*.h)
SO       := $(BUILD)/libpathfinder.so.$(VERSION)
FIG_SO   := $(BUILD)/libpathfinder-fig.so.$(VERSION)

.PHONY: bench-cnn all libs deps data fixtures check asan demo bench paper-sweep clean fuzz install \
        uninstall examples-check python-check mpi-check FORCE
all: libs $(BUILD)/pathfinder $(BUILD)/pathfinder.1 $(TEST_BIN)
libs: $(BUILD)/libpathfinder.a $(BUILD)/libpathfinder-fig.a $(SO) $(FIG_SO) $(BUILD)/pathfinder.pc \
      $(BUILD)/pathfinder-fig.pc

deps:
	@scripts/install-deps.sh

data: deps
	@scripts/fetch-mnist.sh

$(BUILD)/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/libpathfinder.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libpathfinder-fig.a: $(FIG_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared libraries export the functions their public headers declare
# (and the few the figure library takes from the numerics), nothing else.
$(BUILD)/%.map: scripts/export-map.sh $(HEADERS)
	@mkdir -p $(dir $@)
	@scripts/export-map.sh $* > $@

$(SO): $(LIB_OBJ) $(BUILD)/libpathfinder.map
	$(CC) $(SAN) -shared -Wl,-soname,libpathfinder.so.$(SOVERSION) -Wl,--no-undefined \
	    -Wl,--version-script=$(BUILD)/libpathfinder.map -o $@ $(LIB_OBJ) $(LIB_LIBS)
	ln -sf $(notdir $@) $(BUILD)/libpathfinder.so.$(SOVERSION)
	ln -sf libpathfinder.so.$(SOVERSION) $(BUILD)/libpathfinder.so

$(FIG_SO): $(FIG_OBJ) $(SO) $(BUILD)/libpathfinder-fig.map
	$(CC) $(SAN) -shared -Wl,-soname,libpathfinder-fig.so.$(SOVERSION) -Wl,--no-undefined \
	    -Wl,--version-script=$(BUILD)/libpathfinder-fig.map -o $@ $(FIG_OBJ) -L$(BUILD) -lpathfinder \
	    $(FIG_LIBS) $(LIB_LIBS)
	ln -sf $(notdir $@) $(BUILD)/libpathfinder-fig.so.$(SOVERSION)
	ln -sf libpathfinder-fig.so.$(SOVERSION) $(BUILD)/libpathfinder-fig.so

# pkg-config files for the installed tree (PREFIX, LIBDIR, INCLUDEDIR).
$(BUILD)/%.pc: scripts/pkg-config.sh Makefile
	@mkdir -p $(dir $@)
	@scripts/pkg-config.sh $* "$(VERSION)" "$(PREFIX)" "$(LIBDIR)" "$(INCLUDEDIR)" > $@

# (the tool is rebuilt when Open MPI comes or goes)
$(BUILD)/mpi.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(MPI_CFLAGS) $(MPI_LIBS)' | cmp -s - $@ || echo '$(MPI_CFLAGS) $(MPI_LIBS)' > $@
$(BUILD)/src/cli/mpi.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/src/cli/mpi.o: $(BUILD)/mpi.flags
$(BUILD)/pathfinder: $(CLI_OBJ) $(BUILD)/libpathfinder-fig.a $(BUILD)/libpathfinder.a $(BUILD)/mpi.flags
	$(CC) $(SAN) -o $@ $(filter-out %.flags,$^) $(LDLIBS) $(MPI_LIBS)

# The man page, from the tool's own --help texts.
$(BUILD)/pathfinder.1: $(BUILD)/pathfinder scripts/man.sh
	@scripts/man.sh $(BUILD)/pathfinder "$(VERSION)" > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libpathfinder-fig.a $(BUILD)/libpathfinder.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $< $(BUILD)/libpathfinder-fig.a $(BUILD)/libpathfinder.a $(LDLIBS) -lcmocka

install: libs $(BUILD)/pathfinder $(BUILD)/pathfinder.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/pathfinder \
	    $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/pathfinder $(DESTDIR)$(BINDIR)/pathfinder
	install -m 644 include/pathfinder.h $(DESTDIR)$(INCLUDEDIR)/pathfinder.h
	install -m 644 include/pathfinder/*.h $(DESTDIR)$(INCLUDEDIR)/pathfinder/
	install -m 644 $(BUILD)/libpathfinder.a $(BUILD)/libpathfinder-fig.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SO) $(FIG_SO) $(DESTDIR)$(LIBDIR)/
	for l in libpathfinder libpathfinder-fig; do \
	    ln -sf $$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$$l.so.$(SOVERSION); \
	    ln -sf $$l.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/$$l.so; \
	done
	install -m 644 $(BUILD)/pathfinder.pc $(BUILD)/pathfinder-fig.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 644 $(BUILD)/pathfinder.1 $(DESTDIR)$(MANDIR)/man1/pathfinder.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pathfinder $(DESTDIR)$(INCLUDEDIR)/pathfinder.h \
	    $(DESTDIR)$(MANDIR)/man1/pathfinder.1 $(DESTDIR)$(LIBDIR)/pkgconfig/pathfinder.pc \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/pathfinder-fig.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/pathfinder
	for l in libpathfinder libpathfinder-fig; do \
	    rm -f $(DESTDIR)$(LIBDIR)/$$l.a $(DESTDIR)$(LIBDIR)/$$l.so $(DESTDIR)$(LIBDIR)/$$l.so.*; \
	done

# The examples, built as a user would: against a tree installed under a
# temporary DESTDIR, found through pkg-config, and run on small data.
examples-check: libs $(BUILD)/pathfinder $(BUILD)/pathfinder.1
	@BUILD=$(BUILD) CC=$(CC) examples/check.sh

# The Python package (python/) against the libraries and the tool just built,
# with Debian's interpreter (python3-numpy, python3-pytest). PATHFINDER_DATA
# passes through from the environment; without it MNIST is found as the
# library finds it. Under the sanitizers (make asan) the instrumented
# libraries need their runtime loaded first, and Python's own allocations
# are not this project's leaks.
PY_SAN_ENV := $(if $(SAN),LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
              ASAN_OPTIONS=detect_leaks=0)
python-check: libs $(BUILD)/pathfinder
	@PATHFINDER_LIB=$(abspath $(BUILD))/libpathfinder.so.0 \
	    PATHFINDER_FIG_LIB=$(abspath $(BUILD))/libpathfinder-fig.so.0 \
	    PATHFINDER_CLI=$(abspath $(BUILD))/pathfinder $(PY_SAN_ENV) \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests

# The tool under mpirun on 2 and 3 ranks against one process (tests/mpi.sh).
mpi-check: $(BUILD)/pathfinder
	@BUILD=$(BUILD) tests/mpi.sh

fixtures: deps
	@mkdir -p $(BUILD)/fixtures
	@/usr/bin/python3 scripts/make_fixture.py $(BUILD)/fixtures

# The test suite: unit tests, gradient checks, PyTorch cross-checks, and a
# short real-MNIST training run. Installs what it needs first.
check: data
	@$(MAKE) --no-print-directory all fixtures
	@BUILD=$(BUILD) tests/run.sh $(BUILD)
	@$(MAKE) --no-print-directory examples-check
	@$(MAKE) --no-print-directory python-check
	@$(MAKE) --no-print-directory mpi-check
	@$(MAKE) --no-print-directory fuzz-replay

asan:
	@$(MAKE) --no-print-directory check BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

# The main job on the default data (see README).
demo: data
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

bench: data
	@$(MAKE) --no-print-directory all
	@bench/epoch.sh $(BUILD)

# A small CNN's epoch and full-set H.v against PyTorch (bench/cnn_*.sh).
bench-cnn: data
	@$(MAKE) --no-print-directory all
	@bench/cnn_epoch.sh $(BUILD)
	@bench/cnn_hvp.sh $(BUILD)

# The full paper reproduction (about an hour on 2 cores; not part of check).
paper-sweep: data
	@$(MAKE) --no-print-directory all
	@bench/paper-sweep.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan

include tests/fuzz/fuzz.mk
