// NUMA topology from sysfs, read without malloc: the allocator reads it while
// it initialises, possibly from inside the first malloc, so no opendir, fopen,
// std::string or iostream here, only open/read/close into stack buffers.
//
// The kernel lists each node's cpus in "cpulist" syntax ("0-3,8,10-11\n").
// CpulistParser reads that syntax one chunk at a time into a CpuSet (a fixed
// bitset of Topology::kMaxCpus bits), so a file of any length is read through
// a small buffer; parse_cpulist() is the same thing for a whole string.
// Invariants of the Topology built here: node_count >= 1, cpu_count >= 1,
// every cpu_node entry < node_count.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pal/pal_concept.h"

namespace hpcalloc {

// A set of cpu ids below kCapacity. Ids at or above it are dropped on insert:
// the Topology cannot record them, and node_of_cpu() maps them to node 0.
class CpuSet {
 public:
  static constexpr unsigned kCapacity = Topology::kMaxCpus;

  // Adds [first, last], first <= last.
  constexpr void add_range(unsigned first, unsigned last) {
    if (last >= kCapacity) last = kCapacity - 1;
    for (unsigned cpu = first; cpu <= last; ++cpu)
      words_[cpu / 64] |= std::uint64_t{1} << (cpu % 64);
  }
  constexpr bool contains(unsigned cpu) const {
    return cpu < kCapacity && (words_[cpu / 64] >> (cpu % 64) & 1) != 0;
  }
  constexpr unsigned count() const {
    unsigned n = 0;
    for (std::uint64_t word : words_) n += static_cast<unsigned>(std::popcount(word));
    return n;
  }
  // One past the highest member; 0 when empty.
  constexpr unsigned end() const {
    for (unsigned i = kWords; i > 0; --i) {
      if (words_[i - 1] != 0)
        return (i - 1) * 64 + static_cast<unsigned>(std::bit_width(words_[i - 1]));
    }
    return 0;
  }
  constexpr void clear() {
    for (std::uint64_t& word : words_) word = 0;
  }

 private:
  static constexpr unsigned kWords = kCapacity / 64;
  std::uint64_t words_[kWords] = {};
};

// Grammar (what the kernel prints with %*pbl): an empty list, or ranges
// "N" / "N-M" (N <= M) separated by single commas, then at most one '\n' and
// nothing after it. Rejected: empty ranges (",", "1,,2", "1,"), reversed
// ranges, missing ends ("1-", "-1"), spaces, the "N-M:S/G" stride form (the
// kernel accepts it on input but never prints it), numbers beyond 32 bits.
// Ranges are added to the set as soon as they are complete, so after a
// failure the set holds a prefix: parse into a scratch set.
class CpulistParser {
 public:
  constexpr explicit CpulistParser(CpuSet* out) : out_(out) {}

  // Consumes the next chunk; false once the input seen so far is malformed.
  constexpr bool feed(std::string_view chunk) {
    for (char c : chunk) {
      if (!step(c)) {
        state_ = State::kError;
        return false;
      }
    }
    return true;
  }

  // Ends the input; true when all of it was well-formed.
  constexpr bool finish() {
    bool ok = false;
    switch (state_) {
      case State::kListStart:
      case State::kDone: ok = true; break;
      case State::kFirst: ok = commit(value_, value_); break;
      case State::kLast: ok = commit(first_, value_); break;
      default: break;
    }
    state_ = ok ? State::kDone : State::kError;
    return ok;
  }

 private:
  enum class State : std::uint8_t {
    kListStart,   // nothing read yet: a number or the end
    kRangeStart,  // after ',': a number
    kFirst,       // in the first number of a range
    kLastStart,   // after '-': a number
    kLast,        // in the second number of a range
    kDone,        // after the '\n': nothing more
    kError,
  };

  static constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

  constexpr bool accumulate(char c) {
    const auto digit = static_cast<std::uint32_t>(c - '0');
    if (value_ > (UINT32_MAX - digit) / 10) return false;
    value_ = value_ * 10 + digit;
    return true;
  }

  constexpr bool commit(std::uint32_t first, std::uint32_t last) {
    if (first > last) return false;
    out_->add_range(first, last);
    return true;
  }

  constexpr bool start_number(char c, State next) {
    if (!is_digit(c)) return false;
    value_ = 0;
    state_ = next;
    return accumulate(c);
  }

  // A ',' or '\n' ends the current range.
  constexpr bool end_range(char c, std::uint32_t last) {
    if (c == ',') {
      state_ = State::kRangeStart;
    } else if (c == '\n') {
      state_ = State::kDone;
    } else {
      return false;
    }
    return commit(first_, last);
  }

  constexpr bool step(char c) {
    switch (state_) {
      case State::kListStart:
        if (c == '\n') {
          state_ = State::kDone;
          return true;
        }
        return start_number(c, State::kFirst);
      case State::kRangeStart: return start_number(c, State::kFirst);
      case State::kFirst:
        if (is_digit(c)) return accumulate(c);
        first_ = value_;
        if (c == '-') {
          state_ = State::kLastStart;
          return true;
        }
        return end_range(c, first_);
      case State::kLastStart: return start_number(c, State::kLast);
      case State::kLast:
        if (is_digit(c)) return accumulate(c);
        return end_range(c, value_);
      default: return false;
    }
  }

