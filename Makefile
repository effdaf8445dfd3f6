# SPDX-License-Identifier: GPL-2.0-or-later
# Thin wrapper over meson: the two quick-start commands and a few helpers.
#   make demo           the end-to-end demo (two devices through a private broker)
#   make test           build and run every test; first compiles the
#                       release configuration too ($(BUILD_RELEASE),
#                       --buildtype=release, -O3: warnings are errors there)
#   make test-asan      the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-valgrind  the same under valgrind (CK_FORK=no)
#   make bench          benchmark figures (medians); the report of issue 7
#                       in $(BUILD)/bench/report.md and report.json
#   make fuzz           libFuzzer targets, FUZZ_SECONDS (60) each (clang, build-fuzz)

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_RELEASE ?= build-release
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = package image stego proto proto_sealed token device_config admin

.PHONY: all deps build build-release test test-asan test-valgrind bench demo clean fuzz

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

# The configuration the Docker image and packagers use (docker/build.sh):
# gcc -O3 sees truncations -O2 does not, and werror stops the build.
$(BUILD_RELEASE)/build.ninja:
	meson setup $(BUILD_RELEASE) --buildtype=release

build-release: deps $(BUILD_RELEASE)/build.ninja
	meson compile -C $(BUILD_RELEASE)

test: build build-release
	@rc=0; meson test -C $(BUILD) --print-errorlogs || rc=$$?; \
	scripts/test-summary.py $(BUILD)/meson-logs/testlog.json || rc=1; exit $$rc

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false

test-asan: deps $(BUILD_ASAN)/build.ninja
	meson compile -C $(BUILD_ASAN)
	@rc=0; ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C $(BUILD_ASAN) --print-errorlogs || rc=$$?; \
	scripts/test-summary.py $(BUILD_ASAN)/meson-logs/testlog.json || rc=1; exit $$rc

test-valgrind: build
	@rc=0; meson test -C $(BUILD) --setup=valgrind --no-suite scripts --print-errorlogs || rc=$$?; \
	scripts/test-summary.py $(BUILD)/meson-logs/testlog-valgrind.json || rc=1; exit $$rc

bench: build
	$(BUILD)/client/s2s bench crypto
	$(BUILD)/client/s2s bench stego
	S2S_SRCDIR=$(CURDIR) S2S_PLUGIN=$(CURDIR)/$(BUILD)/broker-plugin/mosquitto_s2s.so \
		$(BUILD)/tests/bench_gate -n 1000 -r 3
	S2S_PLUGIN=$(CURDIR)/$(BUILD)/broker-plugin/mosquitto_s2s.so \
		S2S_TOOL=$(CURDIR)/$(BUILD)/client/s2s \
		$(BUILD)/tests/bench_report -o $(BUILD)/bench
	@if [ -x $(BUILD)/tests/bench_cluster ]; then \
		S2S_PLUGIN=$(CURDIR)/$(BUILD)/broker-plugin/mosquitto_s2s.so \
		S2S_TOOL=$(CURDIR)/$(BUILD)/client/s2s \
		$(BUILD)/tests/bench_cluster -n 200 -r 3 -f 3 || \
		[ $$? -eq 77 ]; fi

# One command from a fresh clone: builds what is missing, then runs the
# whole scheme through a private broker (see `s2s demo --help`).
DEMO_OUT ?= $(BUILD)/demo
demo: build
	$(BUILD)/client/s2s demo --out $(DEMO_OUT)

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=enabled -Db_lundef=false

fuzz: deps $(BUILD_FUZZ)/build.ninja
	meson compile -C $(BUILD_FUZZ) $(addprefix tests/fuzz/fuzz_,$(FUZZ_TARGETS))
	@scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_RELEASE)
