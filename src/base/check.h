// Internal consistency checks. HPCALLOC_ASSERT is compiled in by the `debug`
// preset (HPCALLOC_CHECKED) and compiled out, condition included, elsewhere:
// a macro because the condition must not even be evaluated in release builds.
#pragma once

#include "base/report.h"

namespace hpcalloc {

#if defined(HPCALLOC_CHECKED) && HPCALLOC_CHECKED
inline constexpr bool kChecked = true;
#else
inline constexpr bool kChecked = false;
#endif

[[noreturn, gnu::cold, gnu::noinline]] inline void assertion_failed(const char* condition,
                                                                    const char* file, int line) {
  ReportLine msg;
  msg.text("assertion failed: ").text(condition).text(" at ").text(file).text(":").signed_dec(line);
  fatal(msg);
}

}  // namespace hpcalloc

#if defined(HPCALLOC_CHECKED) && HPCALLOC_CHECKED
#define HPCALLOC_ASSERT(condition)                                                  \
  do {                                                                              \
    if (!(condition)) ::hpcalloc::assertion_failed(#condition, __FILE__, __LINE__); \
  } while (false)
#else
#define HPCALLOC_ASSERT(condition) \
  do {                             \
  } while (false && (condition))
#endif
