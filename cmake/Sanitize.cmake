# FEASIBLE_SANITIZE=ON: build everything (library, tests, examples, benchmarks) with
# AddressSanitizer + UndefinedBehaviorSanitizer. Undefined behaviour is fatal
# (-fno-sanitize-recover=undefined) so a test that hits it fails. LibTorch itself is not
# instrumented; ASan still checks every heap access made by our code (its allocator
# replaces malloc/new process-wide). Run with scripts/test-sanitize.sh (`make
# test-sanitize`), which sets ASAN_OPTIONS/LSAN_OPTIONS/UBSAN_OPTIONS and the
# suppressions in tools/sanitize/. See docs/robustness.md.
option(FEASIBLE_SANITIZE "Build with -fsanitize=address,undefined" OFF)

if(FEASIBLE_SANITIZE)
  set(FEASIBLE_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  # Frame pointers for cheap, complete stack traces; line tables (-g1) so reports name
  # file:line without the size and link time of full debug info over the LibTorch headers.
  add_compile_options(${FEASIBLE_SANITIZE_FLAGS} -fno-omit-frame-pointer -g1)
  add_link_options(${FEASIBLE_SANITIZE_FLAGS})
  message(STATUS "feasible: sanitizers on (${FEASIBLE_SANITIZE_FLAGS})")
endif()
