// libFuzzer target for the `feasible` program's command line (apps/feasible/cli.h). The input
// is split on NUL bytes into arguments (argv[0] is "feasible"). parse_command_line must never
// crash, throw, leak (LSan), read out of bounds (ASan) or hit undefined behaviour (UBSan), and
// its outcome must follow cli.h:
//   - exit code 0 (run, --help or --version) or 2 (usage error), never anything else;
//   - a run has exit code 0, no error text, a known experiment, --threads 0 (unset) or
//     1..1024, --epochs 0 (unset) or 1..100000, never --paper with --quick, and a known
//     --gates;
//   - a usage error does not run and says what is wrong on stderr;
//   - exit code 0 without a run (--help, --version) prints something on stdout.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "apps/feasible/cli.h"

namespace {

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "cli_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace feasible::app;
  std::vector<std::string> args{"feasible"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  // Each argument ends with a NUL; the last one's NUL is optional ("a\0b" and "a\0b\0" are
  // both {a, b}; "a\0\0" is {a, ""}).
  if (!current.empty()) args.push_back(current);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);  // argv[argc] is a null pointer, as in main()

  const ParseOutcome o = parse_command_line(static_cast<int>(args.size()), argv.data());
  require(o.exit_code == kExitOk || o.exit_code == kExitUsage, "exit code neither 0 nor 2");
  if (o.run) {
    require(o.exit_code == kExitOk, "run with a nonzero exit code");
    require(o.err.empty(), "run with an error message");
    bool known = o.config.experiment == "all";
    for (const auto& name : experiment_names()) known = known || o.config.experiment == name;
    require(known, "run of an unknown experiment");
    require(o.config.threads == 0 || (o.config.threads >= 1 && o.config.threads <= 1024),
            "--threads out of 1..1024");
    require(!output_root(o.config).empty(), "empty output directory");
    require(o.config.epochs == 0 || (o.config.epochs >= 1 && o.config.epochs <= 100000),
            "--epochs out of 1..100000");
    require(!(o.config.paper && o.config.quick), "--paper together with --quick");
    require(o.config.gates == "input_units" || o.config.gates == "weights", "unknown --gates");
  } else if (o.exit_code == kExitUsage) {
    require(!o.err.empty(), "usage error without a message");
  } else {
    require(!o.out.empty(), "exit 0 without a run and without output (help/version)");
  }
  return 0;
}
