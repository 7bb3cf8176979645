#include "base/process_info.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>

namespace hpcalloc {
namespace {

TEST(EnvValue, AgreesWithGetenvForSetUnsetAndEmptyValues) {
  setenv("HPCALLOC_TEST_VALUE", "42k", 1);
  ASSERT_NE(env_value("HPCALLOC_TEST_VALUE"), nullptr);
  EXPECT_STREQ(env_value("HPCALLOC_TEST_VALUE"), "42k");
  EXPECT_EQ(env_value("HPCALLOC_TEST_VALUE"), getenv("HPCALLOC_TEST_VALUE"));
  setenv("HPCALLOC_TEST_VALUE", "", 1);
  ASSERT_NE(env_value("HPCALLOC_TEST_VALUE"), nullptr);
  EXPECT_STREQ(env_value("HPCALLOC_TEST_VALUE"), "");
  unsetenv("HPCALLOC_TEST_VALUE");
  EXPECT_EQ(env_value("HPCALLOC_TEST_VALUE"), nullptr);
  EXPECT_EQ(env_value(""), nullptr);
  EXPECT_EQ(env_value(nullptr), nullptr);
}

TEST(EnvValue, MatchesWholeNamesOnly) {
  // A prefix, an extension and a value that contains the name: none match.
  setenv("HPCALLOC_TEST_VALUEX", "extended", 1);
  setenv("HPCALLOC_TEST_OTHER", "HPCALLOC_TEST_VALUE=inside", 1);
  unsetenv("HPCALLOC_TEST_VALUE");
  EXPECT_EQ(env_value("HPCALLOC_TEST_VALUE"), nullptr);
  EXPECT_EQ(env_value("HPCALLOC_TEST_VALU"), nullptr);
  EXPECT_STREQ(env_value("HPCALLOC_TEST_VALUEX"), "extended");
  setenv("HPCALLOC_TEST_VALUE", "plain", 1);
  EXPECT_STREQ(env_value("HPCALLOC_TEST_VALUE"), "plain");
  // A value holding '=' is returned whole, as getenv does.
  EXPECT_STREQ(env_value("HPCALLOC_TEST_OTHER"), "HPCALLOC_TEST_VALUE=inside");
  for (const char* name : {"HPCALLOC_TEST_VALUEX", "HPCALLOC_TEST_OTHER", "HPCALLOC_TEST_VALUE"}) {
    unsetenv(name);
  }
}

TEST(EnvValue, SeesEveryVariableGetenvSees) {
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const char* equals = std::strchr(*entry, '=');
    if (equals == nullptr || equals == *entry) continue;
    char name[256] = {};
    const auto length = static_cast<std::size_t>(equals - *entry);
    if (length >= sizeof name) continue;
    std::memcpy(name, *entry, length);
    EXPECT_EQ(env_value(name), getenv(name)) << name;
  }
}

TEST(OsPageSize, IsWhatSysconfSays) {
  EXPECT_EQ(os_page_size(), static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
}

}  // namespace
}  // namespace hpcalloc
