# The two commands of the README:
#   make demo   installs what is missing, builds in Release, runs the main job:
#               feasible reproduce all --quick (the paper's experiments, two workloads of the default optimizer and the fairness study, about 6 minutes)
#   make test   installs what is missing, builds, runs every test with CTest
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build demo test bench install clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@./$(BUILD)/feasible reproduce all --quick --out results
	@echo "Report: results/index.md (one folder per experiment: report.md, results.json, CSV, figures)"
	@echo "Full settings of the paper: ./$(BUILD)/feasible reproduce all"


test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@cmake --build $(BUILD) --target benchmarks -j $(JOBS)
	@bash bench/run.sh $(BUILD)

install: build
	@cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

clean:
	@rm -rf $(BUILD)

# Robustness checks (docs/robustness.md):
#   make test-sanitize   the library and every test under AddressSanitizer + UBSan (gcc)
#   make fuzz            the libFuzzer targets of fuzz/ (clang), FUZZ_SECONDS per target
SANITIZE_BUILD ?= build-sanitize
FUZZ_BUILD     ?= build-fuzz
FUZZ_SECONDS   ?= 300

.PHONY: test-sanitize fuzz

test-sanitize: setup
	@JOBS=$(JOBS) bash scripts/test-sanitize.sh $(SANITIZE_BUILD)

fuzz: setup
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash scripts/fuzz.sh $(FUZZ_BUILD)
