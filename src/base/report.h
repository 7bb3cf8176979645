// Diagnostics that never allocate: a fixed-size line builder that formats
// strings and integers on the stack and writes the line with write(2), and
// fatal(), which writes one line and aborts. Everything the allocator says on
// stderr goes through here, so no report can recurse into malloc (printf with
// %f, iostreams and std::string all may).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace hpcalloc {

// One line of at most kCapacity bytes; longer input is truncated with "...",
// never overflowed. Not thread-safe: build it on the stack.
class ReportLine {
 public:
  static constexpr std::size_t kCapacity = 256;

  ReportLine& text(std::string_view s) {
    for (char c : s) put(c);
    return *this;
  }
  ReportLine& dec(std::uint64_t v) {
    char digits[20];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) put(digits[--n]);
    return *this;
  }
  ReportLine& signed_dec(std::int64_t v) {
    if (v < 0) {
      put('-');
      return dec(~static_cast<std::uint64_t>(v) + 1);
    }
    return dec(static_cast<std::uint64_t>(v));
  }
  ReportLine& hex(std::uint64_t v) {
    text("0x");
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) put("0123456789abcdef"[(v >> shift) & 0xf]);
    return *this;
  }
  ReportLine& ptr(const void* p) { return hex(reinterpret_cast<std::uintptr_t>(p)); }

  std::string_view view() const { return {buffer_, length_}; }
  bool truncated() const { return truncated_; }

  // Writes the line plus '\n' to fd, retrying short writes and EINTR; errno
  // is preserved because callers may be in the middle of setting it.
  void write_to(int fd) const {
    const int saved_errno = errno;
    char out[kCapacity + 4];
    std::size_t n = 0;
    for (; n < length_; ++n) out[n] = buffer_[n];
    if (truncated_) {
      out[n++] = '.';
      out[n++] = '.';
      out[n++] = '.';
    }
    out[n++] = '\n';
    std::size_t done = 0;
    while (done < n) {
      const ssize_t w = ::write(fd, out + done, n - done);
      if (w > 0) {
        done += static_cast<std::size_t>(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else {
        break;  // Nothing sensible to do if stderr is gone.
      }
    }
    errno = saved_errno;
  }

 private:
  void put(char c) {
    if (length_ < kCapacity) {
      buffer_[length_++] = c;
    } else {
      truncated_ = true;
    }
  }

  char buffer_[kCapacity];
  std::size_t length_ = 0;
  bool truncated_ = false;
};

// "hpcalloc: <what>" on stderr.
inline ReportLine report_line(std::string_view what) {
  ReportLine line;
  line.text("hpcalloc: ").text(what);
  return line;
}

inline void warn(std::string_view what) { report_line(what).write_to(STDERR_FILENO); }

// Writes "hpcalloc: fatal: <line>" and aborts. abort() does not allocate.
[[noreturn, gnu::cold, gnu::noinline]] inline void fatal(const ReportLine& line) {
  ReportLine out;
  out.text("hpcalloc: fatal: ").text(line.view());
  out.write_to(STDERR_FILENO);
  std::abort();
}
[[noreturn, gnu::cold, gnu::noinline]] inline void fatal(std::string_view what) {
  ReportLine line;
  line.text(what);
  fatal(line);
}

}  // namespace hpcalloc
