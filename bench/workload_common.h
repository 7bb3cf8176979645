// Shared command line, PRNG, block stamps, thread start and result output for
// the workload programs in bench/. A workload is an ordinary allocator client:
// it calls only malloc/free/realloc/new/delete, so the allocator it measures is
// whichever one LD_PRELOAD supplies. The bench runner relies on this contract:
//   options   --threads=N --scale=F --seed=S and workload --key=value options;
//             an unknown or malformed option prints usage on stderr, exit 2.
//   output    exactly one stdout line on success:
//             result workload=W threads=N seconds=S ops=K [key=value ...]
//   integrity a stamp that does not read back prints "corruption detected" on
//             stderr and exits 3; a failed allocation exits 1.
// Work is a pure function of (seed, threads, options), so every allocator is
// asked for the same sequence of operations by each thread.
#pragma once

#include <unistd.h>

#include <barrier>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hpcalloc::bench {

[[noreturn]] inline void fail_corruption(const char* what) {
  std::fprintf(stderr, "corruption detected\n%s\n", what);
  std::fflush(stderr);
  // _Exit: other threads are still running, so static destructors must not.
  std::_Exit(3);
}

[[noreturn]] inline void fail_allocation(std::size_t size) {
  std::fprintf(stderr, "allocation of %zu bytes failed\n", size);
  std::fflush(stderr);
  std::_Exit(1);
}

// Tells the compiler that unknown code reads and writes the memory behind p.
// Without it GCC may prove a malloc/stamp/check/free sequence dead and delete
// the very allocator calls we want to measure.
inline void escape(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

inline void* allocate(std::size_t size) {
  void* p = std::malloc(size);
  if (p == nullptr) fail_allocation(size);
  return p;
}

inline void* reallocate(void* p, std::size_t size) {
  void* q = std::realloc(p, size);
  if (q == nullptr) fail_allocation(size);
  return q;
}

// splitmix64's finaliser: a bijective, well-mixing 64-bit hash.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// splitmix64 generator; one independent stream per (seed, stream id), so a
// thread's operation sequence does not depend on how threads interleave.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) : state_(mix64(seed) ^ mix64(~stream)) {}

  std::uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  // Uniform in [0, n) for n < 2^32, by multiply-shift rather than a division,
  // so the generator costs little next to the allocator call it feeds.
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>(((next() >> 32) * n) >> 32);
  }
  // Uniform in [lo, hi], hi - lo < 2^32.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) {
    return lo + below(static_cast<std::uint32_t>(hi - lo + 1));
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return uniform() < p; }

 private:
  std::uint64_t state_;
};

// Block stamps. A block of 16 bytes or more starts with {w0 = size | tag << 40,
// w1 = mix64(w0)} and ends with the top byte of w1; a smaller block is filled
// from mix64(tag, size). The header also lets a block describe its own size
// when it travels between threads as a bare pointer. A stamp that does not read
// back means overlapping blocks, a write into a live block by the allocator, or
// content lost by realloc.
inline constexpr std::size_t kStampHeaderBytes = 16;
inline constexpr std::uint64_t kStampSizeMask = (std::uint64_t{1} << 40) - 1;

inline void stamp_block(void* p, std::size_t size, std::uint64_t tag) {
  auto* bytes = static_cast<unsigned char*>(p);
  if (size >= kStampHeaderBytes) {
    const std::uint64_t w0 = (size & kStampSizeMask) | (tag << 40);
    const std::uint64_t w1 = mix64(w0);
    std::memcpy(bytes, &w0, sizeof w0);
    std::memcpy(bytes + 8, &w1, sizeof w1);
    bytes[size - 1] = static_cast<unsigned char>(w1 >> 56);
  } else {
    const std::uint64_t w = mix64(tag ^ (std::uint64_t{size} << 56));
    for (std::size_t i = 0; i < size; ++i)
      bytes[i] = static_cast<unsigned char>(w >> (8 * (i % 8)));
  }
  escape(p);
}

inline void check_block(const void* p, std::size_t size, std::uint64_t tag) {
  escape(p);
  const auto* bytes = static_cast<const unsigned char*>(p);
  if (size >= kStampHeaderBytes) {
    const std::uint64_t w0 = (size & kStampSizeMask) | (tag << 40);
    const std::uint64_t w1 = mix64(w0);
    std::uint64_t got0, got1;
    std::memcpy(&got0, bytes, sizeof got0);
    std::memcpy(&got1, bytes + 8, sizeof got1);
    if (got0 != w0 || got1 != w1) fail_corruption("block header changed while live");
    if (bytes[size - 1] != static_cast<unsigned char>(w1 >> 56)) {
      fail_corruption("block tail byte changed while live");
    }
  } else {
    const std::uint64_t w = mix64(tag ^ (std::uint64_t{size} << 56));
    for (std::size_t i = 0; i < size; ++i) {
      if (bytes[i] != static_cast<unsigned char>(w >> (8 * (i % 8)))) {
        fail_corruption("small block changed while live");
      }
    }
  }
}

