// Misuse injection: the C API (hpc_*) driven by an opcode stream that also
// writes into freed blocks (random bytes, or the address of a global: a
// forged link), overflows live blocks by 1 to 64 bytes, frees blocks twice
// and frees interior pointers, with HPCALLOC_ON_ERROR=warn (set here, before
// the first call). hpcalloc may report what it detects whenever it detects
// it and abandon what was corrupted; whatever the input, the invariants are:
//   - no block handed out overlaps a live block or lies in this program's
//     own data (a forged link followed would show as one of those);
//   - every block handed out is hpcalloc's: malloc_usable_size() of it
//     answers at least its size without a report;
//   - no crash (a corrupted link or header followed would be one);
//   - every report names a call the step made (a corruption found inside
//     realloc() names realloc(), not the malloc() or free() it is made of):
//     checked on the latest report of each step that made one.
// The exact report of each case and the line it prints are checked by the
// death tests (src/api/misuse_death_test.cpp) and the preload test
// misuse_messages; c_api_fuzz checks the valid API and the misuse that
// corrupts nothing against the reference model.
//
// Built twice (fuzz/CMakeLists.txt): against the default flavour and, as
// corruption_fuzz_secure, the secure one; the invariants are the same.
//
// Writes only where memory is still mapped (mincore), never across a
// segment boundary (where a guard page or another mapping may start), never
// into the first 64 KiB of a segment (see write_into_freed), and
// through unpoison_memory so that ASan (on in the fuzz build) lets the
// harness make the very writes it is here to make.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/globals.h"
#include "api/hpcalloc.h"
#include "api/production_config.h"
#include "base/sanitizer.h"
#include "fuzz/fuzz_input.h"
#include "mem/hardening.h"

namespace hpcalloc::fuzz {
namespace {

constexpr char kName[] = "corruption_fuzz";
constexpr std::size_t kMediumMax = ProductionConfig::kMediumMax;
constexpr std::size_t kSegment = std::size_t{1} << ProductionConfig::kSegmentShift;
constexpr std::size_t kMaxSingle = std::size_t{8} << 20;
constexpr std::size_t kMaxLive = 64;
constexpr std::size_t kRecentlyFreed = 16;
constexpr std::size_t kMetadataZone = std::size_t{64} << 10;

alignas(64) unsigned char g_target[4096];  // where forged links point

std::size_t errors_reported() {
  std::size_t value = 0;
  if (hpc_stat("errors_reported", &value) != 0) fail(kName, "hpc_stat(errors_reported)");
  return value;
}

bool mapped(const void* p, std::size_t n) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(p) + n;
  unsigned char vec[4];
  for (std::uintptr_t at = begin; at < end; at += page) {
    if (mincore(reinterpret_cast<void*>(at), page, vec) != 0) return false;
  }
  return true;
}

bool crosses_segment(const void* p, std::size_t n) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return a / kSegment != (a + n - 1) / kSegment;
}

// The secure flavour's guard pages are the last page of every 64 KiB run
// and of every medium segment (mem/hardening.h): a write there faults, as
// it is meant to, which the harness cannot tell from a crash. It writes
// around them.
bool touches_guard(const void* p, std::size_t n) {
  if (!kSecureFlavour) return false;
  constexpr std::uintptr_t kRun = std::uintptr_t{64} << 10;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (std::uintptr_t at = a; at < a + n; ++at) {
    if (at % kRun >= kRun - kGuardPageBytes) return true;
  }
  return false;
}

void write_raw(void* at, const void* bytes, std::size_t n) {
  unpoison_memory(at, n);
  std::memcpy(at, bytes, n);
}

class Session {
 public:
  ~Session() {
    for (auto& [p, size] : live_) hpc_free(reinterpret_cast<void*>(p));
  }

  void run(Input& in) {
    while (!in.empty()) step(in);
  }

 private:
  void step(Input& in) {
    const std::size_t reports = errors_reported();
    const std::uint8_t opcode = in.byte() % 8;
    run_step(opcode, in);
    if (errors_reported() != reports) check_named_call(opcode);
  }

  // The calls each opcode makes (accept() asks malloc_usable_size()).
  static bool makes_call(std::uint8_t opcode, std::string_view call) {
    switch (opcode) {
      case 0: return call == "malloc()" || call == "malloc_usable_size()";
      case 1:
      case 4:
      case 5: return call == "free()";
      case 3: return call == "malloc_usable_size()";
      case 6: return call == "realloc()" || call == "malloc_usable_size()";
      case 7: return call == "malloc_trim()";
      default: return false;  // 2 writes memory, makes no call
    }
  }
  void check_named_call(std::uint8_t opcode) {
    const char* named = internal::globals()->reporter.last_operation();
    if (named == nullptr || !makes_call(opcode, named)) {
      fail(kName, std::string("opcode ") + std::to_string(opcode) + ": a report names " +
                      (named == nullptr ? "no call" : named) + ", a call the step did not make");
    }
  }

  void run_step(std::uint8_t opcode, Input& in) {
    switch (opcode) {
      case 0: allocate(size_from(in)); return;
      case 1: free_live(in.byte()); return;
      case 2: write_into_freed(in); return;
      case 3: overflow_live(in); return;
      case 4: double_free(in.byte()); return;
      case 5: interior_free(in.byte(), in.byte()); return;
      case 6: reallocate(in.byte(), size_from(in)); return;
      case 7: hpc_malloc_trim(0); return;
    }
  }

  static std::size_t size_from(Input& in) {
    const std::uint8_t kind = in.byte();
    const std::size_t raw = in.u32();
    if (kind < 160) return raw % 1025;               // small
    if (kind < 240) return 1025 + raw % (64 << 10);  // medium: cached and listed
    if (kind < 252) return raw % (kMediumMax + 1);
    return raw % kMaxSingle;  // huge now and then
  }

