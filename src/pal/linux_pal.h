// LinuxPal: the Pal contract (pal_concept.h) with Linux system calls.
// Every mapping is private, anonymous and MAP_NORESERVE: address space is
// cheap and the allocator reserves far more than it touches, so swap space is
// not charged up front and pages only cost memory once touched. Never calls
// malloc (it runs inside malloc), and is thread-safe because it holds nothing
// mutable: page size and topology are read once, in the constructor.
//
// errno: a function that fails leaves errno as the failing system call set it
// (EINVAL for a node id it rejects itself); the caller decides what to
// report. Functions that succeed may change errno, like system calls do.
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "base/base.h"
#include "base/process_info.h"
#include "base/report.h"
#include "pal/linux_topology.h"
#include "pal/pal_concept.h"

namespace hpcalloc {

class LinuxPal {
 public:
  LinuxPal() : page_size_(os_page_size()) { read_topology(&topology_); }
  LinuxPal(const LinuxPal&) = delete;
  LinuxPal& operator=(const LinuxPal&) = delete;

  std::size_t page_size() const { return page_size_; }

  // Over-maps by align - page_size() and unmaps the misaligned head and the
  // tail, so the block is aligned without relying on the kernel's placement.
  // Trimming the ends of one fresh mapping cannot split it, so the trims do
  // not fail in practice; if one does, everything is unmapped and nullptr
  // returned with the trim's errno. nullptr with ENOMEM when size + align
  // overflows.
  void* reserve(std::size_t size, std::size_t align) {
    HPCALLOC_ASSERT(is_pow2(align) && align >= page_size_ && is_aligned(size, page_size_));
    if (align <= page_size_) return map_anonymous(size);
    std::size_t span = 0;
    if (!checked_add(size, align - page_size_, &span)) {
      errno = ENOMEM;
      return nullptr;
    }
    char* raw = static_cast<char*>(map_anonymous(span));
    if (raw == nullptr) return nullptr;
    char* start = raw + (align_up(reinterpret_cast<std::uintptr_t>(raw), align) -
                         reinterpret_cast<std::uintptr_t>(raw));
    const std::size_t head = static_cast<std::size_t>(start - raw);
    const std::size_t tail = span - head - size;
    if (head != 0 && ::munmap(raw, head) != 0) return unmap_and_fail(raw, span);
    if (tail != 0 && ::munmap(start + size, tail) != 0) return unmap_and_fail(start, size + tail);
    return start;
  }

  // munmap. false with munmap's errno (EINVAL for a bad range; ENOMEM when
  // unmapping the middle of a mapping would exceed vm.max_map_count).
  bool release(void* p, std::size_t size) { return ::munmap(p, size) == 0; }

  // MADV_DONTNEED, not MADV_FREE: on private anonymous memory DONTNEED drops
  // the pages at once and guarantees they read as zeros when touched again,
  // which the contract (and calloc on reused memory) relies on. MADV_FREE
  // would let the kernel hand the old contents back.
  bool decommit(void* p, std::size_t size) { return ::madvise(p, size, MADV_DONTNEED) == 0; }

  // Nothing to do: decommit leaves the range mapped read-write, and with
  // MAP_NORESERVE no commit charge was given back, so touched pages simply
  // fault back in, zero-filled. (A PROT_NONE decommit would need mprotect
  // here, and would split mappings.) Never fails.
  bool commit(void* /*p*/, std::size_t /*size*/) { return true; }