// Checks a block stamped with size >= 16 whose size the holder does not know
// and returns that size; max_size bounds it before the tail byte is read.
inline std::size_t check_self_described_block(const void* p, std::size_t max_size) {
  escape(p);
  const auto* bytes = static_cast<const unsigned char*>(p);
  std::uint64_t w0, w1;
  std::memcpy(&w0, bytes, sizeof w0);
  std::memcpy(&w1, bytes + 8, sizeof w1);
  const std::size_t size = w0 & kStampSizeMask;
  if (w1 != mix64(w0) || size < kStampHeaderBytes || size > max_size) {
    fail_corruption("self-described block header changed while live");
  }
  if (bytes[size - 1] != static_cast<unsigned char>(w1 >> 56)) {
    fail_corruption("self-described block tail byte changed while live");
  }
  return size;
}

// The false-sharing workloads' inner loop: writes every byte of the object
// `repetitions` times through a volatile pointer, so each write reaches the
// cache line, then checks that the last pass is still there.
inline void scribble(void* object, std::size_t size, std::uint64_t repetitions, unsigned thread) {
  auto pattern = [thread](std::uint64_t pass, std::size_t i) {
    return static_cast<unsigned char>(pass + i + thread);
  };
  volatile unsigned char* bytes = static_cast<unsigned char*>(object);
  for (std::uint64_t r = 0; r < repetitions; ++r) {
    for (std::size_t i = 0; i < size; ++i) bytes[i] = pattern(r, i);
  }
  for (std::size_t i = 0; i < size; ++i) {
    if (bytes[i] != pattern(repetitions - 1, i)) {
      fail_corruption("object changed while its thread was writing it");
    }
  }
}

inline unsigned online_cpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

// The command line: the three common options plus whatever the workload
// registers. Counts accept binary suffixes (4K, 2M, 1G); lists are
// comma-separated counts.
class Options {
 public:
  static constexpr std::uint64_t kDefaultSeed = 20240601;

  Options(std::string workload, std::string summary)
      : workload_(std::move(workload)), summary_(std::move(summary)) {
    add_count("threads", &threads, "worker threads");
    add_real("scale", &scale, "multiplier of the amount of work");
    add_count("seed", &seed, "PRNG seed; same seed and threads => same operations");
  }

  std::uint64_t threads = online_cpus();
  double scale = 1.0;
  std::uint64_t seed = kDefaultSeed;

  void add_count(std::string key, std::uint64_t* value, std::string help) {
    add(
        std::move(key), std::move(help), [value] { return std::to_string(*value); },
        [value](std::string_view text) { return parse_count(text, value); });
  }
  void add_real(std::string key, double* value, std::string help) {
    add(
        std::move(key), std::move(help), [value] { return format_real(*value); },
        [value](std::string_view text) { return parse_real(text, value); });
  }
  void add_list(std::string key, std::vector<std::uint64_t>* value, std::string help) {
    auto show = [value] {
      std::string text;
      for (std::uint64_t v : *value) text += (text.empty() ? "" : ",") + std::to_string(v);
      return text;
    };
    auto set = [value](std::string_view text) {
      std::vector<std::uint64_t> parsed;
      while (!text.empty()) {
        const std::size_t comma = text.find(',');
        std::uint64_t v;
        if (!parse_count(text.substr(0, comma), &v)) return false;
        parsed.push_back(v);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
      }
      if (parsed.empty()) return false;
      *value = std::move(parsed);
      return true;
    };
    add(std::move(key), std::move(help), show, set);
  }

