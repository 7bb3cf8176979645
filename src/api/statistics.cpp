// Statistics of the process-wide allocator: the figures behind hpc_stat,
// mallinfo2 and the exit summary (HPCALLOC_STATS), gathered from the pool's
// heaps (published relaxed figures) and the memory sources, written with
// write(2) only.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string_view>

#include "api/global_allocator.h"
#include "api/globals.h"
#include "base/base.h"

namespace hpcalloc {
namespace internal {
namespace {

struct Snapshot {
  PoolCounts pool;
  HeapStats heaps;  // summed over every heap
  SourceStats sources;
  std::size_t heapless_remote_pushed = 0;
};

Snapshot snapshot(Globals* g) {
  // The calling thread's own figures can be exact.
  if (Heap* heap = calling_threads_heap(); heap != nullptr) heap->publish_stats();
  Snapshot s;
  s.pool = g->pool.counts();
  g->pool.for_each([&](const Heap& heap, bool) { s.heaps += heap.stats(); });
  for (unsigned i = 0; i < g->numa.source_count(); ++i) s.sources += g->numa.source_at(i).stats();
  s.heapless_remote_pushed = g->heapless_remote_pushed.load(std::memory_order_relaxed);
  return s;
}

[[gnu::destructor]] void print_stats_at_exit() {
  Globals* g = globals();
  if (g == nullptr) {
    if (env_bool("HPCALLOC_STATS", false)) global::print_stats(STDERR_FILENO);
    return;
  }
  if (!g->settings.stats) return;
  if (g->settings.stats_file != nullptr) {
    const int fd = open(g->settings.stats_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ReportLine line = report_line("stats: process ");
    line.dec(static_cast<std::uint64_t>(getpid())).text(" exiting");
    line.write_to(fd);
    global::print_stats(fd);
    close(fd);
    return;
  }
  global::print_stats(g->stats_fd);
}

}  // namespace
}  // namespace internal

namespace global {

using namespace internal;

Figures figures() {
  Figures f{};
  Globals* g = globals();
  if (g == nullptr) return f;
  const Snapshot s = snapshot(g);
  f.mapped = s.sources.mapped_bytes;
  f.huge_blocks = s.heaps.huge_blocks;
  f.huge_mapped = s.heaps.huge_in_use;
  f.in_use = s.heaps.in_use();
  f.free_bytes = f.mapped > f.in_use ? f.mapped - f.in_use : 0;
  f.cached = s.sources.cached_bytes;
  return f;
}

bool stat(const char* name, std::size_t* value) {
  Globals* g = init();
  const Snapshot s = snapshot(g);
  struct Entry {
    const char* name;
    std::size_t value;
  };
  const Entry entries[] = {
      {"heaps_created", s.pool.created},
      {"heaps_live", s.pool.attached},
      {"heaps_pooled", s.pool.pooled},
      {"heaps_abandoned", s.pool.abandoned},
      {"mapped_bytes", s.sources.mapped_bytes},
      {"cached_bytes", s.sources.cached_bytes},
      {"cached_mappings", s.sources.cached_mappings},
      {"in_use_bytes", s.heaps.in_use()},
      {"small_in_use_bytes", s.heaps.small_in_use},
      {"medium_in_use_bytes", s.heaps.medium_in_use},
      {"huge_in_use_bytes", s.heaps.huge_in_use},
      {"huge_blocks", s.heaps.huge_blocks},
      {"requested_bytes", s.heaps.requested},
      {"remote_frees_pushed", s.heaps.remote_pushed + s.heapless_remote_pushed},
      {"remote_frees_drained", s.heaps.remote_drained},
      {"cache_hits", s.sources.cache_hits},
      {"cache_misses", s.sources.cache_misses},
      {"os_reserves", s.sources.os_reserves},
      {"os_releases", s.sources.os_releases},
      {"remaps_in_place", s.sources.remaps_in_place},
      {"remaps_moved", s.sources.remaps_moved},
      {"numa_nodes", g->numa.node_count()},
      {"numa_bind_failures", s.sources.bind_failures},
      {"numa_migrated", s.sources.migrated_in},
      {"numa_migrate_failures", s.sources.migrate_failures},
      {"errors_reported", g->reporter.reported()},
  };
  for (const Entry& e : entries) {
    if (std::string_view(e.name) == name) {
      *value = e.value;
      return true;
    }
  }
  return false;
}

void print_stats(int fd) {
  Globals* g = globals();
  if (g == nullptr) {
    report_line("stats: no allocation was made").write_to(fd);
    return;
  }
  const Snapshot s = snapshot(g);
  ReportLine line = report_line("stats: heaps ");
  line.text("created ").dec(s.pool.created).text(", live ").dec(s.pool.attached);
  line.text(", pooled ").dec(s.pool.pooled).text(", abandoned at fork ").dec(s.pool.abandoned);
  line.write_to(fd);
  line = report_line("stats: bytes mapped ");
  line.dec(s.sources.mapped_bytes).text(", in use ").dec(s.heaps.in_use());
  line.text(" (small ").dec(s.heaps.small_in_use).text(", medium ").dec(s.heaps.medium_in_use);
  line.text(", huge ").dec(s.heaps.huge_in_use).text(" in ").dec(s.heaps.huge_blocks);
  line.text(" blocks), cached ").dec(s.sources.cached_bytes).text(" in ");
  line.dec(s.sources.cached_mappings).text(" mappings");
  line.write_to(fd);
  line = report_line("stats: requested (medium and huge) ");
  line.dec(s.heaps.requested).text(" bytes; remote frees pushed ");
  line.dec(s.heaps.remote_pushed + s.heapless_remote_pushed).text(", drained ");
  line.dec(s.heaps.remote_drained);
  line.write_to(fd);
  line = report_line("stats: os reserves ");
  line.dec(s.sources.os_reserves).text(", releases ").dec(s.sources.os_releases);
  line.text(", cache hits ")
      .dec(s.sources.cache_hits)
      .text(", misses ")
      .dec(s.sources.cache_misses);
  line.text(", mremap in place ").dec(s.sources.remaps_in_place).text(", moved ");
  line.dec(s.sources.remaps_moved).text(", numa nodes ").dec(g->numa.node_count());
  // Non-zero only in warn mode: abort mode stops at the first report.
  line.text(", errors reported ").dec(g->reporter.reported());
  line.write_to(fd);
  unsigned index = 0;
  g->pool.for_each([&](const Heap& heap, bool attached) {
    if (index++ >= 8) return;
    const HeapStats h = heap.stats();
    ReportLine l = report_line("stats: heap ");
    l.dec(index - 1).text(attached ? " (live)" : " (pooled)").text(": in use ").dec(h.in_use());
    l.text(", segments small ").dec(h.small_segments).text(" medium ").dec(h.medium_segments);
    l.text(", huge blocks ").dec(h.huge_blocks).text(", remote frees pushed ");
    l.dec(h.remote_pushed).text(", drained ").dec(h.remote_drained);
    l.write_to(fd);
  });
  if (index > 8) report_line("stats: ... and more heaps").write_to(fd);
}

}  // namespace global
}  // namespace hpcalloc
