#include "base/json_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace hpcalloc {
namespace {

// What `write` sends to a file descriptor, read back from a pipe.
template <class Write>
std::string written(Write write) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  std::string out;
  {
    JsonWriter json(fds[1]);
    write(json);
  }  // the destructor writes what is left
  close(fds[1]);
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  close(fds[0]);
  return out;
}

TEST(JsonWriter, CommasGoBetweenMembersAndElementsOnly) {
  const std::string out = written([](JsonWriter& json) {
    json.begin_object();
    json.field("a", std::uint64_t{0});
    json.begin_object("b").end_object();
    json.begin_array("c");
    json.begin_object().field("x", true).end_object();
    json.begin_object().field("y", false).field("z", std::uint64_t{18446744073709551615u});
    json.end_object();
    json.end_array();
    json.begin_array("d").end_array();
    json.field("e", "text");
    json.end_object();
    json.end_line();
  });
  EXPECT_EQ(out,
            "{\"a\":0,\"b\":{},\"c\":[{\"x\":true},{\"y\":false,\"z\":18446744073709551615}],"
            "\"d\":[],\"e\":\"text\"}\n");
}

TEST(JsonWriter, StringsAreEscaped) {
  const std::string out = written(
      [](JsonWriter& json) { json.begin_object().field("k\"ey", "a\\b\"c\n\t\x01").end_object(); });
  EXPECT_EQ(out, "{\"k\\\"ey\":\"a\\\\b\\\"c\\u000a\\u0009\\u0001\"}");
}

// A value longer than the buffer goes out in pieces, nothing lost.
TEST(JsonWriter, AValueLongerThanTheBufferIsWrittenWhole) {
  constexpr int kMembers = 3000;  // ~ 3 x kCapacity
  const std::string out = written([](JsonWriter& json) {
    json.begin_object();
    for (int i = 0; i < kMembers; ++i) json.field("member", std::uint64_t(1000000000 + i));
    json.end_object();
    json.end_line();
  });
  ASSERT_GT(out.size(), 2 * JsonWriter::kCapacity);
  std::string expected = "{";
  for (int i = 0; i < kMembers; ++i) {
    if (i != 0) expected += ',';
    expected += "\"member\":" + std::to_string(1000000000 + i);
  }
  expected += "}\n";
  EXPECT_EQ(out, expected);
}

}  // namespace
}  // namespace hpcalloc
