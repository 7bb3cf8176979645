// The process-wide library. Until the allocator is assembled (issue 4) it
// exports only its version and, with HPCALLOC_STATS=1, says at exit that it
// does not replace malloc yet, so nobody mistakes a preload of it for a run
// on hpcalloc.
#include "api/hpcalloc.h"
#include "base/base.h"

#define HPCALLOC_PUBLIC __attribute__((visibility("default")))

extern "C" HPCALLOC_PUBLIC const char* hpc_version(void) { return "0.1.0"; }

namespace hpcalloc {
namespace {

[[gnu::destructor]] void report_at_exit() {
  if (!env_bool("HPCALLOC_STATS", false)) return;
  warn(
      "stats: version 0.1.0; the allocator is not assembled yet, so this process ran on "
      "glibc malloc (no hpcalloc figures to report)");
}

}  // namespace
}  // namespace hpcalloc