  bool protect(void* p, std::size_t size, bool accessible) {
    return ::mprotect(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
  }

  // VM_HUGEPAGE / VM_NOHUGEPAGE are flags of the kernel mapping: advising
  // part of one splits it, so callers advise whole mappings.
  bool advise_huge_pages(void* p, std::size_t size, bool huge) {
    return ::madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
  }

  // mincore, one vector of kResidencyChunk pages at a time (on the stack:
  // this never allocates). A chunk mincore refuses (ENOMEM: part of it is
  // not mapped, say a range another thread just unmapped) is asked page by
  // page, so its mapped pages still count.
  std::size_t resident_bytes(const void* p, std::size_t size) const {
    std::size_t resident = 0;
    char* const start = static_cast<char*>(const_cast<void*>(p));
    for (std::size_t offset = 0; offset < size; offset += kResidencyChunk * page_size_) {
      const std::size_t left = size - offset;
      const std::size_t chunk =
          left < kResidencyChunk * page_size_ ? left : kResidencyChunk * page_size_;
      unsigned char vector[kResidencyChunk];
      if (::mincore(start + offset, chunk, vector) == 0) {
        for (std::size_t i = 0; i < chunk / page_size_; ++i)
          resident += (vector[i] & 1U) * page_size_;
        continue;
      }
      for (std::size_t page = 0; page < chunk; page += page_size_) {
        if (::mincore(start + offset + page, page_size_, vector) == 0 && (vector[0] & 1U) != 0) {
          resident += page_size_;
        }
      }
    }
    return resident;
  }

  // mremap without MREMAP_MAYMOVE. Shrinking unmaps the tail and always
  // works on a valid range. Growing needs the address space after the block
  // free (else ENOMEM, mapping unchanged). The kernel grows one kernel
  // mapping only (EFAULT for more); a range of several (pages moved in from
  // elsewhere, as MemorySource reuses cached pages; parts of a block bound
  // to different policies) grows by growing its last one, which holds its
  // last page. New pages are zero and inherit that mapping's NUMA policy.
  bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) {
    if (::mremap(p, old_size, new_size, 0) != MAP_FAILED) return true;
    if (errno != EFAULT || new_size <= old_size) return false;
    char* const last = static_cast<char*>(p) + old_size - page_size_;
    return ::mremap(last, page_size_, page_size_ + new_size - old_size, 0) != MAP_FAILED;
  }