  // The invariants of a block just handed out, then it becomes live.
  void accept(void* p, std::size_t size) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const std::size_t extent = size == 0 ? 1 : size;
    const auto target = reinterpret_cast<std::uintptr_t>(g_target);
    if (a < target + sizeof g_target && target < a + extent) {
      fail(kName, "a block inside the harness's own data (a forged link followed)");
    }
    auto next = live_.lower_bound(a);
    if (next != live_.end() && next->first < a + extent) fail(kName, "overlaps a live block");
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + (prev->second == 0 ? 1 : prev->second) > a) {
        fail(kName, "overlaps a live block");
      }
    }
    // The first look may find corruption elsewhere (a neighbour's header,
    // a cache walked on the way) and report it, abandoning that structure;
    // the second must answer for p alone, without a report.
    hpc_malloc_usable_size(p);
    const std::size_t reports = errors_reported();
    if (hpc_malloc_usable_size(p) < size || errors_reported() != reports) {
      fail(kName, "a block handed out is not a live hpcalloc block");
    }
    live_[a] = size;
    // Forget freed blocks this one reuses: writing there now is no misuse.
    std::erase_if(freed_, [&](const Freed& f) {
      return f.p < a + extent && a < f.p + (f.size == 0 ? 1 : f.size);
    });
    if (size != 0) std::memset(p, 0x5a, size < 64 ? size : 64);
  }

  void allocate(std::size_t size) {
    if (live_.size() >= kMaxLive) return;
    void* p = hpc_malloc(size);
    if (p != nullptr) accept(p, size);
  }

  std::map<std::uintptr_t, std::size_t>::iterator pick_live(std::uint8_t index) {
    if (live_.empty()) return live_.end();
    auto it = live_.begin();
    std::advance(it, index % live_.size());
    return it;
  }

  void free_live(std::uint8_t index) {
    auto it = pick_live(index);
    if (it == live_.end()) return;
    const Freed f{it->first, it->second};
    live_.erase(it);
    hpc_free(reinterpret_cast<void*>(f.p));
    freed_.push_back(f);
    if (freed_.size() > kRecentlyFreed) freed_.erase(freed_.begin());
  }

  // A use after free: up to 24 bytes at the start of a freed small or
  // medium block (where the free structures keep their links), random or
  // the address of g_target.
  void write_into_freed(Input& in) {
    if (freed_.empty()) return;
    const Freed& f = freed_[in.byte() % freed_.size()];
    const std::size_t offset = (in.byte() % 3) * 8;
    const std::size_t n = 1 + in.byte() % 8;
    std::uint64_t value = in.byte() < 128 ? reinterpret_cast<std::uintptr_t>(g_target) : in.u64();
    void* at = reinterpret_cast<void*>(f.p + offset);
    // Not in the first 64 KiB of a segment: a freed block's memory there
    // may since hold a new small segment's run metadata, which is not one
    // of the free structures the hardening protects (see the top comment
    // of mem/small_runs.h).
    if (f.size > kMediumMax || f.size < offset + n || f.p % kSegment < kMetadataZone ||
        !mapped(at, n) || crosses_segment(at, n) || touches_guard(at, n)) {
      return;
    }
    write_raw(at, &value, n);
  }

  // An overflow of 1 to 64 bytes past a live block's usable size.
  void overflow_live(Input& in) {
    auto it = pick_live(in.byte());
    const std::size_t n = 1 + in.byte() % 64;
    const std::uint8_t fill = in.byte();
    if (it == live_.end() || it->second > kMediumMax) return;
    auto* p = reinterpret_cast<unsigned char*>(it->first);
    const std::size_t usable = hpc_malloc_usable_size(p);
    if (usable == 0 || !mapped(p + usable, n) || crosses_segment(p, usable + n) ||
        touches_guard(p + usable, n)) {
      return;
    }
    unsigned char bytes[64];
    std::memset(bytes, fill, sizeof bytes);
    write_raw(p + usable, bytes, n);
  }

  void double_free(std::uint8_t index) {
    if (freed_.empty()) return;
    const Freed& f = freed_[index % freed_.size()];
    // The address may be live again (reused): then it is not a misuse.
    if (live_.count(f.p) != 0) return;
    hpc_free(reinterpret_cast<void*>(f.p));
  }

  void interior_free(std::uint8_t index, std::uint8_t offset) {
    auto it = pick_live(index);
    if (it == live_.end() || it->second < 2) return;
    const std::size_t at = 1 + offset % (it->second - 1);
    hpc_free(reinterpret_cast<char*>(it->first) + at);
  }

  void reallocate(std::uint8_t index, std::size_t size) {
    auto it = pick_live(index);
    if (it == live_.end()) return;
    const auto old = *it;
    live_.erase(it);
    errno = 0;
    void* q = hpc_realloc(reinterpret_cast<void*>(old.first), size);
    if (q == nullptr) {
      // Failed (old kept), or realloc(p, 0) freed it, or a report (a
      // corrupted neighbour): the block is then left alone, out of every
      // check.
      if (size != 0 && errno == ENOMEM) live_[old.first] = old.second;
      return;
    }
    accept(q, size);
  }

  struct Freed {
    std::uintptr_t p;
    std::size_t size;
  };
  std::map<std::uintptr_t, std::size_t> live_;  // address -> size asked
  std::vector<Freed> freed_;                    // the most recent frees
};

}  // namespace
}  // namespace hpcalloc::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  setenv("HPCALLOC_ON_ERROR", "warn", 1);  // before hpcalloc's first call reads it
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hpcalloc::fuzz::Input in(data, size);
  hpcalloc::fuzz::Session().run(in);
  return 0;
}
