# libFuzzer harnesses for every parser (tests/fuzz/fuzz_NAME.c), built with
# clang against the library compiled again with the fuzzer's coverage and
# ASan/UBSan, in $(BUILD)/fuzz. Included by the top-level Makefile.
#
#   make fuzz         each harness for FUZZ_SECONDS (default 600), one at a
#                     time at nice 19; the corpus grows in $(BUILD)/fuzz/corpus
#   make fuzz-check   each harness over its seed corpus plus 20 s of new
#                     inputs; fails on any crash, leak, timeout or sanitizer report
#   make fuzz-replay  each harness over its committed corpus only (the inputs
#                     that once crashed are kept there): deterministic, part of
#                     make check
#   make fuzz FUZZ_NAMES="idx csv"   only those harnesses
#   make fuzz FUZZ_FLAGS="-fork=1 -ignore_crashes=1"   keep going past crashes
#
# A crash leaves its input in $(BUILD)/fuzz/crashes/NAME-crash-*; replay it
# with $(BUILD)/fuzz/fuzz_NAME FILE.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_NAMES   ?= $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# The project's flags, with gcc's optimization options swapped for clang-friendly ones.
FUZZ_CFLAGS   = $(filter-out $(OPT),$(CFLAGS)) -O1 -fno-omit-frame-pointer
# A slow input (timeout, in s) counts as a failure; so does one malloc over 2 GB.
FUZZ_RUN     := -timeout=30 -rss_limit_mb=2560 -malloc_limit_mb=2048 -print_final_stats=1
FUZZ_FLAGS   ?=
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz-build fuzz-check fuzz-replay

$(FUZZ_DIR)/obj/%.o: %.c $(HEADERS) Makefile tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libpathfinder.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libpathfinder.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libpathfinder.a $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

# run NAME SECONDS CORPUS: fuzz, keep the log, show the final stats line.
define fuzz_run
	mkdir -p $(3) $(FUZZ_DIR)/crashes; \
	echo "== fuzz_$(1): $(2) s"; \
	if nice -n 19 $(FUZZ_DIR)/fuzz_$(1) $(FUZZ_RUN) $(FUZZ_FLAGS) -max_total_time=$(2) \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/$(1)- $(3) tests/fuzz/corpus/$(1) \
	    >$(FUZZ_DIR)/fuzz_$(1).log 2>&1; then \
	    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' $(FUZZ_DIR)/fuzz_$(1).log; \
	else \
	    tail -n 60 $(FUZZ_DIR)/fuzz_$(1).log; echo "fuzz_$(1): FAILED (log: $(FUZZ_DIR)/fuzz_$(1).log)"; \
	    failed="$$failed $(1)"; \
	fi
endef

fuzz: $(FUZZ_BIN)
	@failed=; for n in $(FUZZ_NAMES); do \
	    $(call fuzz_run,$$n,$(FUZZ_SECONDS),$(FUZZ_DIR)/corpus/$$n); \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in$$failed"; exit 1; fi

# A fresh scratch corpus each time, so the result depends only on the seeds.
fuzz-check: $(FUZZ_BIN)
	@failed=; for n in $(FUZZ_NAMES); do \
	    rm -rf $(FUZZ_DIR)/check/$$n; \
	    $(call fuzz_run,$$n,20,$(FUZZ_DIR)/check/$$n); \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-check: crashes in$$failed"; exit 1; fi; \
	echo "fuzz-check: no crashes in $(FUZZ_NAMES)"

fuzz-replay: $(FUZZ_BIN)
	@failed=; for n in $(FUZZ_NAMES); do \
	    if ! $(FUZZ_DIR)/fuzz_$$n $(FUZZ_RUN) -runs=0 tests/fuzz/corpus/$$n \
	        >$(FUZZ_DIR)/replay_$$n.log 2>&1; then \
	        tail -n 40 $(FUZZ_DIR)/replay_$$n.log; failed="$$failed $$n"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-replay: failures in$$failed"; exit 1; fi; \
	echo "fuzz-replay: every corpus input of $(FUZZ_NAMES) passes"
