// RegionRegistry: maps any address to the T* (a segment header) of the
// fixed-size, aligned slot it falls in, so free() finds a block's owner in
// O(1). A two-level table indexed by `address >> kSlotShift`: a root array of
// leaf pointers held inside the registry object (static storage in
// production) and leaf tables of entries, reserved from the Pal on demand.
//
// Invariants:
//   - a leaf is installed with one compare-exchange and never freed while the
//     registry lives, so a root slot goes null -> leaf exactly once;
//   - lookup() is two acquire loads, takes no lock and never creates a leaf;
//     an address the registry does not know (never assigned, cleared, or
//     >= 2^kAddressBits) gives nullptr: the caller reports it as foreign;
//   - a lookup that happens after assign() returned, and before clear() of
//     that range began, finds the value, and sees the header it points to
//     fully initialised (assign's entry store is a release).
// Writers to one range (assign, clear) must not race with each other; writers
// to different ranges may, even when their ranges share a leaf.
//
// Orders is a policy only so that model/ can instantiate deliberately broken
// twins (see RegionRegistryOrders); production code never passes it.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <new>

#include "base/bits.h"
#include "base/check.h"
#include "sync/sync_policy.h"

namespace hpcalloc {

// What the registry needs from a platform: any full Pal satisfies it, and so
// does a test's minimal fake.
template <class P>
concept RegistryPal = requires(P& pal, const P& const_pal, void* p, std::size_t n) {
  { const_pal.page_size() } -> std::same_as<std::size_t>;
  { pal.reserve(n, n) } -> std::same_as<void*>;
  { pal.release(p, n) } -> std::same_as<bool>;
};

template <class G>
concept RegistryGeometry = requires {
  { G::kSlotShift } -> std::convertible_to<unsigned>;
  { G::kAddressBits } -> std::convertible_to<unsigned>;
  { G::kRootBits } -> std::convertible_to<unsigned>;
};

// Production geometry: 2 MiB slots, 48-bit user address space, 8192 root
// entries (64 KiB of static storage), 16384-entry leaves (128 KiB each, one
// per 32 GiB of address space in use).
struct RegionRegistryGeometry {
  static constexpr unsigned kSlotShift = 21;
  static constexpr unsigned kAddressBits = 48;
  static constexpr unsigned kRootBits = 13;
};

struct RegionRegistryOrders {
  // assign()'s entry store publishes the header the value points to: it
  // synchronises with the acquire loads of the entry in lookup().
  static constexpr std::memory_order kPublishEntry = std::memory_order_release;
  // lookup()'s loads of the root slot and of the entry synchronise with the
  // leaf-install CAS (so the leaf's entries are constructed) and with
  // assign()'s entry store (so the header is initialised).
  static constexpr std::memory_order kLookup = std::memory_order_acquire;
  // The leaf-install CAS. Release: publishes the freshly constructed leaf to
  // every acquire load of that root slot. Acquire: the value it replaces is
  // the constructor's null, so today it orders nothing; it is kept so the
  // install is a full acq_rel RMW whatever the root slot's history becomes.
  static constexpr std::memory_order kInstallLeaf = std::memory_order_acq_rel;
  // A failed install read the winner's leaf, which we then write into:
  // acquire synchronises with the winner's release so its construction of
  // the entries happens before our stores.
  static constexpr std::memory_order kInstallLeafFailure = std::memory_order_acquire;
  // false installs with a plain store (losing a racing leaf and the entries
  // written into it): only model/'s broken twin sets it.
  static constexpr bool kInstallLeafWithCas = true;
};

template <class T, SyncPolicy Sync, RegistryPal Pal,
          RegistryGeometry Geometry = RegionRegistryGeometry, class Orders = RegionRegistryOrders>
class RegionRegistry {
 public:
  static constexpr unsigned kSlotShift = Geometry::kSlotShift;
  static constexpr unsigned kAddressBits = Geometry::kAddressBits;
  static constexpr unsigned kRootBits = Geometry::kRootBits;
  static_assert(kAddressBits < 64, "addresses at or above 2^kAddressBits must exist (foreign)");
  static_assert(kSlotShift + kRootBits <= kAddressBits, "root bits exceed the slot bits");
  static constexpr unsigned kLeafBits = kAddressBits - kSlotShift - kRootBits;
  static_assert(kLeafBits < 32 && kRootBits < 32, "tables of 2^32 entries are not meant");

  static constexpr std::size_t kSlotSize = std::size_t{1} << kSlotShift;
  static constexpr std::size_t kRootEntries = std::size_t{1} << kRootBits;
  static constexpr std::size_t kLeafEntries = std::size_t{1} << kLeafBits;
  // Bytes of address space one leaf covers.
  static constexpr std::size_t kLeafSpan = kLeafEntries << kSlotShift;
  static constexpr std::uintptr_t kAddressLimit = std::uintptr_t{1} << kAddressBits;

