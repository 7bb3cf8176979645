// SimPal: a deterministic simulated platform for tests (DESIGN.md, layer 3).
// It maps one real region, the arena, at construction and carves every
// reserve() from it first-fit, lowest address first, over a table of pages,
// so the same sequence of calls yields the same offsets from arena_base() in
// every run and every instance (the base is aligned to the arena size rounded
// up to a power of two, so alignments up to that do not depend on where mmap
// put the arena; larger ones cannot be served deterministically anyway).
// It simulates K NUMA nodes (a page belongs to one node, see bind()), counts
// committed pages per node, and fails any call on demand (fail_after,
// fail_always). Test-only: it uses std::vector and std::mutex (every public
// function takes the mutex, so it is thread-safe), and is not in pal.h.
//
// Decisions callers must know:
// - page_size() is the real page size unless options.page_size names a larger
//   power of two (to exercise page-size-agnostic code); sizes and alignments
//   are then in those units.
// - Invariant: every free page of the arena reads as zeros (release, shrink
//   and move give pages back with MADV_DONTNEED), so reserve() returns zeros.
// - A page's node: the current_node() of the thread that reserved it (first
//   touch, as the kernel's default policy would place it), replaced by bind():
//   kPreferred/kBind -> `node`, kFirstTouch -> the binding thread's current
//   node. Nodes take effect at once, as if nothing had been touched yet.
// - current_node() is per thread: set_current_node() sets it for the calling
//   thread; threads that never set one are on node 0.
// - Failures: a failing call changes nothing but its counters and errno:
//   injected ones set ENOMEM; natural ones set ENOMEM (arena exhausted, no
//   room to grow in place) or EINVAL (bind to a node outside [0, K)).
//   Injection is decided before the call looks at whether it could succeed.
//   bind(kOff) is answered before the simulated OS, as LinuxPal answers it
//   without a system call: never counted, never failed.
// - Contract violations (unaligned or zero sizes, ranges outside the arena,
//   pages not reserved, overlapping move) are bugs in the caller: fatal().
// - Not simulated: Linux refusing to grow a block that partial binds split
//   into several kernel mappings (see LinuxPal::remap_in_place).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "base/base.h"
#include "pal/pal_concept.h"

namespace hpcalloc {

enum class PalCall : std::uint8_t {
  kReserve,
  kRelease,
  kDecommit,
  kCommit,
  kRemapInPlace,
  kRemapMove,
  kBind,
  kMigrate,
  kProtect,
  kAdviseHugePages,
  kCount,
};

struct SimPalOptions {
  std::size_t arena_size = std::size_t{256} << 20;  // rounded up to page_size
  std::size_t page_size = 0;      // 0: the real page size; else a power of two >= it
  unsigned node_count = 1;        // K, 1..Topology::kMaxNodes
  unsigned cpus_per_node = 1;     // cpu c is on node c / cpus_per_node
  std::uint64_t start_ms = 1000;  // now_ms() until advance_ms() moves it
};

struct PalCallStats {
  std::uint64_t calls = 0;     // every call that reached the simulation
  std::uint64_t failures = 0;  // calls that failed, injected or natural
  std::uint64_t injected = 0;  // the failures that fail_after/fail_always caused
  std::uint64_t bytes = 0;     // sizes of the successful calls (new_size for remaps)
  friend bool operator==(const PalCallStats&, const PalCallStats&) = default;
};

// The simulated state of one page.
struct SimPageInfo {
  bool reserved = false;
  bool committed = false;
  std::uint8_t node = 0;                 // see the top comment
  NumaPolicy policy = NumaPolicy::kOff;  // kOff: never bound
  bool guarded = false;                  // protect(.., false): recorded, not enforced
  std::int8_t huge_advice = 0;           // advise_huge_pages: 1 huge, -1 not, 0 never advised
  friend bool operator==(const SimPageInfo&, const SimPageInfo&) = default;
};

class SimPal {
 public:
  explicit SimPal(const SimPalOptions& options = {}) {
    const auto real_page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    page_size_ = options.page_size == 0 ? real_page : options.page_size;
    if (!is_pow2(page_size_) || page_size_ < real_page) {
      fatal("SimPal: page_size must be 0 or a power of two >= the real page size");
    }
    if (options.node_count < 1 || options.node_count > Topology::kMaxNodes ||
        options.cpus_per_node < 1 ||
        options.cpus_per_node > Topology::kMaxCpus / options.node_count) {
      fatal("SimPal: need 1..kMaxNodes nodes and 1..kMaxCpus cpus in all");
    }
    if (options.arena_size == 0 || options.arena_size > (std::size_t{1} << 46) ||
        !checked_align_up(options.arena_size, page_size_, &arena_size_)) {
      fatal("SimPal: arena size must be in [1, 64 TiB]");
    }
    const std::size_t base_align = round_up_pow2(arena_size_);
    raw_size_ = arena_size_ + base_align;
    raw_ = ::mmap(nullptr, raw_size_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw_ == MAP_FAILED) fatal("SimPal: cannot map the arena");
    const auto raw = reinterpret_cast<std::uintptr_t>(raw_);
    base_ = static_cast<char*>(raw_) + (align_up(raw, base_align) - raw);
    pages_.assign(arena_size_ / page_size_, Page{});
    topology_.node_count = options.node_count;
    topology_.cpu_count = options.node_count * options.cpus_per_node;
    for (unsigned cpu = 0; cpu < topology_.cpu_count; ++cpu) {
      topology_.cpu_node[cpu] = static_cast<std::uint8_t>(cpu / options.cpus_per_node);
    }
    clock_ms_.store(options.start_ms, std::memory_order_relaxed);
  }
  ~SimPal() { ::munmap(raw_, raw_size_); }
  SimPal(const SimPal&) = delete;
  SimPal& operator=(const SimPal&) = delete;