  // mremap(MREMAP_MAYMOVE | MREMAP_FIXED) onto target, which atomically
  // replaces the reservation there; page tables move, contents are not
  // copied, the NUMA policy moves with the pages. When shrinking, only the
  // first new_size bytes are moved and the tail is unmapped afterwards, so a
  // failed move leaves the old range whole (the kernel would otherwise unmap
  // the tail before it knows whether the move can succeed). Older kernels
  // (Debian 12's 6.1 among them) also unmap the target before checking the
  // source; a failure there is repaired by mapping the target again
  // (zero-filled, as reserve gave it).
  // false with mremap's errno (EFAULT when the source is not one mapping,
  // ENOMEM at the vm.max_map_count limit).
  // A source of several kernel mappings (EFAULT) is moved one mapping at a
  // time (move_in_pieces); the target's tail past the moved bytes is then
  // the reservation's own zero pages.
  bool remap_move(void* p, std::size_t old_size, std::size_t new_size, void* target) {
    const std::size_t moved = old_size < new_size ? old_size : new_size;
    if (::mremap(p, moved, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) {
      restore_target(target, new_size);
      if (errno != EFAULT ||
          !move_in_pieces(static_cast<char*>(p), static_cast<char*>(target), moved)) {
        return false;
      }
    }
    // The tail is a whole mapping of its own now, so unmapping it cannot
    // split anything; the move has happened either way, so report success.
    if (old_size > new_size) ::munmap(static_cast<char*>(p) + new_size, old_size - new_size);
    return true;
  }

  // Moves [from, from+size) to `to` one kernel mapping at a time: the
  // longest prefix the kernel accepts, halving on EFAULT (a prefix that
  // runs into the next mapping: kernels before 6.17 move one mapping per
  // call), so a few calls per mapping. A failure half-way moves the pieces
  // back and restores the target: false, both unchanged, errno kept.
  // `move(from, to, size)` is one mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of
  // an unresized piece (a test passes one that acts as an older kernel).
  template <class Move>
  bool move_in_pieces(char* from, char* to, std::size_t size, Move&& move) const {
    std::size_t done = 0;
    while (done < size) {
      const std::size_t chunk = move_prefix(from + done, to + done, size - done, move);
      if (chunk == 0) {
        const int error = errno;
        if (done != 0) {
          for (std::size_t back = 0; back < done;) {
            const std::size_t piece = move_prefix(to + back, from + back, done - back, move);
            if (piece == 0) fatal("mremap could not move a block's pages back after a failed move");
            back += piece;
          }
        }
        restore_target(to, done);
        errno = error;
        return false;
      }
      done += chunk;
    }
    return true;
  }
  bool move_in_pieces(char* from, char* to, std::size_t size) const {
    return move_in_pieces(from, to, size, [](char* f, char* t, std::size_t n) {
      return ::mremap(f, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, t) != MAP_FAILED;
    });
  }

  // mbind(2) through the raw system call (no libnuma: its constructor
  // allocates). Policies apply to pages faulted after the call; pages already
  // touched are not migrated (no MPOL_MF_MOVE).
  //   kOff         no call, true.
  //   kFirstTouch  MPOL_DEFAULT: clears any earlier policy of the range (a
  //                recycled segment may carry one) and defers to the task
  //                policy, which is local allocation unless the user chose
  //                otherwise with numactl or set_mempolicy; MPOL_LOCAL would
  //                override that choice. `node` is ignored. When mbind is
  //                unavailable (ENOSYS: a kernel without NUMA; EPERM: a
  //                seccomp filter, as Docker's default) no range can carry
  //                another policy, so first touch holds: true, errno restored.
  //   kPreferred   MPOL_PREFERRED on {node}.
  //   kBind        MPOL_BIND on {node}.
  // false with EINVAL for a node outside [0, Topology::kMaxNodes) or one the
  // kernel does not have; other errors as mbind sets them.
  bool bind(void* p, std::size_t size, int node, NumaPolicy policy) {
    switch (policy) {
      case NumaPolicy::kOff: return true;
      case NumaPolicy::kFirstTouch: {
        const int saved_errno = errno;
        if (mbind(p, size, kMpolDefault, nullptr, 0) == 0) return true;
        if (errno != ENOSYS && errno != EPERM) return false;
        errno = saved_errno;
        return true;
      }
      case NumaPolicy::kPreferred:
      case NumaPolicy::kBind: break;
    }
    if (node < 0 || static_cast<unsigned>(node) >= Topology::kMaxNodes) {
      errno = EINVAL;
      return false;
    }
    const int mode = policy == NumaPolicy::kPreferred ? kMpolPreferred : kMpolBind;
    return mbind_node(p, size, mode, node, 0);
  }

  // mbind(2) with MPOL_MF_MOVE: the kernel migrates the range's pages that
  // are mapped only by this process (shared pages stay), then the policy
  // (MPOL_BIND for kBind, else MPOL_PREFERRED) places later faults. EIO when
  // some pages could not be moved (they stay where they were).
  bool migrate(void* p, std::size_t size, int node, NumaPolicy policy) {
    if (node < 0 || static_cast<unsigned>(node) >= Topology::kMaxNodes) {
      errno = EINVAL;
      return false;
    }
    const int mode = policy == NumaPolicy::kBind ? kMpolBind : kMpolPreferred;
    return mbind_node(p, size, mode, node, kMpolMfMove);
  }

  const Topology& topology() const { return topology_; }

  // getcpu(2) (a vDSO call would be faster, but this runs when a heap is
  // created or rebound, not per allocation). 0 when the call fails or names a
  // node the topology read at construction does not know, so the result can
  // always index per-node arrays of topology().node_count entries.
  int current_node() {
    unsigned cpu = 0;
    unsigned node = 0;
    if (::syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) return 0;
    return node < topology_.node_count ? static_cast<int>(node) : 0;
  }

  // CLOCK_MONOTONIC_COARSE: served by the vDSO from the last timer tick
  // (a few ms of resolution, a few ns to read), which is all decay needs.
  // A kernel without it falls back to CLOCK_MONOTONIC; without either, 0
  // (time stands still: nothing decays, which is safe).
  std::uint64_t now_ms() const {
    timespec t{};
    if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &t) != 0 &&
        ::clock_gettime(CLOCK_MONOTONIC, &t) != 0) {
      return 0;
    }
    return static_cast<std::uint64_t>(t.tv_sec) * 1000 +
           static_cast<std::uint64_t>(t.tv_nsec) / 1000000;
  }

