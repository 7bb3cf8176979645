// The misuse properties feed hpcalloc calls that, when it has a bug, can
// corrupt a free list or a remote-free queue so badly that the next walk of
// it crashes the process. rapidcheck then can neither shrink nor print the
// case. CaseOnCrash keeps the text of the case being run and writes it to
// stderr from a SIGSEGV/SIGBUS/SIGABRT handler before the signal's default
// action, so a crash still names the command sequence that caused it (as
// generated, or part-shrunk when the crash came while shrinking).
#pragma once

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <string>

namespace hpcalloc::proptest {

class CaseOnCrash {
 public:
  // Remembers `commands` (rendered now: nothing is built in the handler)
  // as the case of the current test about to run, and installs the
  // handlers once.
  template <class Commands>
  static void running(const Commands& commands) {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::ostringstream out;
    out << "\n*** crashed in " << (test != nullptr ? test->name() : "?")
        << " while running this case:\n";
    rc::show(commands, out);
    out << "\n";
    text() = out.str();
    static const bool installed = install();
    (void)installed;
  }

 private:
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