  // The Pal must outlive the registry. constexpr so that production can
  // constant-initialise a static instance (StdSync's atomics are constexpr).
  constexpr explicit RegionRegistry(Pal& pal) : pal_(&pal) {}
  // Without a Pal yet (attach_pal() before the first assign()): lets the
  // process-wide registry be constant-initialised in static storage, its
  // root never written at start-up (zero pages stay untouched).
  constexpr RegionRegistry() : pal_(nullptr) {}
  void attach_pal(Pal& pal) { pal_ = &pal; }
  RegionRegistry(const RegionRegistry&) = delete;
  RegionRegistry& operator=(const RegionRegistry&) = delete;

  // Releases every leaf. Nothing may use the registry during or after this:
  // an instance that threads can reach during process exit (the global one)
  // must never be destroyed, so build it in storage whose destructor is not
  // run. The relaxed loads are enough because destruction happens after
  // every other use of the object (the owner's contract).
  ~RegionRegistry() {
    for (auto& root : root_) {
      Leaf* leaf = root.load(std::memory_order_relaxed);
      if (leaf != nullptr) destroy_leaf(leaf);
    }
  }

  // Sets every slot of [start, start+size) to value. start and size are
  // multiples of kSlotSize. Returns false, with no slot of the range changed,
  // when a leaf cannot be reserved (ENOMEM) or the range reaches past
  // 2^kAddressBits; leaves created before the failure stay (they are never
  // freed). The range must not be assigned or cleared concurrently.
  bool assign(void* start, std::size_t size, T* value) {
    const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(start);
    HPCALLOC_ASSERT(is_aligned(begin, kSlotSize) && is_aligned(size, kSlotSize));
    if (size == 0) return true;
    if (begin >= kAddressLimit || size > kAddressLimit - begin) return false;
    const std::uintptr_t first_slot = begin >> kSlotShift;
    const std::uintptr_t last_slot = first_slot + (size >> kSlotShift) - 1;
    // Create every leaf first, so a failure leaves no entry to roll back and
    // a concurrent lookup never sees a transient value.
    for (std::uintptr_t root = first_slot >> kLeafBits; root <= last_slot >> kLeafBits; ++root) {
      if (leaf_or_create(root) == nullptr) return false;
    }
    for (std::uintptr_t slot = first_slot; slot <= last_slot; ++slot) {
      entry_of(slot).store(value, Orders::kPublishEntry);  // see RegionRegistryOrders
    }
    return true;
  }

  // Sets every slot of [start, start+size), which assign() set, back to null.
  // The range must not be assigned, cleared or looked up concurrently (its
  // segment is being given back, so no live pointer into it remains).
  void clear(void* start, std::size_t size) {
    const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(start);
    HPCALLOC_ASSERT(is_aligned(begin, kSlotSize) && is_aligned(size, kSlotSize));
    HPCALLOC_ASSERT(begin < kAddressLimit && size <= kAddressLimit - begin);
    if (size == 0) return;
    const std::uintptr_t first_slot = begin >> kSlotShift;
    const std::uintptr_t last_slot = first_slot + (size >> kSlotShift) - 1;
    for (std::uintptr_t slot = first_slot; slot <= last_slot; ++slot) {
      // Acquire: synchronises with the install CAS, so the entry we write is
      // constructed. A missing leaf means the range was never assigned.
      Leaf* leaf = root_[slot >> kLeafBits].load(std::memory_order_acquire);
      HPCALLOC_ASSERT(leaf != nullptr);
      if (leaf == nullptr) continue;
      // Relaxed: a null publishes nothing, and nobody may look this range up
      // concurrently; the next assign() of it republishes with a release.
      leaf->entries[slot & (kLeafEntries - 1)].store(nullptr, std::memory_order_relaxed);
    }
  }

  // The value of the slot p falls in, or nullptr when p is not in an
  // assigned range (including p >= 2^kAddressBits). Never creates a leaf.
  T* lookup(const void* p) const {
    const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(p);
    if (address >= kAddressLimit) return nullptr;
    const std::uintptr_t slot = address >> kSlotShift;
    // Synchronises with the leaf-install CAS: the entries are constructed.
    Leaf* leaf = root_[slot >> kLeafBits].load(Orders::kLookup);
    if (leaf == nullptr) return nullptr;
    // Synchronises with assign()'s release store: *result is initialised.
    return leaf->entries[slot & (kLeafEntries - 1)].load(Orders::kLookup);
  }

