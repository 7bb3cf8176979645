// The allocator's statistics, one row each in kStatistics: the name hpc_stat
// knows it by, what it means, where its value comes from and where the exit
// summary (HPCALLOC_STATS) shows it. Every consumer walks the table:
// HeapStats' sum and each ThreadHeap's published counters take the rows
// that name a HeapStats field (the heap counters), hpc_stat looks the names
// up, and print_stats (api/statistics.cpp) writes the summary lines and each
// heap's line from the rows in order, and print_stats_json the same figures
// as one JSON object (the rows' names as keys). So a new heap counter is a HeapStats
// field and its row (the static_asserts below catch a field without one); a
// new figure of the pool or the memory sources is a row over PoolCounts or
// SourceStats.
//
// Plain constexpr data and arithmetic: nothing here allocates.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "mem/heap_pool.h"      // PoolCounts
#include "mem/memory_source.h"  // SourceStats

namespace hpcalloc {

// One heap's counters as its owner last published them, or their sum over
// heaps. Every field is a heap counter, described by its kStatistics row.
struct HeapStats {
  std::size_t small_in_use = 0;
  std::size_t medium_in_use = 0;
  std::size_t huge_in_use = 0;
  std::size_t huge_blocks = 0;
  std::size_t requested = 0;
  std::size_t remote_pushed = 0;
  std::size_t remote_drained = 0;
  std::size_t small_segments = 0;
  std::size_t medium_segments = 0;

  std::size_t in_use() const { return small_in_use + medium_in_use + huge_in_use; }
  HeapStats& operator+=(const HeapStats& other);  // every heap counter (below the table)
};

// What the process-wide values are computed from.
struct ProcessStats {
  PoolCounts pool;
  HeapStats heaps;      // summed over every heap
  SourceStats sources;  // summed over every memory source
  std::size_t numa_nodes = 0;
  std::size_t heapless_remote_pushed = 0;  // frees sent by threads that have no heap
  std::size_t errors_reported = 0;         // misuse reports (all but the first need warn mode)
  std::size_t background_passes = 0;       // decay passes of the background thread
  std::size_t registry_bytes = 0;          // the registry's leaves
  // Pages of the registered mappings in RAM, plus the metadata: computed
  // only when asked for (mem/resident_bytes.h), else 0.
  std::size_t resident_bytes = 0;
};

struct Statistic {
  // Where the exit summary shows the process-wide value: `label`, the value
  // and `unit` are appended to summary line `line` (-1: not shown). Lines
  // are written in table order, so a row's line is never below an earlier
  // row's.
  struct SummarySlot {
    int line = -1;
    const char* label = "";
    const char* unit = "";
  };

  const char* name;  // hpc_stat's; nullptr: a per-heap figure only
  const char* description;
  // The value is the sum of the parts that are set.
  std::size_t HeapStats::*heap = nullptr;                   // a heap counter
  std::size_t (HeapStats::*heap_figure)() const = nullptr;  // derived from them
  std::size_t PoolCounts::*pool = nullptr;
  std::size_t SourceStats::*source = nullptr;
  std::size_t ProcessStats::*process = nullptr;
  SummarySlot summary = {};
  // Text before the value on each heap's summary line (rows with a heap
  // part only); nullptr: not shown there. Heap lines follow table order too.
  const char* heap_label = nullptr;
  // The key of the per-heap value in each heap's JSON object (rows with a
  // heap_label); nullptr: `name`.
  const char* heap_key = nullptr;

