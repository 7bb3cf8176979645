// Relacy model of ds/region_registry.h, the production header on RelacySync
// with a tiny geometry (16-byte slots, 8-bit addresses, 4 roots of 4-slot
// leaves; the registry never dereferences an address, so small integers do).
//
// Checks:
//   same_leaf_install: two threads assign ranges in the same not-yet-created
//     leaf. Exactly one table is installed, the loser's goes back to the Pal,
//     and both entries are there afterwards.
//   publication: a thread initialises a header (Var fields, so Relacy checks
//     them for races) and assigns it; another looks the address up and, if it
//     finds the header, reads the fields: race-free and initialised. The leaf
//     exists beforehand, so the entry store alone must publish.
//   three_threads: two writers (one range spanning two fresh leaves) and a
//     reader, under a context bound.
// The broken twins weaken one thing each through the registry's Orders
// policy; Relacy must catch every one.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/bits.h"
#include "ds/region_registry.h"
#include "model/model_runner.h"
#include "model/scenarios/region_registry_twins.h"

namespace hpcalloc::model {
namespace {

struct ModelGeometry {
  static constexpr unsigned kSlotShift = 4;
  static constexpr unsigned kAddressBits = 8;
  static constexpr unsigned kRootBits = 2;
};
constexpr std::uintptr_t kSlot = 16;

// Relacy replaces the global operator new for the program, so the fake Pal
// takes its tables from aligned_alloc. Relacy runs every simulated thread on
// one OS thread and switches only at its own operations: plain counters are
// exact.
class ModelPal {
 public:
  std::size_t page_size() const { return 64; }
  void* reserve(std::size_t size, std::size_t align) {
    const std::size_t bytes = align_up(size, align);
    void* p = ::aligned_alloc(align, bytes);
    if (p == nullptr) return nullptr;
    std::memset(p, 0, bytes);
    ++reserves;
    return p;
  }
  bool release(void* p, std::size_t /*size*/) {
    ::free(p);
    ++releases;
    return true;
  }
  int reserves = 0;
  int releases = 0;
};

struct Header {
  RelacySync::Var<int> id{0};
  RelacySync::Var<int> kind{0};
};

// The broken twins (model/scenarios/region_registry_twins.h).
using scenarios::PlainStoreInstall;
using scenarios::RelaxedEntryStore;
using scenarios::RelaxedLookup;

void* at(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// The registry under test, built by the suite's constructor and destroyed in
// after() so the destructor's releases can be counted too.
template <class Orders>
class RegistryUnderTest {
 public:
  using Registry = RegionRegistry<Header, RelacySync, ModelPal, ModelGeometry, Orders>;

  RegistryUnderTest() { ::new (storage_) Registry(pal); }
  ~RegistryUnderTest() { destroy(); }
  Registry& operator*() { return *std::launder(reinterpret_cast<Registry*>(storage_)); }
  Registry* operator->() { return &**this; }

  // Destroys the registry and checks every table went back to the Pal.
  void destroy_and_check_released() {
    destroy();
    RL_ASSERT(pal.reserves == pal.releases);
  }

  ModelPal pal;

 private:
  void destroy() {
    if (alive_) (**this).~Registry();
    alive_ = false;
  }

  alignas(Registry) unsigned char storage_[sizeof(Registry)];
  bool alive_ = true;
};

// (a) Both writers race to create leaf 0.
template <class Orders>
struct SameLeafInstall : rl::test_suite<SameLeafInstall<Orders>, 2> {
  RegistryUnderTest<Orders> registry;
  Header headers[2];

  void thread(unsigned index) {
    headers[index].id.store(static_cast<int>(index) + 1);
    const bool assigned = registry->assign(at((index + 1) * kSlot), kSlot, &headers[index]);
    RL_ASSERT(assigned);
  }

  void after() {
    RL_ASSERT(registry->lookup(at(kSlot)) == &headers[0]);
    RL_ASSERT(registry->lookup(at(2 * kSlot + kSlot - 1)) == &headers[1]);
    RL_ASSERT(registry->leaf_count() == 1);
    // A second table was reserved only if the writers raced, and then its
    // loser gave it back.
    RL_ASSERT(registry.pal.reserves - registry.pal.releases == 1);
    registry.destroy_and_check_released();
  }
};

// (b) Thread 0 publishes a header in an existing leaf; thread 1 looks it up.
template <class Orders>
struct Publication : rl::test_suite<Publication<Orders>, 2> {
  RegistryUnderTest<Orders> registry;
  Header early;
  Header header;

  // Runs before the threads (and happens before them): creates leaf 0, so
  // the install CAS cannot publish the header by accident.
  void before() {
    const bool assigned = registry->assign(at(0), kSlot, &early);
    RL_ASSERT(assigned);
  }

  void thread(unsigned index) {
    if (index == 0) {
      header.id.store(7);
      header.kind.store(3);
      const bool assigned = registry->assign(at(2 * kSlot), kSlot, &header);
      RL_ASSERT(assigned);
    } else {
      RL_ASSERT(registry->lookup(at(3 * kSlot)) == nullptr);  // never assigned
      Header* found = registry->lookup(at(2 * kSlot + 5));
      if (found != nullptr) {
        RL_ASSERT(found == &header);
        RL_ASSERT(found->id.load() == 7);
        RL_ASSERT(found->kind.load() == 3);
      }
    }
  }

  void after() {
    RL_ASSERT(registry->lookup(at(2 * kSlot)) == &header);
    RL_ASSERT(registry->leaf_count() == 1);
    registry.destroy_and_check_released();
  }
};

// (c) Writer 0 assigns slot 1; writer 1 assigns slots 2..5, across leaves 0
// and 1; the reader checks whatever it finds in both ranges.
template <class Orders>
struct ThreeThreads : rl::test_suite<ThreeThreads<Orders>, 3> {
  RegistryUnderTest<Orders> registry;
  Header headers[2];

  void check_if_found(std::uintptr_t address, unsigned writer) {
    Header* found = registry->lookup(at(address));
    if (found == nullptr) return;
    RL_ASSERT(found == &headers[writer]);
    RL_ASSERT(found->id.load() == static_cast<int>(writer) + 1);
  }

  void thread(unsigned index) {
    if (index < 2) {
      headers[index].id.store(static_cast<int>(index) + 1);
      const std::uintptr_t start = index == 0 ? kSlot : 2 * kSlot;
      const std::uintptr_t size = index == 0 ? kSlot : 4 * kSlot;
      const bool assigned = registry->assign(at(start), size, &headers[index]);
      RL_ASSERT(assigned);
      check_if_found(index == 0 ? 3 * kSlot : kSlot, 1 - index);
    } else {
      check_if_found(kSlot + 1, 0);
      check_if_found(5 * kSlot + kSlot - 1, 1);
      check_if_found(2 * kSlot, 1);
      RL_ASSERT(registry->lookup(at(6 * kSlot)) == nullptr);
    }
  }

  void after() {
    RL_ASSERT(registry->lookup(at(kSlot)) == &headers[0]);
    for (std::uintptr_t slot = 2; slot <= 5; ++slot) {
      RL_ASSERT(registry->lookup(at(slot * kSlot)) == &headers[1]);
    }
    RL_ASSERT(registry->leaf_count() == 2);
    RL_ASSERT(registry.pal.reserves - registry.pal.releases == 2);
    registry.destroy_and_check_released();
  }
};

const ModelCheck kChecks[] = {
    {"same_leaf_install_full_search", &run_relacy<SameLeafInstall<RegionRegistryOrders>>,
     rl::sched_full, 0, rl::test_result_success},
    {"publication_full_search", &run_relacy<Publication<RegionRegistryOrders>>, rl::sched_full, 0,
     rl::test_result_success},
    {"three_threads_context_bound_3", &run_relacy<ThreeThreads<RegionRegistryOrders>>,
     rl::sched_bound, 3, rl::test_result_success},
    {"broken_plain_store_install_is_caught", &run_relacy<SameLeafInstall<PlainStoreInstall>>,
     rl::sched_full, 0, rl::test_result_user_assert_failed},
    {"broken_relaxed_entry_store_is_caught", &run_relacy<Publication<RelaxedEntryStore>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_relaxed_lookup_is_caught", &run_relacy<Publication<RelaxedLookup>>, rl::sched_full, 0,
     rl::test_result_data_race},
};

}  // namespace
}  // namespace hpcalloc::model

int main(int argc, char** argv) {
  using namespace hpcalloc::model;
  return run_model_checks(kChecks, sizeof kChecks / sizeof kChecks[0], argc, argv);
}