  // Calls fn(start, size, value) for each maximal run of consecutive slots
  // holding the same non-null value, in address order: each assigned
  // range, with neighbours that share a value merged. For statistics (the
  // resident bytes of every registered mapping): it takes no lock, so
  // ranges assigned or cleared meanwhile may or may not be seen. The loads
  // are lookup()'s: a leaf seen is constructed, an entry seen was
  // published by its assign().
  template <class Fn>
  void for_each_range(Fn&& fn) const {
    T* run_value = nullptr;
    std::uintptr_t run_first = 0;
    const auto flush = [&](std::uintptr_t end) {
      if (run_value == nullptr) return;
      fn(reinterpret_cast<void*>(run_first << kSlotShift), (end - run_first) << kSlotShift,
         run_value);
      run_value = nullptr;
    };
    for (std::uintptr_t root = 0; root < kRootEntries; ++root) {
      Leaf* leaf = root_[root].load(Orders::kLookup);
      if (leaf == nullptr) {
        flush(root << kLeafBits);
        continue;
      }
      for (std::uintptr_t i = 0; i < kLeafEntries; ++i) {
        const std::uintptr_t slot = (root << kLeafBits) | i;
        T* value = leaf->entries[i].load(Orders::kLookup);
        if (value == run_value) continue;
        flush(slot);
        run_value = value;
        run_first = slot;
      }
    }
    flush(kRootEntries << kLeafBits);
  }

  // The number of leaves installed, and so the registry's bytes beyond its
  // root (leaf_count() * leaf_bytes()). Relaxed: a statistic; a test reads
  // it after joining every writer, which orders the installs before it.
  std::size_t leaf_count() const {
    std::size_t count = 0;
    for (const auto& root : root_) count += root.load(std::memory_order_relaxed) != nullptr;
    return count;
  }

  // Bytes each leaf takes from the Pal (its table rounded up to pages).
  std::size_t leaf_bytes() const { return align_up(sizeof(Leaf), pal_->page_size()); }

 private:
  struct Leaf {
    typename Sync::template Atomic<T*> entries[kLeafEntries];
  };

  // The leaf for root index `root`, installing one if there is none; nullptr
  // only when the Pal cannot supply one.
  Leaf* leaf_or_create(std::uintptr_t root) {
    // Synchronises with the install CAS of whoever installed this leaf, so
    // its entries are constructed before we store into them.
    Leaf* leaf = root_[root].load(std::memory_order_acquire);
    if (leaf != nullptr) return leaf;
    const std::size_t bytes = leaf_bytes();
    HPCALLOC_ASSERT(alignof(Leaf) <= pal_->page_size());
    void* memory = pal_->reserve(bytes, pal_->page_size());
    if (memory == nullptr) return nullptr;
    // Placement new: the model checker's atomics must be constructed, and
    // StdSync's constructor is a store of zeros to memory already zero.
    Leaf* fresh = ::new (memory) Leaf;
    if constexpr (!Orders::kInstallLeafWithCas) {
      // BROKEN on purpose (model/ only): a racing installer's leaf, and the
      // entries written into it, are overwritten. Release publishes ours.
      root_[root].store(fresh, std::memory_order_release);
      return fresh;
    } else {
      Leaf* expected = nullptr;
      // Orders: see kInstallLeaf and kInstallLeafFailure.
      if (root_[root].compare_exchange_strong(expected, fresh, Orders::kInstallLeaf,
                                              Orders::kInstallLeafFailure)) {
        return fresh;
      }
      // Lost the race: nobody else ever saw `fresh`, so it goes straight back.
      destroy_leaf(fresh);
      return expected;
    }
  }

  void destroy_leaf(Leaf* leaf) {
    leaf->~Leaf();
    // A failed release leaves the pages mapped; there is nothing better to do
    // with them, and the registry stays correct.
    (void)pal_->release(leaf, leaf_bytes());
  }

  // The entry of a slot whose leaf assign()'s first pass created or saw.
  typename Sync::template Atomic<T*>& entry_of(std::uintptr_t slot) {
    // Acquire synchronises with the install CAS (our first pass already did,
    // so this is belt and braces); a leaf is never removed, so not null.
    Leaf* leaf = root_[slot >> kLeafBits].load(std::memory_order_acquire);
    HPCALLOC_ASSERT(leaf != nullptr);
    return leaf->entries[slot & (kLeafEntries - 1)];
  }

  // First, so lookup() indexes it at offset 0 from the registry's address.
  // Default-initialised: every policy's Atomic starts as a null pointer.
  typename Sync::template Atomic<Leaf*> root_[kRootEntries];
  Pal* pal_;
};

}  // namespace hpcalloc
