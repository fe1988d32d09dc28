# pathfinder build. `make` builds the library and the tool; `make check` runs
# the test suite; `make asan` runs it under AddressSanitizer+UBSan.

CC      ?= gcc
BUILD   ?= build
PKGS    := openblas libcjson zlib lapacke plplot
OPT     ?= -O2 -march=native -fno-math-errno -ftree-vectorize -fvect-cost-model=dynamic
CFLAGS  ?=
CFLAGS  += -std=c11 -Wall -Wextra -Wpedantic $(OPT) -g -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
           -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
           -DPF_DATA_DIR='"$(CURDIR)/data"'
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lopenblas -lcjson -lz) -lm -lpthread
SAN     ?=

LIB_SRC  := $(sort $(wildcard src/core/*.c src/exp/*.c src/io/*.c src/run/*.c))
FIG_SRC  := $(sort $(wildcard src/fig/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
FIG_OBJ  := $(FIG_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS  := $(wildcard include/pathfinder/*.h src/*/*.h tests/*.h)

.PHONY: all deps data fixtures check asan demo bench paper-sweep clean fuzz
all: $(BUILD)/pathfinder $(TEST_BIN)

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

$(BUILD)/pathfinder: $(CLI_OBJ) $(BUILD)/libpathfinder-fig.a $(BUILD)/libpathfinder.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libpathfinder-fig.a $(BUILD)/libpathfinder.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $< $(BUILD)/libpathfinder-fig.a $(BUILD)/libpathfinder.a $(LDLIBS) -lcmocka

fixtures: deps
	@mkdir -p $(BUILD)/fixtures
	@/usr/bin/python3 scripts/make_fixture.py $(BUILD)/fixtures

# The test suite: unit tests, gradient checks, PyTorch cross-checks, and a
# short real-MNIST training run. Installs what it needs first.
check: data
	@$(MAKE) --no-print-directory all fixtures
	@BUILD=$(BUILD) tests/run.sh $(BUILD)
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

# The full paper reproduction (about an hour on 2 cores; not part of check).
paper-sweep: data
	@$(MAKE) --no-print-directory all
	@bench/paper-sweep.sh $(BUILD)

clean:
	rm -rf build build-asan

include tests/fuzz/fuzz.mk