  CpuSet* out_;
  State state_ = State::kListStart;
  std::uint32_t first_ = 0;
  std::uint32_t value_ = 0;
};

// Adds the cpus of `text` to *out; false when `text` is malformed (see
// CpulistParser; *out then holds a prefix of the list).
constexpr bool parse_cpulist(std::string_view text, CpuSet* out) {
  CpulistParser parser(out);
  return parser.feed(text) && parser.finish();
}

inline constexpr const char* kSysfsNodeDir = "/sys/devices/system/node";
inline constexpr const char* kSysfsPossibleCpus = "/sys/devices/system/cpu/possible";

namespace detail {

// A NUL-terminated path built in place; `ok` turns false when it is too long.
struct FixedPath {
  char text[256] = {};
  std::size_t length = 0;
  bool ok = true;

  FixedPath& append(std::string_view s) {
    for (char c : s) {
      if (length + 1 >= sizeof text) {
        ok = false;
        return *this;
      }
      text[length++] = c;
    }
    text[length] = '\0';
    return *this;
  }
  FixedPath& append(unsigned n) {
    char digits[10];
    int count = 0;
    do {
      digits[count++] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    while (count > 0) append(std::string_view(&digits[--count], 1));
    return *this;
  }
};

enum class CpulistFile : std::uint8_t { kMissing, kMalformed, kRead };

// Reads the cpulist file at `path` into *out through a small stack buffer.
inline CpulistFile read_cpulist_file(const char* path, CpuSet* out) {
  int fd = -1;
  do {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return CpulistFile::kMissing;
  CpulistParser parser(out);
  bool ok = true;
  char buffer[256];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0 && parser.finish();
      break;
    }
    if (!parser.feed(std::string_view(buffer, static_cast<std::size_t>(n)))) {
      ok = false;
      break;
    }
  }
  ::close(fd);
  return ok ? CpulistFile::kRead : CpulistFile::kMalformed;
}

// The cpus this thread may run on, for when sysfs is not mounted.
inline unsigned affinity_cpu_end() {
  std::uint64_t mask[CpuSet::kCapacity / 64] = {};
  const long bytes = ::syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
  if (bytes <= 0) return 0;
  for (std::size_t i = static_cast<std::size_t>(bytes) / sizeof mask[0]; i > 0; --i) {
    if (mask[i - 1] != 0) {
      return static_cast<unsigned>((i - 1) * 64 +
                                   static_cast<unsigned>(std::bit_width(mask[i - 1])));
    }
  }
  return 0;
}

}  // namespace detail

// Fills *out from `node_dir`/nodeN/cpulist for N < Topology::kMaxNodes.
// Node ids may be sparse (node0 and node2 only): node_count is the highest
// present id + 1, and absent ids simply own no cpus. A node whose cpulist is
// unreadable or malformed still counts as present but is given no cpus. Cpus
// listed by no node (offline ones, or a malformed node's) map to node 0;
// cpu_count covers every cpu seen in a node list or in `possible_cpus`.
// Returns false, with the fallback topology (one node owning every cpu), when
// no node directory exists. errno is preserved: missing files are expected.
inline bool read_topology(Topology* out, const char* node_dir = kSysfsNodeDir,
                          const char* possible_cpus = kSysfsPossibleCpus) {
  const int saved_errno = errno;
  *out = Topology{};
  unsigned node_end = 0;
  unsigned cpu_end = 0;
  CpuSet cpus;
  for (unsigned node = 0; node < Topology::kMaxNodes; ++node) {
    detail::FixedPath path;
    path.append(std::string_view(node_dir)).append("/node").append(node).append("/cpulist");
    if (!path.ok) break;
    cpus.clear();
    const detail::CpulistFile status = detail::read_cpulist_file(path.text, &cpus);
    if (status == detail::CpulistFile::kMissing) continue;
    node_end = node + 1;
    if (status != detail::CpulistFile::kRead) continue;
    for (unsigned cpu = 0; cpu < cpus.end(); ++cpu) {
      if (cpus.contains(cpu)) out->cpu_node[cpu] = static_cast<std::uint8_t>(node);
    }
    if (cpus.end() > cpu_end) cpu_end = cpus.end();
  }
  cpus.clear();
  if (detail::read_cpulist_file(possible_cpus, &cpus) == detail::CpulistFile::kRead &&
      cpus.end() > cpu_end) {
    cpu_end = cpus.end();
  }
  if (node_end == 0) {
    for (std::uint8_t& node : out->cpu_node) node = 0;
    if (cpu_end == 0) cpu_end = detail::affinity_cpu_end();
  }
  out->node_count = node_end == 0 ? 1 : node_end;
  out->cpu_count = cpu_end == 0 ? 1 : cpu_end;
  errno = saved_errno;
  return node_end != 0;
}

}  // namespace hpcalloc
