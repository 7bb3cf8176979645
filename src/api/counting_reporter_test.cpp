// CountingStderrReporter (counting_reporter.h): in warn mode every report is
// one line and one count, and the call returns.
#include "api/counting_reporter.h"

#include <gtest/gtest.h>

namespace hpcalloc {
namespace {

TEST(CountingStderrReporter, CountsEveryReportInWarnMode) {
  CountingStderrReporter reporter(/*abort_on_error=*/false);
  EXPECT_EQ(reporter.reported(), 0u);
  int block = 0;
  ::testing::internal::CaptureStderr();
  reporter.report(HeapError::kDoubleFree, "free()", &block);
  reporter.report(HeapError::kInvalidPointer, "realloc()", &block);
  const std::string lines = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(reporter.reported(), 2u);
  EXPECT_NE(lines.find("hpcalloc: free(): double free of 0x"), std::string::npos) << lines;
  EXPECT_NE(lines.find("hpcalloc: realloc(): pointer not allocated by hpcalloc: 0x"),
            std::string::npos)
      << lines;
}

TEST(CountingStderrReporterDeathTest, AbortsByDefault) {
  CountingStderrReporter reporter;
  int block = 0;
  EXPECT_DEATH(reporter.report(HeapError::kDoubleFree, "free()", &block),
               "hpcalloc: fatal: free\\(\\): double free of 0x");
}

}  // namespace
}  // namespace hpcalloc
