// libFuzzer harness of RegionRegistry alone (ds/region_registry.h) on a tiny
// geometry (4 KiB slots, a 24-bit address space: 4096 slots, 16 leaves of
// 256 entries) and a fake platform that can refuse a leaf, against a
// std::map of slot -> value. The input is a program of assign, clear and
// lookup of random ranges, some reaching past the address limit, some hit
// by a refused leaf. Checks: assign answers true exactly when the range is
// inside the limit and its leaves could be had, and changes nothing when it
// answers false; every lookup agrees with the map (interior addresses and
// addresses past the limit included); the leaves installed are the ones the
// platform handed out, and the registry gives every one back when destroyed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "ds/region_registry.h"
#include "fuzz/fuzz_input.h"
#include "sync/std_sync.h"

namespace hpcalloc::fuzz {
namespace {

constexpr char kName[] = "registry_fuzz";

struct TinyGeometry {
  static constexpr unsigned kSlotShift = 12;
  static constexpr unsigned kAddressBits = 24;
  static constexpr unsigned kRootBits = 4;
};

// Leaves come from the C library, zeroed as reserve() promises; the next
// reserve can be told to fail.
class FakePal {
 public:
  std::size_t page_size() const { return 4096; }
  void* reserve(std::size_t size, std::size_t align) {
    if (refuse_next) {
      refuse_next = false;
      return nullptr;
    }
    void* p = std::aligned_alloc(align, size);
    if (p == nullptr) fail(kName, "aligned_alloc failed");
    std::memset(p, 0, size);
    ++live;
    return p;
  }
  bool release(void* p, std::size_t) {
    std::free(p);
    --live;
    return true;
  }

  bool refuse_next = false;
  std::size_t live = 0;  // leaves handed out and not given back
};

struct Value {
  int id;
};
using Registry = RegionRegistry<Value, StdSync, FakePal, TinyGeometry>;
constexpr std::uintptr_t kSlots = std::uintptr_t{1}
                                  << (Registry::kAddressBits - Registry::kSlotShift);

class Session {
 public:
  ~Session() {
    registry_.reset();
    if (pal_.live != 0) fail(kName, "the registry did not give back every leaf");
  }

  void run(Input& in) {
    registry_ = std::make_unique<Registry>(pal_);
    while (!in.empty()) {
      step(in);
      if (registry_->leaf_count() != leaves() || pal_.live != leaves()) {
        fail(kName, "leaf count");
      }
    }
    for (std::uintptr_t slot = 0; slot < kSlots; ++slot) check(slot << Registry::kSlotShift);
  }

 private:
  // A range of slots: most inside the limit, some straddling or past it.
  void range_from(Input& in, std::uintptr_t* first, std::uintptr_t* count) {
    *first = in.u16() % (kSlots + 64);
    *count = in.byte() % 4 == 0 ? in.u16() % (kSlots + 1) : in.byte() % 40;
  }

  void step(Input& in) {
    switch (in.byte() % 4) {
      case 0: {
        std::uintptr_t first = 0, count = 0;
        range_from(in, &first, &count);
        pal_.refuse_next = in.byte() % 8 == 0;
        Value* value = &values_[in.byte() % 8];
        const bool inside = first < kSlots && count <= kSlots - first;
        const bool refuse = pal_.refuse_next;
        const bool ok = registry_->assign(address(first), count << Registry::kSlotShift, value);
        pal_.refuse_next = false;
        // What assign does: nothing for an empty range; else, inside the
        // limit, create the missing leaves in root order (the refused one
        // stops it, the ones before it stay), then store every entry.
        bool could = count == 0 || inside;
        if (count != 0 && inside) {
          for (std::uintptr_t root = first >> Registry::kLeafBits;
               root <= (first + count - 1) >> Registry::kLeafBits; ++root) {
            if (has_leaf_[root]) continue;
            if (refuse) {
              could = false;
              break;
            }
            has_leaf_[root] = true;
          }
        }
        if (ok != could) fail(kName, "assign answered " + std::to_string(ok));
        if (ok) {
          for (std::uintptr_t s = first; s < first + count; ++s) model_[s] = value;
        }
        check_range(first, count);
        return;
      }
      case 1: {
        std::uintptr_t first = 0, count = 0;
        range_from(in, &first, &count);
        // clear()'s contract: a range inside the limit whose leaves exist.
        if (count == 0 || first >= kSlots || count > kSlots - first ||
            !leaves_exist(first, count)) {
          return;
        }
        registry_->clear(address(first), count << Registry::kSlotShift);
        for (std::uintptr_t s = first; s < first + count; ++s) model_.erase(s);
        check_range(first, count);
        return;
      }
      case 2: {
        const std::uint8_t where = in.byte();
        if (where % 4 == 0) return check(static_cast<std::uintptr_t>(in.u64()));
        return check(in.u32() % (std::uintptr_t{2} << Registry::kAddressBits));
      }
      default: {
        std::uintptr_t first = 0, count = 0;
        range_from(in, &first, &count);
        check_range(first, count);
        return;
      }
    }
  }

  static void* address(std::uintptr_t slot) {
    return reinterpret_cast<void*>(slot << Registry::kSlotShift);
  }

  // Whether every slot of the (non-empty) range lies in a leaf.
  bool leaves_exist(std::uintptr_t first, std::uintptr_t count) const {
    for (std::uintptr_t root = first >> Registry::kLeafBits;
         count != 0 && root <= (first + count - 1) >> Registry::kLeafBits; ++root) {
      if (!has_leaf_[root]) return false;
    }
    return true;
  }

  std::size_t leaves() const {
    std::size_t n = 0;
    for (bool leaf : has_leaf_) n += leaf;
    return n;
  }

  void check(std::uintptr_t address) {
    const Value* got = registry_->lookup(reinterpret_cast<const void*>(address));
    const Value* want = nullptr;
    if (address < Registry::kAddressLimit) {
      auto it = model_.find(address >> Registry::kSlotShift);
      if (it != model_.end()) want = it->second;
    }
    if (got != want) fail(kName, "lookup(" + std::to_string(address) + ") disagrees with the map");
  }

  void check_range(std::uintptr_t first, std::uintptr_t count) {
    // Both ends and their outer neighbours, plus interior addresses.
    const std::uintptr_t lo = first == 0 ? 0 : first - 1;
    for (std::uintptr_t s = lo; s <= first + count && s < kSlots + 64; ++s) {
      if (s - lo > 80 && s + 2 < first + count) s = first + count - 2;  // skip the middle
      check((s << Registry::kSlotShift) + (s * 0x9e37 & 4095));
    }
  }

  FakePal pal_;
  std::unique_ptr<Registry> registry_;
  std::map<std::uintptr_t, Value*> model_;
  bool has_leaf_[Registry::kRootEntries] = {};  // leaves are never removed
  Value values_[8] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
};

}  // namespace
}  // namespace hpcalloc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hpcalloc::fuzz::Input in(data, size);
  hpcalloc::fuzz::Session().run(in);
  return 0;
}