  constexpr const char* json_heap_key() const { return heap_key != nullptr ? heap_key : name; }
};

// In summary order. The segment counts sit after in_use_bytes because each
// heap's line shows them there.
inline constexpr Statistic kStatistics[] = {
    {.name = "heaps_created",
     .description = "heaps ever built (count)",
     .pool = &PoolCounts::created,
     .summary = {0, "heaps created "}},
    {.name = "heaps_live",
     .description = "heaps in use by a thread (count)",
     .pool = &PoolCounts::attached,
     .summary = {0, ", live "}},
    {.name = "heaps_pooled",
     .description = "heaps of exited threads, waiting for a new one (count)",
     .pool = &PoolCounts::pooled,
     .summary = {0, ", pooled "}},
    {.name = "heaps_abandoned",
     .description = "heaps attached to threads at a fork, never reused in the child (count)",
     .pool = &PoolCounts::abandoned,
     .summary = {0, ", abandoned at fork "}},

    {.name = "mapped_bytes",
     .description = "bytes mapped by the memory sources, caches included",
     .source = &SourceStats::mapped_bytes,
     .summary = {1, "bytes mapped "}},
    {.name = "resident_bytes",
     .description = "bytes of hpcalloc's memory in RAM now: its mappings' resident pages (mincore) "
                    "and its metadata",
     .process = &ProcessStats::resident_bytes,
     .summary = {1, " (resident ", ")"}},
    {.name = "metadata_bytes",
     .description = "bytes mapped for hpcalloc's own use: the heaps and the registry's tables",
     .pool = &PoolCounts::slab_bytes,
     .process = &ProcessStats::registry_bytes},
    {.name = "in_use_bytes",
     .description = "bytes of live blocks: small, medium and huge",
     .heap_figure = &HeapStats::in_use,
     .summary = {1, ", in use "},
     .heap_label = ": in use "},
    {.name = nullptr,
     .description = "segments holding a heap's small runs (count)",
     .heap = &HeapStats::small_segments,
     .heap_label = ", segments small ",
     .heap_key = "small_segments"},
    {.name = nullptr,
     .description = "segments holding a heap's medium chunks (count)",
     .heap = &HeapStats::medium_segments,
     .heap_label = " medium ",
     .heap_key = "medium_segments"},
    {.name = "small_in_use_bytes",
     .description = "bytes of small blocks handed out (as of each heap's last refill or flush)",
     .heap = &HeapStats::small_in_use,
     .summary = {1, " (small "}},
    {.name = "medium_in_use_bytes",
     .description = "bytes of medium chunks in use, their headers included",
     .heap = &HeapStats::medium_in_use,
     .summary = {1, ", medium "}},
    {.name = "huge_in_use_bytes",
     .description = "usable bytes of live huge blocks",
     .heap = &HeapStats::huge_in_use,
     .summary = {1, ", huge "}},
    {.name = "huge_blocks",
     .description = "live huge blocks (count)",
     .heap = &HeapStats::huge_blocks,
     .summary = {1, " in ", " blocks)"},
     .heap_label = ", huge blocks "},
    {.name = "cached_bytes",
     .description = "bytes of mappings in the memory sources' caches",
     .source = &SourceStats::cached_bytes,
     .summary = {1, ", cached "}},
    {.name = "cached_mappings",
     .description = "mappings in the memory sources' caches (count)",
     .source = &SourceStats::cached_mappings,
     .summary = {1, " in ", " mappings"}},
    {.name = "cached_resident_bytes",
     .description = "of the cached bytes, those whose pages are resident (not yet decayed)",
     .source = &SourceStats::cached_resident_bytes,
     .summary = {1, " (resident ", ")"}},

    {.name = "requested_bytes",
     .description = "bytes asked for by medium and huge requests, ever",
     .heap = &HeapStats::requested,
     .summary = {2, "requested (medium and huge) ", " bytes"}},
    {.name = "remote_frees_pushed",
     .description = "blocks freed by a thread to another thread's heap (count)",
     .heap = &HeapStats::remote_pushed,
     .process = &ProcessStats::heapless_remote_pushed,
     .summary = {2, "; remote frees pushed "},
     .heap_label = ", remote frees pushed "},
    {.name = "remote_frees_drained",
     .description = "blocks freed by other threads that their owning heap took back (count)",
     .heap = &HeapStats::remote_drained,
     .summary = {2, ", drained "},
     .heap_label = ", drained "},

    {.name = "os_reserves",
     .description = "mappings taken from the OS (count)",
     .source = &SourceStats::os_reserves,
     .summary = {3, "os reserves "}},
    {.name = "os_releases",
     .description = "mappings or tails given back to the OS (count)",
     .source = &SourceStats::os_releases,
     .summary = {3, ", releases "}},
    {.name = "cache_hits",
     .description = "mappings served from a memory source's cache (count)",
     .source = &SourceStats::cache_hits,
     .summary = {3, ", cache hits "}},
    {.name = "cache_misses",
     .description = "mappings the caches could not serve (count)",
     .source = &SourceStats::cache_misses,
     .summary = {3, ", misses "}},
    {.name = "cache_assembled_bytes",
     .description =
         "bytes of cached mappings moved (mremap) into a larger mapping a request needed",
     .source = &SourceStats::cache_assembled_bytes,
     .summary = {3, ", assembled ", " bytes"}},
    {.name = "cache_grown_bytes",
     .description = "bytes of cached mappings a huge block grew into (realloc), pages reused",
     .source = &SourceStats::cache_grown_bytes,
     .summary = {3, ", grown into ", " bytes"}},
    {.name = "remaps_in_place",
     .description = "huge blocks grown by mremap in place (count)",
     .source = &SourceStats::remaps_in_place,
     .summary = {3, ", mremap in place "}},
    {.name = "remaps_moved",
     .description = "huge blocks grown by mremap to a new address (count)",
     .source = &SourceStats::remaps_moved,
     .summary = {3, ", moved "}},
    {.name = "numa_nodes",
     .description = "NUMA nodes of the machine, as far as the allocator serves them (count)",
     .process = &ProcessStats::numa_nodes,
     .summary = {3, ", numa nodes "}},
    // Non-zero past 1 only in warn mode: abort mode stops at the first report.
    {.name = "errors_reported",
     .description = "misuse reports: double frees, pointers hpcalloc never returned (count)",
     .process = &ProcessStats::errors_reported,
     .summary = {3, ", errors reported "}},

    {.name = "numa_bind_failures",
     .description = "mappings whose NUMA binding failed; served unbound (count)",
     .source = &SourceStats::bind_failures},
    {.name = "numa_migrated",
     .description = "mappings moved in from another node's source (count)",
     .source = &SourceStats::migrated_in},
    {.name = "numa_migrate_failures",
     .description = "of those, mappings whose pages could not all move (count)",
     .source = &SourceStats::migrate_failures},
    {.name = "guard_failures",
     .description = "huge blocks served without the guard page below them (count)",
     .source = &SourceStats::guard_failures},
    {.name = "decayed_bytes",
     .description = "bytes whose pages decay gave back to the OS, ever (HPCALLOC_DECAY_MS)",
     .source = &SourceStats::decayed_bytes,
     .summary = {4, "decay: gave back "}},
    {.name = "decay_events",
     .description = "ranges decay gave back to the OS (count)",
     .source = &SourceStats::decay_events,
     .summary = {4, " bytes in ", " ranges"}},
    {.name = "trimmed_bytes",
     .description = "bytes whose pages malloc_trim or a thread's exit gave back to the OS, ever",
     .source = &SourceStats::trimmed_bytes,
     .summary = {4, "; trims gave back ", " bytes"}},
    {.name = "background_passes",
     .description = "decay passes of the background thread (HPCALLOC_BACKGROUND_THREAD; count)",
     .process = &ProcessStats::background_passes,
     .summary = {4, "; background passes "}},
};

// A statistic's process-wide value.
inline std::size_t process_value(const Statistic& s, const ProcessStats& p) {
  std::size_t value = 0;
  if (s.heap != nullptr) value += p.heaps.*s.heap;
  if (s.heap_figure != nullptr) value += (p.heaps.*s.heap_figure)();
  if (s.pool != nullptr) value += p.pool.*s.pool;
  if (s.source != nullptr) value += p.sources.*s.source;
  if (s.process != nullptr) value += p.*s.process;
  return value;
}

// Its value for one heap: the heap parts only (rows with a heap_label).
inline std::size_t heap_value(const Statistic& s, const HeapStats& h) {
  std::size_t value = 0;
  if (s.heap != nullptr) value += h.*s.heap;
  if (s.heap_figure != nullptr) value += (h.*s.heap_figure)();
  return value;
}

// The heap counters, in table order: what each ThreadHeap publishes.
inline constexpr std::size_t kHeapCounterCount = [] {
  std::size_t n = 0;
  for (const Statistic& s : kStatistics) n += s.heap != nullptr ? 1 : 0;
  return n;
}();
inline constexpr std::array<std::size_t HeapStats::*, kHeapCounterCount> kHeapCounters = [] {
  std::array<std::size_t HeapStats::*, kHeapCounterCount> counters{};
  std::size_t n = 0;
  for (const Statistic& s : kStatistics) {
    if (s.heap != nullptr) counters[n++] = s.heap;
  }
  return counters;
}();

// Reached only by a heap counter without a row in kStatistics: not
// constexpr (and never defined), so heap_counter_index() of such a field
// does not compile (no `throw`: the preload library is built without
// exceptions).
std::size_t not_a_heap_counter_give_it_a_row_in_kStatistics();

// Where a heap counter is in kHeapCounters; a field without a row does not
// compile.
consteval std::size_t heap_counter_index(std::size_t HeapStats::*field) {
  for (std::size_t i = 0; i < kHeapCounterCount; ++i) {
    if (kHeapCounters[i] == field) return i;
  }
  return not_a_heap_counter_give_it_a_row_in_kStatistics();
}

inline HeapStats& HeapStats::operator+=(const HeapStats& other) {
  for (std::size_t HeapStats::*counter : kHeapCounters) this->*counter += other.*counter;
  return *this;
}

namespace statistics_checks {

constexpr bool heap_counters_are_distinct() {
  for (std::size_t i = 0; i < kHeapCounterCount; ++i) {
    for (std::size_t j = i + 1; j < kHeapCounterCount; ++j) {
      if (kHeapCounters[i] == kHeapCounters[j]) return false;
    }
  }
  return true;
}

constexpr bool names_are_distinct() {
  for (const Statistic& a : kStatistics) {
    for (const Statistic& b : kStatistics) {
      if (&a != &b && a.name != nullptr && b.name != nullptr &&
          std::string_view(a.name) == std::string_view(b.name)) {
        return false;
      }
    }
  }
  return true;
}

constexpr bool rows_are_reachable() {
  int line = -1;
  for (const Statistic& s : kStatistics) {
    const bool of_heap = s.heap != nullptr || s.heap_figure != nullptr;
    if (s.name == nullptr && s.heap_label == nullptr) return false;             // shown nowhere
    if (s.heap_label != nullptr && !of_heap) return false;                      // no per-heap value
    if (s.heap_label != nullptr && s.json_heap_key() == nullptr) return false;  // no JSON key
    if (s.name == nullptr && (!of_heap || s.summary.line >= 0)) return false;
    if (s.summary.line >= 0 && s.summary.line < line) return false;  // lines in order
    if (s.summary.line >= 0) line = s.summary.line;
  }
  return true;
}

}  // namespace statistics_checks

static_assert(sizeof(HeapStats) == kHeapCounterCount * sizeof(std::size_t),
              "every HeapStats field is a heap counter with a row in kStatistics");
static_assert(statistics_checks::heap_counters_are_distinct(), "a heap counter has two rows");
static_assert(statistics_checks::names_are_distinct(), "two statistics share an hpc_stat name");
static_assert(statistics_checks::rows_are_reachable(),
              "a row is shown nowhere, has a per-heap label without a heap value, or breaks the "
              "summary's line order");

}  // namespace hpcalloc
