// Runs a scenario (model/scenarios/*_scenario.h) on real threads, the way the
// ThreadSanitizer stress programs in tsan/ do: before(), then one std::thread
// per scenario thread, released together so they overlap as much as the
// machine allows, then after() once all have joined.
#pragma once

#include <latch>
#include <thread>
#include <vector>

namespace hpcalloc::scenarios {

template <class Scenario>
void run_with_std_threads(Scenario& scenario) {
  scenario.before();
  std::latch start(Scenario::kThreads);
  std::vector<std::thread> threads;
  threads.reserve(Scenario::kThreads);
  for (unsigned index = 0; index < Scenario::kThreads; ++index) {
    threads.emplace_back([&scenario, &start, index] {
      start.arrive_and_wait();
      scenario.thread(index);
    });
  }
  for (std::thread& t : threads) t.join();
  scenario.after();
}

}  // namespace hpcalloc::scenarios
