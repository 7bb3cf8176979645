#include "base/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace hpcalloc {
namespace {

TEST(ParseSize, AcceptsDecimalWithBinarySuffixes) {
  std::uint64_t v = 0;
  EXPECT_TRUE(parse_size("0", &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parse_size("4096", &v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(parse_size("64k", &v));
  EXPECT_EQ(v, 64u << 10);
  EXPECT_TRUE(parse_size("2M", &v));
  EXPECT_EQ(v, 2u << 20);
  EXPECT_TRUE(parse_size("3G", &v));
  EXPECT_EQ(v, std::uint64_t{3} << 30);
  EXPECT_TRUE(parse_size("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
}

TEST(ParseSize, RejectsGarbageAndOverflow) {
  std::uint64_t v = 99;
  for (const char* bad : {"", "k", "-1", "1.5", "12x", " 1", "1 ", "0x10", "18446744073709551616",
                          "17179869184G", "1kk"}) {
    EXPECT_FALSE(parse_size(bad, &v)) << bad;
  }
  EXPECT_EQ(v, 99u);  // untouched on failure
}

TEST(ParseBool, AcceptsTheDocumentedSpellings) {
  bool b = false;
  for (const char* yes : {"1", "true", "yes", "on"}) {
    EXPECT_TRUE(parse_bool(yes, &b) && b) << yes;
  }
  for (const char* no : {"0", "false", "no", "off"}) {
    EXPECT_TRUE(parse_bool(no, &b) && !b) << no;
  }
  EXPECT_FALSE(parse_bool("2", &b));
  EXPECT_FALSE(parse_bool("", &b));
}

TEST(EnvSize, UsesDefaultWhenUnsetAndValueWhenValid) {
  unsetenv("HPCALLOC_TEST_SIZE");
  EXPECT_EQ(env_size("HPCALLOC_TEST_SIZE", 7), 7u);
  setenv("HPCALLOC_TEST_SIZE", "16M", 1);
  EXPECT_EQ(env_size("HPCALLOC_TEST_SIZE", 7), 16u << 20);
  unsetenv("HPCALLOC_TEST_SIZE");
}

TEST(EnvSize, WarnsOnceAndFallsBackOnBadOrOutOfRangeValues) {
  setenv("HPCALLOC_TEST_SIZE", "lots", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(env_size("HPCALLOC_TEST_SIZE", 7), 7u);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "hpcalloc: ignoring HPCALLOC_TEST_SIZE=lots (expected a size from 0 to "
            "18446744073709551615, default 7)\n");
  setenv("HPCALLOC_TEST_SIZE", "100", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(env_size("HPCALLOC_TEST_SIZE", 7, 1, 10), 7u);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("from 1 to 10"), std::string::npos);
  unsetenv("HPCALLOC_TEST_SIZE");
}

TEST(EnvBool, ParsesOrFallsBackWithWarning) {
  setenv("HPCALLOC_TEST_FLAG", "on", 1);
  EXPECT_TRUE(env_bool("HPCALLOC_TEST_FLAG", false));
  setenv("HPCALLOC_TEST_FLAG", "maybe", 1);
  testing::internal::CaptureStderr();
  EXPECT_FALSE(env_bool("HPCALLOC_TEST_FLAG", false));
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "hpcalloc: ignoring HPCALLOC_TEST_FLAG=maybe (expected 0 or 1, default 0)\n");
  unsetenv("HPCALLOC_TEST_FLAG");
}

}  // namespace
}  // namespace hpcalloc

namespace hpcalloc {
namespace {

TEST(EnvChoice, PicksTheIndexOrWarnsAndFallsBack) {
  static const char* const kChoices[] = {"off", "first-touch", "bind"};
  unsetenv("HPCALLOC_TEST_CHOICE");
  EXPECT_EQ(env_choice("HPCALLOC_TEST_CHOICE", kChoices, 0), 0);
  setenv("HPCALLOC_TEST_CHOICE", "bind", 1);
  EXPECT_EQ(env_choice("HPCALLOC_TEST_CHOICE", kChoices, 0), 2);
  setenv("HPCALLOC_TEST_CHOICE", "everywhere", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(env_choice("HPCALLOC_TEST_CHOICE", kChoices, 1), 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "hpcalloc: ignoring HPCALLOC_TEST_CHOICE=everywhere (expected off, first-touch, bind; "
            "default first-touch)\n");
  unsetenv("HPCALLOC_TEST_CHOICE");
}

TEST(EnvDelayMs, AcceptsMillisecondsZeroAndNever) {
  unsetenv("HPCALLOC_TEST_DELAY");
  EXPECT_EQ(env_delay_ms("HPCALLOC_TEST_DELAY", 500), 500);
  setenv("HPCALLOC_TEST_DELAY", "0", 1);
  EXPECT_EQ(env_delay_ms("HPCALLOC_TEST_DELAY", 500), 0);
  setenv("HPCALLOC_TEST_DELAY", "2500", 1);
  EXPECT_EQ(env_delay_ms("HPCALLOC_TEST_DELAY", 500), 2500);
  setenv("HPCALLOC_TEST_DELAY", "-1", 1);
  EXPECT_EQ(env_delay_ms("HPCALLOC_TEST_DELAY", 500), -1);
  setenv("HPCALLOC_TEST_DELAY", "never", 1);
  EXPECT_EQ(env_delay_ms("HPCALLOC_TEST_DELAY", 500), -1);
  unsetenv("HPCALLOC_TEST_DELAY");
}

TEST(EnvDelayMs, RejectsSuffixesNegativesAndGarbageWithAWarning) {
  for (const char* bad : {"10k", "-2", "soon", "", "1.5"}) {
    setenv("HPCALLOC_TEST_DELAY", bad, 1);
    testing::internal::CaptureStderr();
    EXPECT_EQ(env_delay_ms("HPCALLOC_TEST_DELAY", 500), 500) << bad;
    EXPECT_NE(testing::internal::GetCapturedStderr().find(
                  "(expected milliseconds, 0 (at once) or -1 (never); default 500)"),
              std::string::npos)
        << bad;
  }
  unsetenv("HPCALLOC_TEST_DELAY");
}

}  // namespace
}  // namespace hpcalloc
