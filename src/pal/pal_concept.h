// The platform contract. Every OS call the allocator makes goes through a Pal
// object; LinuxPal makes the system calls, SimPal simulates them
// deterministically (its own address space, K NUMA nodes, injected failures).
// A Pal is an object, passed by reference to whoever needs it, so a test can
// build a private one. All sizes and addresses are multiples of page_size()
// unless stated. No function allocates with malloc, and all are thread-safe.
//
// Contracts:
//   page_size()            the OS page size (a power of two).
//   reserve(size, align)   maps `size` bytes at an address aligned to `align`
//                          (a power of two >= page_size()): readable,
//                          writable, zero-filled, physical pages supplied on
//                          first touch. nullptr on failure, with nothing left
//                          mapped. Counts as committed.
//   release(p, size)       unmaps [p, p+size), a range (or a trimmed
//                          sub-range) of what reserve returned. false on
//                          failure; the range then stays mapped.
//   decommit(p, size)      gives the physical pages of [p, p+size) back to the
//                          OS; the range stays mapped and usable and reads as
//                          zeros when touched again. false on failure (pages
//                          and contents unchanged).
//   commit(p, size)        declares a decommitted range in use again (Linux:
//                          no call, pages fault back in; SimPal: accounting
//                          and injectable failure). false on failure: the
//                          caller must not use the range.
//   remap_in_place(p, old_size, new_size)
//                          grows or shrinks the mapping at p without moving
//                          it; new pages read as zeros. false when it cannot
//                          (the address space after it is taken), with the
//                          mapping unchanged.
//   remap_move(p, old_size, new_size, target)
//                          moves the mapping at p to `target` (the start of a
//                          range of new_size bytes that reserve returned,
//                          which it replaces), resized to new_size, without
//                          copying pages; the first min(old, new) bytes are
//                          preserved and the old range is unmapped. false on
//                          failure, with both ranges unchanged.
//   protect(p, size, accessible)
//                          makes [p, p+size) inaccessible (any access
//                          faults: a guard page) or readable and writable
//                          again. false on failure (the protection is
//                          unchanged; Linux: the range is not all mapped, or
//                          the process has too many mappings).
//   bind(p, size, node, policy)
//                          applies a NUMA policy to the range (kOff: nothing).
//                          false on failure: the memory is still usable, only
//                          its placement is not guaranteed.
//   migrate(p, size, node, policy)
//                          moves the pages of the range already touched to
//                          `node` and binds the range there (kBind: MPOL_BIND,
//                          every other policy: MPOL_PREFERRED), so pages
//                          touched later land there too. false on failure:
//                          some pages may have moved, the memory is usable.
//   advise_huge_pages(p, size, huge)
//                          asks for transparent huge pages in the range
//                          (huge: MADV_HUGEPAGE) or rules them out
//                          (MADV_NOHUGEPAGE). A hint: false when the kernel
//                          has no THP, and nothing else changes.
//   resident_bytes(p, size)
//                          the bytes of [p, p+size) whose physical pages
//                          are resident now (Linux: mincore, so pages never
//                          touched or given back do not count; SimPal: the
//                          committed pages). Pages of the range that are not
//                          mapped count as not resident. A statistic's
//                          source: it may be stale as soon as it returns.
//   topology()             node count and cpu -> node map, read once at
//                          construction.
//   current_node()         the node of the CPU the calling thread is running
//                          on now (0 when unknown).
//   now_ms()               a monotonic clock in milliseconds, coarse (Linux:
//                          CLOCK_MONOTONIC_COARSE, a few ms of resolution,
//                          no system call) and cheap; read on slow paths
//                          only, to time the decay of free memory. Never
//                          goes backwards; its origin is arbitrary.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace hpcalloc {

enum class NumaPolicy : std::uint8_t {
  kOff,         // no binding call at all
  kFirstTouch,  // the kernel's default: pages land where first touched
  kPreferred,   // prefer the node, fall back to others when it is full
  kBind,        // only the node; allocation fails when it is full
};

struct Topology {
  static constexpr unsigned kMaxNodes = 64;
  static constexpr unsigned kMaxCpus = 1024;

  unsigned node_count = 1;  // >= 1
  unsigned cpu_count = 1;   // entries of cpu_node that are meaningful
  std::uint8_t cpu_node[kMaxCpus] = {};

  unsigned node_of_cpu(unsigned cpu) const { return cpu < cpu_count ? cpu_node[cpu] : 0; }
};

template <class P>
concept Pal = requires(P& pal, const P& const_pal, void* p, std::size_t n, int node) {
  { const_pal.page_size() } -> std::same_as<std::size_t>;
  { pal.reserve(n, n) } -> std::same_as<void*>;
  { pal.release(p, n) } -> std::same_as<bool>;
  { pal.decommit(p, n) } -> std::same_as<bool>;
  { pal.commit(p, n) } -> std::same_as<bool>;
  { pal.remap_in_place(p, n, n) } -> std::same_as<bool>;
  { pal.remap_move(p, n, n, p) } -> std::same_as<bool>;
  { pal.protect(p, n, true) } -> std::same_as<bool>;
  { pal.advise_huge_pages(p, n, true) } -> std::same_as<bool>;
  { const_pal.resident_bytes(p, n) } -> std::same_as<std::size_t>;
  { pal.bind(p, n, node, NumaPolicy::kBind) } -> std::same_as<bool>;
  { pal.migrate(p, n, node, NumaPolicy::kBind) } -> std::same_as<bool>;
  { const_pal.topology() } -> std::same_as<const Topology&>;
  { pal.current_node() } -> std::same_as<int>;
  { const_pal.now_ms() } -> std::same_as<std::uint64_t>;
};

}  // namespace hpcalloc
