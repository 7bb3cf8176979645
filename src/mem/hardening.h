// What a flavour of the allocator spends on stopping hostile or buggy
// programs beyond what every build does (keyed links and headers, guarded
// huge blocks: see the components). A Config opts in with a member
//   static constexpr Hardening kHardening = Hardening::secure();
// and every component reads hardening_of<Config>: a config without the
// member (production's default flavour, the test configs) gets kDefault, all
// off, and the code of each feature is compiled out (if constexpr), so the
// default flavour pays nothing for the secure one's existence.
//
// The secure flavour (libhpcalloc-secure.so, api/production_config.h):
//   guard_runs         the last page of every small run is PROT_NONE, so a
//                      linear overflow out of a run faults instead of
//                      running into the next run;
//   guard_medium       the last page of every medium segment is PROT_NONE,
//                      so an overflow off a segment's end faults before
//                      it reaches the next segment's header;
//   random_slots       a refill hands a run's free slots out in random
//                      order (an attacker cannot place a block next to
//                      another by allocating in sequence);
//   canary_bytes       a keyed word after every small block's usable
//                      bytes, checked when the block is freed: an overflow
//                      by 1 to 64 bytes (or any) is reported at that free;
//   zero_on_free       a freed small block is zeroed past its two link
//                      words, and checked still zero when it leaves the
//                      quarantine and when it is handed out again: any
//                      write into it meanwhile is reported;
//   quarantine_blocks  freed small blocks wait in a FIFO of this many (and
//   quarantine_bytes   at most this many bytes) before they can be handed
//                      out again, so a dangling pointer's writes land in a
//                      block nobody owns (and are found), and a second
//                      free of a quarantined block is found in the FIFO;
//   check_every_free   every free checks the block's bitmap bit (the
//                      default's fast free path skips it).
#pragma once

#include <cstddef>

namespace hpcalloc {

struct Hardening {
  bool guard_runs = false;
  bool guard_medium = false;
  bool random_slots = false;
  std::size_t canary_bytes = 0;  // 0, or 8: one word
  bool zero_on_free = false;
  unsigned quarantine_blocks = 0;
  std::size_t quarantine_bytes = 0;
  bool check_every_free = false;

  static constexpr Hardening secure() {
    Hardening h;
    h.guard_runs = true;
    h.guard_medium = true;
    h.random_slots = true;
    h.canary_bytes = 8;
    h.zero_on_free = true;
    h.quarantine_blocks = 256;
    h.quarantine_bytes = std::size_t{256} << 10;
    h.check_every_free = true;
    return h;
  }
};

inline constexpr Hardening kDefaultHardening{};

namespace internal {
template <class C>
consteval Hardening hardening_of_config() {
  if constexpr (requires { C::kHardening; }) {
    return C::kHardening;
  } else {
    return kDefaultHardening;
  }
}
}  // namespace internal

template <class C>
inline constexpr Hardening hardening_of = internal::hardening_of_config<C>();

// The guard page size the layouts reserve (the smallest page we run on; a
// platform with larger pages gets no guards: protect() would cover more).
inline constexpr std::size_t kGuardPageBytes = 4096;

}  // namespace hpcalloc
