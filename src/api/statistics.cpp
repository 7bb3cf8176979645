// Statistics of the process-wide allocator: the figures behind hpc_stat,
// mallinfo2 and the exit summary (HPCALLOC_STATS), gathered from the pool's
// heaps (published relaxed figures) and the memory sources, written with
// write(2) only. Which statistics exist, their names and their place in the
// summary are kStatistics' rows (mem/statistics.h).
#include <fcntl.h>

#include <unistd.h>
#include <cerrno>

#include <cstdint>
#include <string_view>

#include "api/background_thread.h"
#include "api/global_allocator.h"
#include "api/globals.h"
#include "base/base.h"
#include "base/json_writer.h"
#include "mem/resident_bytes.h"
#include "mem/statistics.h"

namespace hpcalloc {
namespace internal {
namespace {

// with_resident: also walk the mappings for resident_bytes (a system call
// per resident range; see mem/resident_bytes.h), which only the summary and
// hpc_stat("resident_bytes") ask for.
ProcessStats snapshot(Globals* g, bool with_resident) {
  // The calling thread's own figures can be exact.
  if (Heap* heap = calling_threads_heap(); heap != nullptr) heap->publish_stats();
  ProcessStats s;
  s.pool = g->pool.counts();
  g->pool.for_each([&](const Heap& heap, bool) { s.heaps += heap.stats(); });
  for (unsigned i = 0; i < g->numa.source_count(); ++i) s.sources += g->numa.source_at(i).stats();
  s.numa_nodes = g->numa.node_count();
  s.heapless_remote_pushed = g->heapless_remote_pushed.load(std::memory_order_relaxed);
  s.errors_reported = g->reporter.reported();
  s.background_passes = background_passes();
  s.registry_bytes = g->registry.leaf_count() * g->registry.leaf_bytes();
  if (with_resident) {
    s.resident_bytes =
        registered_resident_bytes(g->registry, g->pal) + s.pool.slab_bytes + s.registry_bytes;
  }
  return s;
}

void print_summary(StatsFormat format, int fd) {
  if (format == StatsFormat::kJson) {
    global::print_stats_json(fd);
  } else {
    global::print_stats(fd);
  }
}

[[gnu::destructor]] void print_stats_at_exit() {
  Globals* g = globals();
  if (g == nullptr) {
    const StatsFormat format = read_stats_format();
    if (format != StatsFormat::kOff) print_summary(format, STDERR_FILENO);
    return;
  }
  const StatsFormat format = g->settings.stats;
  if (format == StatsFormat::kOff) return;
  if (g->settings.stats_file[0] != '\0') {
    const int fd = open(g->settings.stats_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      // One warning, and the summary is not lost: it goes to stderr. The
      // errno is printed as a number (strerror may allocate to translate).
      ReportLine warning = report_line("warning: cannot open HPCALLOC_STATS_FILE ");
      warning.text(g->settings.stats_file).text(" (errno ").dec(static_cast<std::uint64_t>(errno));
      warning.text("); the statistics go to stderr");
      warning.write_to(g->stats_fd);
      print_summary(format, g->stats_fd);
      return;
    }
    if (format == StatsFormat::kText) {  // (the JSON object has the pid)
      ReportLine line = report_line("stats: process ");
      line.dec(static_cast<std::uint64_t>(getpid())).text(" exiting");
      line.write_to(fd);
    }
    print_summary(format, fd);
    close(fd);
    return;
  }
  print_summary(format, g->stats_fd);
}

}  // namespace
}  // namespace internal

namespace global {

using namespace internal;

Figures figures() {
  Figures f{};
  Globals* g = globals();
  if (g == nullptr) return f;
  const ProcessStats s = snapshot(g, false);
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
  const ProcessStats s = snapshot(g, std::string_view(name) == "resident_bytes");
  for (const Statistic& statistic : kStatistics) {
    if (statistic.name != nullptr && std::string_view(statistic.name) == name) {
      *value = process_value(statistic, s);
      return true;
    }
  }
  return false;
}

// Which library it is, the summary lines in kStatistics' order, then one
// line per heap (the first eight).
void print_stats(int fd) {
  report_line("stats: hpcalloc ")
      .text(HPCALLOC_VERSION)
      .text(kSecureFlavour ? ", secure flavour" : ", default flavour")
      .write_to(fd);
  Globals* g = globals();
  if (g == nullptr) {
    report_line("stats: no allocation was made").write_to(fd);
    return;
  }
  const ProcessStats s = snapshot(g, true);
  ReportLine line;
  int line_number = -1;
  for (const Statistic& statistic : kStatistics) {
    if (statistic.summary.line < 0) continue;
    if (statistic.summary.line != line_number) {
      if (line_number >= 0) line.write_to(fd);
      line = report_line("stats: ");
      line_number = statistic.summary.line;
    }
    line.text(statistic.summary.label).dec(process_value(statistic, s));
    line.text(statistic.summary.unit);
  }
  if (line_number >= 0) line.write_to(fd);
  unsigned index = 0;
  g->pool.for_each([&](const Heap& heap, bool attached) {
    if (index++ >= 8) return;
    const HeapStats h = heap.stats();
    ReportLine l = report_line("stats: heap ");
    l.dec(index - 1).text(attached ? " (live)" : " (pooled)");
    for (const Statistic& statistic : kStatistics) {
      if (statistic.heap_label != nullptr)
        l.text(statistic.heap_label).dec(heap_value(statistic, h));
    }
    l.write_to(fd);
  });
  if (index > 8) report_line("stats: ... and more heaps").write_to(fd);
}

// The schema (README, "Statistics as JSON"): version, flavour, pid, every
// named statistic, then one object per heap (the first kJsonHeaps).
void print_stats_json(int fd) {
  constexpr unsigned kJsonHeaps = 64;
  JsonWriter json(fd);
  json.begin_object();
  json.field("schema", std::uint64_t{1});
  json.field("hpcalloc", HPCALLOC_VERSION);
  json.field("flavour", kSecureFlavour ? "secure" : "default");
  json.field("pid", static_cast<std::uint64_t>(getpid()));
  Globals* g = globals();
  json.field("initialized", g != nullptr);
  json.begin_object("statistics");
  if (g != nullptr) {
    const ProcessStats s = snapshot(g, true);
    for (const Statistic& statistic : kStatistics) {
      if (statistic.name != nullptr) json.field(statistic.name, process_value(statistic, s));
    }
  }
  json.end_object();
  json.begin_array("heaps");
  unsigned index = 0;
  if (g != nullptr) {
    g->pool.for_each([&](const Heap& heap, bool attached) {
      if (index++ >= kJsonHeaps) return;
      const HeapStats h = heap.stats();
      json.begin_object();
      json.field("index", std::uint64_t{index - 1});
      json.field("live", attached);
      for (const Statistic& statistic : kStatistics) {
        if (statistic.heap_label != nullptr) {
          json.field(statistic.json_heap_key(), heap_value(statistic, h));
        }
      }
      json.end_object();
    });
  }
  json.end_array();
  json.field("heaps_omitted", std::uint64_t{index > kJsonHeaps ? index - kJsonHeaps : 0});
  json.end_object();
  json.end_line();
}

}  // namespace global
}  // namespace hpcalloc
