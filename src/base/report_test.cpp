#include "base/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace hpcalloc {
namespace {

TEST(ReportLine, FormatsNumbersWithoutAllocating) {
  ReportLine line;
  line.text("n=").dec(0).text(" ").dec(18446744073709551615ull).text(" ").signed_dec(-42);
  line.text(" ").hex(0).text(" ").hex(0xdeadbeef).text(" ").signed_dec(INT64_MIN);
  EXPECT_EQ(line.view(), "n=0 18446744073709551615 -42 0x0 0xdeadbeef -9223372036854775808");
  EXPECT_FALSE(line.truncated());
}

TEST(ReportLine, TruncatesInsteadOfOverflowing) {
  ReportLine line;
  for (int i = 0; i < 100; ++i) line.text("0123456789");
  EXPECT_TRUE(line.truncated());
  EXPECT_EQ(line.view().size(), ReportLine::kCapacity);
}

TEST(ReportLine, WritesOneLineAndPreservesErrno) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  errno = ENOMEM;
  report_line("double free of ").ptr(reinterpret_cast<void*>(0x1000)).write_to(fds[1]);
  EXPECT_EQ(errno, ENOMEM);
  close(fds[1]);
  char buffer[512];
  const ssize_t n = read(fds[0], buffer, sizeof buffer);
  close(fds[0]);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buffer, static_cast<std::size_t>(n)), "hpcalloc: double free of 0x1000\n");
}

TEST(ReportLineDeathTest, FatalWritesOneLineAndAborts) {
  EXPECT_DEATH(fatal("free(): pointer 0x10 was not allocated by hpcalloc"),
               "^hpcalloc: fatal: free\\(\\): pointer 0x10 was not allocated by hpcalloc\n$");
}

}  // namespace
}  // namespace hpcalloc