  // Exits 2 with the usage text on anything it does not understand.
  void parse(int argc, char** argv) {
    for (Entry& e : entries_) e.default_text = e.show();
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") usage_and_exit(0, "");
      const std::size_t eq = arg.find('=');
      if (!arg.starts_with("--") || eq == std::string_view::npos) usage_and_exit(2, arg);
      const std::string_view key = arg.substr(2, eq - 2);
      Entry* entry = nullptr;
      for (Entry& e : entries_) {
        if (e.key == key) entry = &e;
      }
      if (entry == nullptr || !entry->set(arg.substr(eq + 1))) usage_and_exit(2, arg);
      given_.insert(std::string(key));
    }
    if (threads < 1 || threads > 4096) usage_and_exit(2, "--threads must be in 1..4096");
    if (!(scale > 0)) usage_and_exit(2, "--scale must be > 0");
  }

  bool given(std::string_view key) const { return given_.count(std::string(key)) != 0; }

  // base * scale rounded, at least 1: how a workload sizes its repeated work.
  std::uint64_t scaled(std::uint64_t base) const {
    const double v = std::round(static_cast<double>(base) * scale);
    return v < 1 ? 1 : static_cast<std::uint64_t>(v);
  }

  const std::string& workload() const { return workload_; }

  static std::string format_real(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

 private:
  struct Entry {
    std::string key;
    std::string help;
    std::function<std::string()> show;
    std::function<bool(std::string_view)> set;
    std::string default_text;
  };

  void add(std::string key, std::string help, std::function<std::string()> show,
           std::function<bool(std::string_view)> set) {
    entries_.push_back({std::move(key), std::move(help), std::move(show), std::move(set), ""});
  }

  static bool parse_count(std::string_view text, std::uint64_t* out) {
    const std::string s(text);
    if (s.empty() || s[0] < '0' || s[0] > '9') return false;
    char* end = nullptr;
    const std::uint64_t v = std::strtoull(s.c_str(), &end, 10);
    const std::string_view suffix(end);
    int shift = 0;
    if (suffix == "K" || suffix == "k") {
      shift = 10;
    } else if (suffix == "M" || suffix == "m") {
      shift = 20;
    } else if (suffix == "G" || suffix == "g") {
      shift = 30;
    } else if (!suffix.empty()) {
      return false;
    }
    if (v > (UINT64_MAX >> shift)) return false;
    *out = v << shift;
    return true;
  }

  static bool parse_real(std::string_view text, double* out) {
    const std::string s(text);
    if (s.empty()) return false;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (*end != '\0' || !std::isfinite(v)) return false;
    *out = v;
    return true;
  }

  [[noreturn]] void usage_and_exit(int code, std::string_view complaint) const {
    if (!complaint.empty()) {
      std::fprintf(stderr, "bench_%s: bad option '%.*s'\n", workload_.c_str(),
                   static_cast<int>(complaint.size()), complaint.data());
    }
    std::fprintf(stderr, "usage: bench_%s [--key=value ...]\n%s\noptions:\n", workload_.c_str(),
                 summary_.c_str());
    for (const Entry& e : entries_) {
      std::fprintf(stderr, "  --%-18s %s (default %s)\n", (e.key + "=").c_str(), e.help.c_str(),
                   e.default_text.c_str());
    }
    std::exit(code);
  }

  std::string workload_;
  std::string summary_;
  std::vector<Entry> entries_;
  std::set<std::string> given_;
};

// The options both false-sharing workloads (cache-scratch, cache-thrash)
// take, parsed and checked; `iterations` is already scaled.
struct FalseSharingConfig {
  std::uint64_t object_size = 8;
  std::uint64_t iterations = 1000;
  std::uint64_t repetitions = 300000;
  unsigned threads = 0;
};

inline FalseSharingConfig parse_false_sharing(Options& options, int argc, char** argv) {
  FalseSharingConfig c;
  options.add_count("object-size", &c.object_size, "bytes per object");
  options.add_count("iterations", &c.iterations,
                    "allocate/write/free cycles per thread at scale 1");
  options.add_count("repetitions", &c.repetitions, "times each byte is written per cycle");
  options.parse(argc, argv);
  if (c.object_size == 0 || c.repetitions == 0) {
    std::fprintf(stderr, "bench_%s: object-size and repetitions must be >= 1\n",
                 options.workload().c_str());
    std::exit(2);
  }
  c.iterations = options.scaled(c.iterations);
  c.threads = static_cast<unsigned>(options.threads);
  return c;
}

inline double seconds_between(std::chrono::steady_clock::time_point a,
                              std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Runs body(thread_index) on `threads` new threads released together by a
// barrier, and returns wall seconds from that release until all have been
// joined (so thread exit, where allocators flush caches, is measured too).
template <typename Body>
double run_threads(unsigned threads, Body&& body) {
  std::chrono::steady_clock::time_point start;
  std::barrier gate(threads, [&start]() noexcept { start = std::chrono::steady_clock::now(); });
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&gate, &body, t] {
      gate.arrive_and_wait();
      body(t);
    });
  }
  for (std::thread& th : pool) th.join();
  return seconds_between(start, std::chrono::steady_clock::now());
}

struct Field {
  std::string key;
  std::string value;
};

inline std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The one line the runner parses; nothing else is written to stdout.
inline void print_result(std::string_view workload, std::uint64_t threads, double seconds,
                         std::uint64_t ops, const std::vector<Field>& extra = {}) {
  std::string line = "result workload=" + std::string(workload) +
                     " threads=" + std::to_string(threads) + " seconds=" + fixed(seconds, 6) +
                     " ops=" + std::to_string(ops);
  for (const Field& f : extra) line += " " + f.key + "=" + f.value;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace hpcalloc::bench
