// Running Relacy models as ctest tests. Each model executable holds a list of
// checks; a check pairs a Relacy test suite with the search to run and the
// result it must end with: test_result_success for a correct structure, a
// specific failure (data race, assertion) for its deliberately broken twin.
// A broken twin that Relacy stops catching fails the run, so the model cannot
// silently become a check that cannot fail.
//
// Command line: no argument runs every check; `--list` names them; a check's
// name runs it alone; `--verbose` prints Relacy's report of every check (the
// interleaving that breaks a broken twin); `--swap-in-broken` runs each broken twin *as if it were
// the correct structure* (expecting success), which must fail: that is how a
// reader sees the model catch the bug.
#pragma once

#include <cstdio>
#include <cstring>
#include <iostream>
#include <streambuf>

#include "model/relacy_sync.h"

namespace hpcalloc::model {

struct ModelCheck {
  const char* name;
  // Runs the search; returns the result Relacy reported.
  rl::test_result_e (*run)(rl::scheduler_type_e search, unsigned iterations_or_bound,
                           std::ostream& out);
  rl::scheduler_type_e search;
  unsigned iterations_or_bound;  // random: iterations; bound: context bound
  rl::test_result_e expected;
};

// Discards Relacy's output without allocating (a growing string buffer would
// be allocated inside the simulation by Relacy's operator new and freed
// outside it).
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

// Runs suite Test under `search`, printing Relacy's report (the failing
// interleaving) to `out`, and returns what Relacy found.
template <class Test>
rl::test_result_e run_relacy(rl::scheduler_type_e search, unsigned iterations_or_bound,
                             std::ostream& out) {
  rl::test_params params;
  params.output_stream = &out;
  params.progress_stream = &out;
  params.search_type = search;
  if (search == rl::sched_bound) params.context_bound = iterations_or_bound;
  if (search == rl::sched_random) params.iteration_count = iterations_or_bound;
  rl::simulate<Test>(params);
  return params.test_result;
}

inline const char* result_name(rl::test_result_e r) { return rl::test_result_str(r); }

inline int run_model_checks(const ModelCheck* checks, int count, int argc, char** argv) {
  const char* only = nullptr;
  bool swap_in_broken = false;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--list") == 0) {
      for (int c = 0; c < count; ++c) std::printf("%s\n", checks[c].name);
      return 0;
    }
    if (std::strcmp(argv[i], "--verbose") == 0) {
      verbose = true;
    } else if (std::strcmp(argv[i], "--swap-in-broken") == 0) {
      swap_in_broken = true;
    } else {
      only = argv[i];
    }
  }
  int failures = 0;
  int ran = 0;
  for (int c = 0; c < count; ++c) {
    const ModelCheck& check = checks[c];
    if (only != nullptr && std::strcmp(only, check.name) != 0) continue;
    const bool broken = check.expected != rl::test_result_success;
    if (swap_in_broken && !broken) continue;
    const rl::test_result_e want = swap_in_broken ? rl::test_result_success : check.expected;
    ++ran;
    NullBuffer discard;
    std::ostream quiet(&discard);
    const rl::test_result_e got =
        check.run(check.search, check.iterations_or_bound, verbose ? std::cout : quiet);
    const bool ok = got == want;
    // Relacy is deterministic: rerun a surprising check to show its report.
    if (!ok && !verbose) check.run(check.search, check.iterations_or_bound, std::cout);
    std::cout << (ok ? "[ OK ] " : "[FAIL] ") << check.name << ": expected " << result_name(want)
              << ", Relacy found " << result_name(got) << std::endl;
    if (!ok) ++failures;
  }
  if (ran == 0) {
    std::cout << "no model check matched" << std::endl;
    return 2;
  }
  std::cout << (ran - failures) << " passed, " << failures << " failed" << std::endl;
  return failures == 0 ? 0 : 1;
}

}  // namespace hpcalloc::model
