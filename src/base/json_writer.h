// JsonWriter: one JSON value written to a file descriptor with write(2)
// from a fixed buffer, for the machine-readable statistics summary
// (HPCALLOC_STATS=json). It never allocates (the allocator's own exit path
// uses it), keeps track of where commas go, and escapes strings. The buffer
// goes out in one write() when the value fits in it (kCapacity bytes), so
// processes appending to one file do not interleave their lines; a longer
// value is written in kCapacity pieces.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hpcalloc {

class JsonWriter {
 public:
  static constexpr std::size_t kCapacity = 16384;

  explicit JsonWriter(int fd) : fd_(fd) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;
  ~JsonWriter() { flush(); }

  // An object or an array: as a member of the enclosing object (`key`), or
  // as a value (key nullptr: the top level, or an array element).
  JsonWriter& begin_object(const char* key = nullptr) { return open(key, '{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array(const char* key = nullptr) { return open(key, '['); }
  JsonWriter& end_array() { return close(']'); }

  JsonWriter& field(const char* key, std::uint64_t value) {
    member(key);
    char digits[20];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (n > 0) put(digits[--n]);
    return *this;
  }
  JsonWriter& field(const char* key, bool value) {
    member(key);
    raw(value ? "true" : "false");
    return *this;
  }
  JsonWriter& field(const char* key, std::string_view value) {
    member(key);
    string(value);
    return *this;
  }
  JsonWriter& field(const char* key, const char* value) {
    return field(key, std::string_view(value));
  }

  // Ends the value with a newline (JSON Lines) and writes what is buffered.
  void end_line() {
    put('\n');
    flush();
  }

 private:
  JsonWriter& open(const char* key, char bracket) {
    member(key);
    put(bracket);
    first_ = true;
    return *this;
  }
  JsonWriter& close(char bracket) {
    put(bracket);
    first_ = false;
    return *this;
  }
  // The comma before every member but the first, then "key": when keyed.
  void member(const char* key) {
    if (!first_) put(',');
    first_ = false;
    if (key != nullptr) {
      string(key);
      put(':');
    }
  }
  void string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    put('"');
    for (char c : s) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        put('\\');
        put(c);
      } else if (byte < 0x20) {
        raw("\\u00");
        put(kHex[byte >> 4]);
        put(kHex[byte & 15]);
      } else {
        put(c);
      }
    }
    put('"');
  }
  void raw(std::string_view s) {
    for (char c : s) put(c);
  }
  void put(char c) {
    if (length_ == kCapacity) flush();
    buffer_[length_++] = c;
  }
  void flush() {
    std::size_t done = 0;
    while (done < length_) {
      const ssize_t n = ::write(fd_, buffer_ + done, length_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to write: the summary is lost, not retried
      done += static_cast<std::size_t>(n);
    }
    length_ = 0;
  }

  int fd_;
  bool first_ = true;
  std::size_t length_ = 0;
  char buffer_[kCapacity];
};

}  // namespace hpcalloc
