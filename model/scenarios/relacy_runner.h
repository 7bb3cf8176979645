// Runs a scenario (model/scenarios/*_scenario.h) under the Relacy Race
// Detector: the adapter is the rl::test_suite, so the scenario's atomics are
// built inside the running test as Relacy requires, and Relacy's threads call
// the scenario's thread(index). RelacyChecker turns a failed scenario check
// into Relacy's user-assertion failure, located at the scenario's line.
// Include after every standard and project header (see relacy_sync.h).
#pragma once

#include "model/relacy_sync.h"

namespace hpcalloc::model {

struct RelacyChecker {
  static void check(bool ok, const char* what, Where where = Where::current()) {
    if (!ok) rl::ctx().fail_test(what, rl::test_result_user_assert_failed, to_relacy(where));
  }
};

template <class Scenario>
struct RelacyRunner : rl::test_suite<RelacyRunner<Scenario>, Scenario::kThreads> {
  Scenario scenario;

  void before() { scenario.before(); }
  void thread(unsigned index) { scenario.thread(index); }
  void after() { scenario.after(); }
};

}  // namespace hpcalloc::model
