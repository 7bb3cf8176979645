// The carriers a model heap can lend (the scenarios of mem/remote_frees.h
// and mem/heap_pool.h): a fixed set of carrier-sized blocks of Sync::Var
// words, each taken by its heap's RemoteFrees when it sends a batch and
// given back when the carrier comes home. Owner-only bookkeeping (Var, so
// the model checker sees a heap's slots change hands).
#pragma once

#include <cstdint>

namespace hpcalloc::scenarios {

template <class Sync, class Checker, class Frees, unsigned kSlots>
class CarrierSlots {
 public:
  using Word = typename Frees::Word;

  void reset() {
    for (Slot& slot : slots_) slot.in_use.store(0);
  }
  // A free slot for a carrier of `words` words.
  Word* take(unsigned words) {
    Checker::check(words <= Frees::kMaxCarrierWords, "a carrier fits its slot");
    for (Slot& slot : slots_) {
      if (slot.in_use.load() == 0) {
        slot.in_use.store(1);
        return slot.words;
      }
    }
    Checker::check(false, "a sender has a carrier slot for every batch");
    return nullptr;
  }
  // A carrier back home: one of these slots, taken and not yet given back.
  void give_back(void* carrier) {
    Slot* slot = slot_of(carrier);
    Checker::check(slot != nullptr, "a returned carrier is one of this heap's");
    if (slot == nullptr) return;
    Checker::check(slot->in_use.load() == 1, "a carrier comes home once");
    slot->in_use.store(0);
  }
  bool owns(const void* p) const { return slot_of(p) != nullptr; }
  bool all_home() const {
    for (const Slot& slot : slots_) {
      if (slot.in_use.load() != 0) return false;
    }
    return true;
  }

 private:
  struct alignas(16) Slot {
    Word words[Frees::kMaxCarrierWords];
    typename Sync::template Var<int> in_use{0};
  };

  // Addresses compared as integers: p may point anywhere.
  Slot* slot_of(const void* p) const {
    const auto base = reinterpret_cast<std::uintptr_t>(slots_);
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    if (at < base || (at - base) % sizeof(Slot) != 0 || (at - base) / sizeof(Slot) >= kSlots) {
      return nullptr;
    }
    return const_cast<Slot*>(&slots_[(at - base) / sizeof(Slot)]);
  }

  Slot slots_[kSlots];
};

}  // namespace hpcalloc::scenarios
