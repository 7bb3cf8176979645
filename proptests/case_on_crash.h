// The misuse properties feed hpcalloc calls that, when it has a bug, can
// corrupt a free list or a remote-free queue so badly that the next walk of
// it crashes the process, or never ends (a queue whose links loop back:
// its owner's drain reports the same block forever). rapidcheck then can
// neither shrink nor print the case. CaseOnCrash keeps the text of the case
// being run and writes it to stderr from a SIGSEGV/SIGBUS/SIGABRT handler
// before the signal's default action, so a crash still names the command
// sequence that caused it (as generated, or part-shrunk when the crash came
// while shrinking); with a time limit, a watchdog thread turns a case that
// runs far longer than any case should into such a crash.
#pragma once

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>

namespace hpcalloc::proptest {

class CaseOnCrash {
 public:
  // Remembers `commands` (rendered now: nothing is built in the handler)
  // as the case of the current test about to run, and installs the
  // handlers once.
  template <class Commands>
  static void running(const Commands& commands) {
    std::ostringstream out;
    rc::show(commands, out);
    running_case(out.str());
  }
  // ... a case described in words.
  static void running_case(const std::string& description) {
    // Relaxed: the watchdog needs some recent start, not ordering.
    started_ms().store(now_ms(), std::memory_order_relaxed);
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    text() = "\n*** crashed in " + std::string(test != nullptr ? test->name() : "?") +
             " while running this case:\n" + description + "\n";
    static const bool installed = install();
    (void)installed;
  }

  // Starts (once) a watchdog that aborts the process, printing the case,
  // when one case has run for more than `limit_seconds`, or `count()` (the
  // allocator's report count) has grown by more than `limit_reports` during
  // it: a drain whose queue loops reports the same block forever, a line on
  // stderr each time, and must not fill the disk before the time is up.
  // count() is sampled on a thread of its own, so that the watchdog keeps
  // time even if a call of it waits on the stuck allocator.
  static void limit_each_case_to(unsigned limit_seconds, std::size_t (*count)(),
                                 std::size_t limit_reports) {
    count_ = count;
    case_base_.store(count(), std::memory_order_relaxed);
    static const bool started = [limit_seconds, limit_reports] {
      std::thread([] {
        for (;;) {
          sample_.store(count_(), std::memory_order_relaxed);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }).detach();
      std::thread([limit_seconds, limit_reports] {
        for (;;) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          const std::int64_t started = started_ms().load(std::memory_order_relaxed);
          if (started == 0) continue;
          const char* why = nullptr;
          if (now_ms() - started > std::int64_t{limit_seconds} * 1000) {
            why = "\n*** a case ran past its time limit (a drain that never ends?): aborting\n";
          } else if (sample_.load(std::memory_order_relaxed) >
                     case_base_.load(std::memory_order_relaxed) + limit_reports) {
            why = "\n*** a case made far too many reports (a drain that never ends?): aborting\n";
          }
          if (why != nullptr) {
            (void)!::write(STDERR_FILENO, why, std::strlen(why));
            ::raise(SIGABRT);
          }
        }
      }).detach();
      return true;
    }();
    (void)started;
  }

 private:
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static std::atomic<std::int64_t>& started_ms() {
    static std::atomic<std::int64_t> ms{0};
    return ms;
  }
  // The watchdog's: the count function, its value when the case started and
  // its latest sample (relaxed: some recent value is all it needs).
  static inline std::size_t (*count_)() = nullptr;
  static inline std::atomic<std::size_t> case_base_{0};
  static inline std::atomic<std::size_t> sample_{0};

  static std::string& text() {
    static std::string case_text;
    return case_text;
  }

  static bool install() {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    // Reset to the default first: the default action then ends the process
    // (with a core, where enabled) once the handler returns or re-raises.
    action.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (int signal : {SIGSEGV, SIGBUS, SIGABRT}) sigaction(signal, &action, nullptr);
    return true;
  }

  static void on_signal(int signal) {
    const std::string& t = text();
    // write(2) only: the heap the case was using may be what is broken.
    for (std::size_t done = 0; done < t.size();) {
      const ssize_t n = ::write(STDERR_FILENO, t.data() + done, t.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::raise(signal);
  }
};

}  // namespace hpcalloc::proptest