 private:
  // From <linux/mempolicy.h>, which we do not include to stay independent of
  // the kernel headers' version; these values are ABI.
  static constexpr std::size_t kResidencyChunk = 512;  // pages per mincore call
  static constexpr int kMpolDefault = 0;
  static constexpr int kMpolPreferred = 1;
  static constexpr int kMpolBind = 2;
  static constexpr unsigned kMpolMfMove = 1U << 1;  // MPOL_MF_MOVE
  static constexpr unsigned kBitsPerWord = 8 * sizeof(unsigned long);
  static constexpr unsigned kMaskWords = (Topology::kMaxNodes + kBitsPerWord - 1) / kBitsPerWord;

  static constexpr int kMapFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

  static void* map_anonymous(std::size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, kMapFlags, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }

  static void* unmap_and_fail(void* p, std::size_t size) {
    const int saved_errno = errno;
    ::munmap(p, size);
    errno = saved_errno;
    return nullptr;
  }

  // mbind to the single node `node` (in [0, kMaxNodes)). The kernel reads
  // maxnode - 1 bits (a historical off-by-one that libnuma also compensates
  // for), hence the + 1.
  static bool mbind_node(void* p, std::size_t size, int mode, int node, unsigned flags) {
    unsigned long mask[kMaskWords] = {};
    const auto bit = static_cast<unsigned>(node);
    mask[bit / kBitsPerWord] = 1UL << (bit % kBitsPerWord);
    return mbind(p, size, mode, mask, Topology::kMaxNodes + 1, flags) == 0;
  }

  static long mbind(void* p, std::size_t size, int mode, const unsigned long* mask,
                    unsigned long max_node, unsigned flags = 0) {
    return ::syscall(SYS_mbind, p, size, mode, mask, max_node, flags);
  }

  // The longest prefix of [from, from+size) that `move` moves to `to`, by
  // halving on EFAULT; 0 (errno set) when not even one page moves.
  template <class Move>
  std::size_t move_prefix(char* from, char* to, std::size_t size, Move& move) const {
    for (std::size_t chunk = size;;) {
      if (move(from, to, chunk)) return chunk;
      const int error = errno;
      restore_target(to, chunk);  // an older kernel may have unmapped it
      if (error != EFAULT || chunk == page_size_) {
        errno = error;
        return 0;
      }
      chunk = align_down(chunk / 2, page_size_);
      if (chunk == 0) chunk = page_size_;
    }
  }

  // MAP_FIXED_NOREPLACE maps only if the whole range is free, so this is a
  // no-op (EEXIST) when the failed mremap left the target in place, and it
  // never clobbers a mapping another thread made there meanwhile. Kernels
  // before 4.17 take the flag as a hint; a mapping placed elsewhere is undone.
  static void restore_target(void* target, std::size_t size) {
    const int saved_errno = errno;
    void* q = ::mmap(target, size, PROT_READ | PROT_WRITE, kMapFlags | MAP_FIXED_NOREPLACE, -1, 0);
    if (q != MAP_FAILED && q != target) ::munmap(q, size);
    errno = saved_errno;
  }

  std::size_t page_size_;
  Topology topology_;
};

static_assert(Pal<LinuxPal>);

}  // namespace hpcalloc