  // ---- The Pal contract (pal_concept.h) ----

  std::size_t page_size() const { return page_size_; }

  void* reserve(std::size_t size, std::size_t align) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!is_pow2(align) || align < page_size_) violation("reserve", nullptr, size, "bad alignment");
    check_size("reserve", nullptr, size);
    if (begin_call(PalCall::kReserve)) return nullptr;
    const std::size_t first = find_free(size / page_size_, align);
    if (first == kNotFound) {
      fail(PalCall::kReserve, ENOMEM);
      return nullptr;
    }
    const Page fresh{true, true, caller_node(), NumaPolicy::kOff};
    for (std::size_t i = first; i < first + size / page_size_; ++i) assign(i, fresh);
    stats_[index(PalCall::kReserve)].bytes += size;
    return page_address(first);
  }

  bool release(void* p, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("release", p, size);
    if (begin_call(PalCall::kRelease)) return false;
    free_pages(first, size / page_size_);
    return succeed(PalCall::kRelease, size);
  }

  bool decommit(void* p, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("decommit", p, size);
    if (begin_call(PalCall::kDecommit)) return false;
    zero_pages(first, size / page_size_);
    set_committed(first, size / page_size_, false);
    return succeed(PalCall::kDecommit, size);
  }

  bool commit(void* p, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("commit", p, size);
    if (begin_call(PalCall::kCommit)) return false;
    set_committed(first, size / page_size_, true);
    return succeed(PalCall::kCommit, size);
  }

  // Shrinking always works. Growing works when the pages after the block are
  // inside the arena and free; they are committed, zero, and inherit the node
  // and policy of the block's last page (as a grown Linux mapping keeps its
  // policy).
  bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("remap_in_place", p, old_size);
    check_size("remap_in_place", p, new_size);
    if (begin_call(PalCall::kRemapInPlace)) return false;
    const std::size_t old_pages = old_size / page_size_;
    const std::size_t new_pages = new_size / page_size_;
    if (new_pages < old_pages) free_pages(first + new_pages, old_pages - new_pages);
    if (new_pages > old_pages) {
      if (new_pages > pages_.size() - first) return fail(PalCall::kRemapInPlace, ENOMEM);
      for (std::size_t i = first + old_pages; i < first + new_pages; ++i) {
        if (pages_[i].reserved) return fail(PalCall::kRemapInPlace, ENOMEM);
      }
      Page grown = pages_[first + old_pages - 1];
      grown.committed = true;
      for (std::size_t i = first + old_pages; i < first + new_pages; ++i) assign(i, grown);
    }
    return succeed(PalCall::kRemapInPlace, new_size);
  }

  // A simulation: the contents are copied (memcpy), pages keep their node,
  // policy and committed state, pages beyond old_size are zero and inherit
  // from the last old page, and the old range is freed.
  bool remap_move(void* p, std::size_t old_size, std::size_t new_size, void* target) {
    const bool moved = remap_move_locked(p, old_size, new_size, target);
    // Outside the lock: the observer may call the platform itself.
    if (moved && after_remap_move_ != nullptr) after_remap_move_(after_remap_move_context_, p);
    return moved;
  }
  // Called after every successful remap_move with the range it freed: what
  // another thread could see the moment the kernel may reuse that range
  // (tests of the bookkeeping around a move). nullptr: none.
  void set_after_remap_move(void (*observer)(void* context, void* freed), void* context) {
    after_remap_move_ = observer;
    after_remap_move_context_ = context;
  }

 private:
  bool remap_move_locked(void* p, std::size_t old_size, std::size_t new_size, void* target) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t from = reserved_range("remap_move", p, old_size);
    const std::size_t to = reserved_range("remap_move target", target, new_size);
    const std::size_t old_pages = old_size / page_size_;
    const std::size_t new_pages = new_size / page_size_;
    if (from < to + new_pages && to < from + old_pages) {
      violation("remap_move", p, old_size, "source and target overlap");
    }
    if (begin_call(PalCall::kRemapMove)) return false;
    const std::size_t moved = old_pages < new_pages ? old_pages : new_pages;
    std::memcpy(page_address(to), page_address(from), moved * page_size_);
    if (new_pages > moved) zero_pages(to + moved, new_pages - moved);
    for (std::size_t i = 0; i < new_pages; ++i) {
      Page next = pages_[from + (i < old_pages ? i : old_pages - 1)];
      if (i >= old_pages) next.committed = true;
      assign(to + i, next);
    }
    free_pages(from, old_pages);
    return succeed(PalCall::kRemapMove, new_size);
  }

 public:
  bool bind(void* p, std::size_t size, int node, NumaPolicy policy) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("bind", p, size);
    if (policy == NumaPolicy::kOff) return true;
    if (begin_call(PalCall::kBind)) return false;
    if (policy != NumaPolicy::kFirstTouch &&
        (node < 0 || static_cast<unsigned>(node) >= topology_.node_count)) {
      return fail(PalCall::kBind, EINVAL);
    }
    const std::uint8_t placed =
        policy == NumaPolicy::kFirstTouch ? caller_node() : static_cast<std::uint8_t>(node);
    for (std::size_t i = first; i < first + size / page_size_; ++i) {
      Page next = pages_[i];
      next.node = placed;
      next.policy = policy;
      assign(i, next);
    }
    return succeed(PalCall::kBind, size);
  }

  // Every page of the range goes to `node` at once (committed or not), with
  // kBind or kPreferred as its policy (see LinuxPal::migrate).
  bool migrate(void* p, std::size_t size, int node, NumaPolicy policy) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("migrate", p, size);
    if (begin_call(PalCall::kMigrate)) return false;
    if (node < 0 || static_cast<unsigned>(node) >= topology_.node_count) {
      return fail(PalCall::kMigrate, EINVAL);
    }
    for (std::size_t i = first; i < first + size / page_size_; ++i) {
      Page next = pages_[i];
      next.node = static_cast<std::uint8_t>(node);
      next.policy = policy == NumaPolicy::kBind ? NumaPolicy::kBind : NumaPolicy::kPreferred;
      assign(i, next);
    }
    return succeed(PalCall::kMigrate, size);
  }

  // Recorded per page (page_info().guarded), not enforced: the arena stays
  // readable and writable, so the simulation's own copies (remap_move) and
  // zeroing (decommit) never fault; a test asserts where guards are.
  bool protect(void* p, std::size_t size, bool accessible) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("protect", p, size);
    if (begin_call(PalCall::kProtect)) return false;
    for (std::size_t i = first; i < first + size / page_size_; ++i) {
      Page next = pages_[i];
      next.guarded = !accessible;
      assign(i, next);
    }
    return succeed(PalCall::kProtect, size);
  }

  // Recorded per page (page_info().huge_advice); the simulation has no
  // huge pages.
  bool advise_huge_pages(void* p, std::size_t size, bool huge) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t first = reserved_range("advise_huge_pages", p, size);
    if (begin_call(PalCall::kAdviseHugePages)) return false;
    for (std::size_t i = first; i < first + size / page_size_; ++i) {
      Page next = pages_[i];
      next.huge_advice = huge ? 1 : -1;
      assign(i, next);
    }
    return succeed(PalCall::kAdviseHugePages, size);
  }

  const Topology& topology() const { return topology_; }

  int current_node() {
    std::lock_guard<std::mutex> lock(mutex_);
    return caller_node();
  }

  // The simulated clock: starts at options.start_ms and moves only when a
  // test calls advance_ms(), so decay is tested to the millisecond. Not
  // under the mutex: an atomic, read on slow paths by any thread.
  std::uint64_t now_ms() const { return clock_ms_.load(std::memory_order_relaxed); }

  // ---- Test controls ----

  // Moves the simulated clock forward (any thread).
  void advance_ms(std::uint64_t ms) { clock_ms_.fetch_add(ms, std::memory_order_relaxed); }

  // The calling thread is on `node` (in [0, K)) from now on.
  void set_current_node(int node) {
    if (node < 0 || static_cast<unsigned>(node) >= topology_.node_count) {
      fatal("SimPal: set_current_node outside [0, node_count)");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const std::thread::id self = std::this_thread::get_id();
    for (auto& [thread, thread_node] : thread_nodes_) {
      if (thread == self) {
        thread_node = static_cast<std::uint8_t>(node);
        return;
      }
    }
    thread_nodes_.emplace_back(self, static_cast<std::uint8_t>(node));
  }

  // The next `successes_before_failure` calls of that kind are not failed by
  // injection, then `failures` calls fail; after that, none. Replaces any
  // earlier schedule of that kind; fail_after(call, 0, 0) cancels it.
  void fail_after(PalCall call, unsigned successes_before_failure, unsigned failures = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    injections_[index(call)].successes = successes_before_failure;
    injections_[index(call)].failures = failures;
  }

  // Every call of that kind fails while on (takes precedence over fail_after).
  void fail_always(PalCall call, bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    injections_[index(call)].always = on;
  }

  // The committed pages of the range (SimPal has no notion of a touch:
  // what is reserved and not decommitted counts); pages outside the arena
  // or not reserved count as not resident.
  std::size_t resident_bytes(const void* p, std::size_t size) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t offset = offset_of(p);
    if (offset >= arena_size_) return 0;
    const std::size_t end = size < arena_size_ - offset ? offset + size : arena_size_;
    std::size_t pages = 0;
    for (std::size_t page = offset / page_size_; page < end / page_size_; ++page) {
      pages += pages_[page].reserved && pages_[page].committed ? 1 : 0;
    }
    return pages * page_size_;
  }

  // ---- Observers ----

  PalCallStats stats(PalCall call) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_[index(call)];
  }
  std::size_t reserved_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reserved_pages_ * page_size_;
  }
  std::size_t committed_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t pages = 0;
    for (std::size_t node_pages : committed_pages_) pages += node_pages;
    return pages * page_size_;
  }
  // Committed pages whose node is `node` (see the top comment), in bytes.
  std::size_t committed_bytes_on_node(int node) const {
    if (node < 0 || static_cast<unsigned>(node) >= topology_.node_count) return 0;
    std::lock_guard<std::mutex> lock(mutex_);
    return committed_pages_[static_cast<unsigned>(node)] * page_size_;
  }
  // The state of the page holding p, which must lie inside the arena.
  SimPageInfo page_info(const void* p) const {
    const std::size_t offset = offset_of(p);
    if (offset >= arena_size_) violation("page_info", p, 0, "outside the arena");
    std::lock_guard<std::mutex> lock(mutex_);
    return pages_[offset / page_size_];
  }
  const void* arena_base() const { return base_; }
  std::size_t arena_size() const { return arena_size_; }
  // p's distance from arena_base() (wraps to a huge value below the base).
  std::size_t offset_of(const void* p) const {
    return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(base_);
  }

 private:
  using Page = SimPageInfo;
  struct Injection {
    unsigned successes = 0;
    unsigned failures = 0;
    bool always = false;
  };
  static constexpr std::size_t kNotFound = SIZE_MAX;
  static constexpr std::size_t kCalls = static_cast<std::size_t>(PalCall::kCount);

  static constexpr std::size_t index(PalCall call) { return static_cast<std::size_t>(call); }

  [[noreturn]] static void violation(const char* what, const void* p, std::size_t size,
                                     const char* why) {
    ReportLine line;
    line.text("SimPal: ").text(what).text("(").ptr(p).text(", ").dec(size).text("): ").text(why);
    fatal(line);
  }

  void check_size(const char* what, const void* p, std::size_t size) const {
    if (size == 0 || !is_aligned(size, page_size_)) {
      violation(what, p, size, "size is not a non-zero multiple of page_size()");
    }
  }

  std::size_t page_index(const char* what, const void* p, std::size_t size) const {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const auto base = reinterpret_cast<std::uintptr_t>(base_);
    if (address < base || address - base >= arena_size_ || size > arena_size_ - (address - base)) {
      violation(what, p, size, "range outside the arena");
    }
    if (!is_aligned(address, page_size_)) violation(what, p, size, "unaligned address");
    return (address - base) / page_size_;
  }

  // Checks that [p, p+size) is a valid range of reserved pages; its first page.
  std::size_t reserved_range(const char* what, const void* p, std::size_t size) const {
    check_size(what, p, size);
    const std::size_t first = page_index(what, p, size);
    for (std::size_t i = first; i < first + size / page_size_; ++i) {
      if (!pages_[i].reserved) violation(what, p, size, "pages not reserved");
    }
    return first;
  }

  char* page_address(std::size_t page) const { return base_ + page * page_size_; }

  // Counts the call, then applies the injection schedule: true (with errno
  // and counters set) when this call must fail.
  bool begin_call(PalCall call) {
    ++stats_[index(call)].calls;
    Injection& injection = injections_[index(call)];
    bool inject = injection.always;
    if (!inject && injection.failures != 0) {
      if (injection.successes != 0) {
        --injection.successes;
      } else {
        --injection.failures;
        inject = true;
      }
    }
    if (!inject) return false;
    ++stats_[index(call)].injected;
    fail(call, ENOMEM);
    return true;
  }

  bool fail(PalCall call, int error) {
    ++stats_[index(call)].failures;
    errno = error;
    return false;
  }

  bool succeed(PalCall call, std::size_t bytes) {
    stats_[index(call)].bytes += bytes;
    return true;
  }

  std::uint8_t caller_node() const {
    const std::thread::id self = std::this_thread::get_id();
    for (const auto& [thread, node] : thread_nodes_) {
      if (thread == self) return node;
    }
    return 0;
  }

  // First fit, lowest address first; on a conflict, jumps to the first
  // aligned page after the highest reserved page of the candidate.
  std::size_t find_free(std::size_t count, std::size_t align) const {
    const auto base = reinterpret_cast<std::uintptr_t>(base_);
    std::size_t first = (align_up(base, align) - base) / page_size_;
    while (first < pages_.size() && count <= pages_.size() - first) {
      std::size_t last = first + count;
      while (last > first && !pages_[last - 1].reserved) --last;
      if (last == first) return first;
      first = (align_up(base + last * page_size_, align) - base) / page_size_;
    }
    return kNotFound;
  }

  // Moves page i to `next`, keeping the counters in step.
  void assign(std::size_t i, Page next) {
    Page& page = pages_[i];
    if (page.reserved) {
      --reserved_pages_;
      if (page.committed) --committed_pages_[page.node];
    }
    if (next.reserved) {
      ++reserved_pages_;
      if (next.committed) ++committed_pages_[next.node];
    }
    page = next;
  }

  void set_committed(std::size_t first, std::size_t count, bool committed) {
    for (std::size_t i = first; i < first + count; ++i) {
      Page next = pages_[i];
      next.committed = committed;
      assign(i, next);
    }
  }

  void zero_pages(std::size_t first, std::size_t count) {
    if (::madvise(page_address(first), count * page_size_, MADV_DONTNEED) != 0) {
      fatal("SimPal: madvise(MADV_DONTNEED) failed on the arena");
    }
  }

  void free_pages(std::size_t first, std::size_t count) {
    zero_pages(first, count);
    for (std::size_t i = first; i < first + count; ++i) assign(i, Page{});
  }

  std::size_t page_size_ = 0;
  std::size_t arena_size_ = 0;
  void* raw_ = nullptr;
  std::size_t raw_size_ = 0;
  char* base_ = nullptr;
  Topology topology_;
  std::atomic<std::uint64_t> clock_ms_{0};

  mutable std::mutex mutex_;  // guards everything below
  std::vector<Page> pages_;
  std::size_t reserved_pages_ = 0;
  std::size_t committed_pages_[Topology::kMaxNodes] = {};
  std::vector<std::pair<std::thread::id, std::uint8_t>> thread_nodes_;
  Injection injections_[kCalls] = {};
  void (*after_remap_move_)(void* context, void* freed) = nullptr;
  void* after_remap_move_context_ = nullptr;
  PalCallStats stats_[kCalls] = {};
};

static_assert(Pal<SimPal>);

}  // namespace hpcalloc
