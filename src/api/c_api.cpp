// The prefixed C API (hpcalloc.h) over hpcalloc::global. This file adds only
// glibc 2.36's argument checks and return conventions (which errno, which
// return code, how memalign rounds an alignment); c_api_test.cpp checks every
// one of them against glibc itself. Nothing here allocates on its own account:
// reports are built on the stack (base/report.h).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/fast_paths.h"
#include "api/global_allocator.h"
#include "api/hpcalloc.h"
#include "api/production_config.h"
#include "base/base.h"
#include "base/process_info.h"

namespace hpcalloc {
namespace {

// memalign with an alignment up to this is plain malloc (glibc's
// MALLOC_ALIGNMENT; global::malloc gives as much).
constexpr std::size_t kMallocAlignment = 16;
// No request above this can be met (glibc's checked_request2size): the sizes
// glibc calls impossible, answered with ENOMEM before any work.
constexpr std::size_t kMaxRequest = PTRDIFF_MAX;

// Read once (base/process_info.h); a racing first call stores the same
// value, so relaxed is enough.
std::size_t page_size() {
  static std::atomic<std::size_t> cached{0};
  std::size_t page = cached.load(std::memory_order_relaxed);
  if (page == 0) [[unlikely]] {
    page = os_page_size();
    cached.store(page, std::memory_order_relaxed);
  }
  return page;
}

[[gnu::cold]] void* fail(int error) {
  errno = error;
  return nullptr;
}

// `alignment` is a power of two above kMallocAlignment. The bound keeps
// size + alignment from overflowing inside the heap, whose contract covers
// only the alignment being a power of two.
void* aligned_block(std::size_t alignment, std::size_t size, const char* call) {
  if (alignment > kMaxRequest || size > kMaxRequest - alignment) return fail(ENOMEM);
  return global::memalign(alignment, size, call);
}

// glibc's _mid_memalign, which memalign, aligned_alloc, valloc, pvalloc and
// posix_memalign all go through: small alignments are malloc's, a non-power
// of two is rounded up to the next one, and one above SIZE_MAX / 2 + 1 (which
// no power of two is) is EINVAL. `call`: the call the program made, for
// reports (so a small alignment goes through memalign too, not malloc's
// fast path, which would name malloc()).
void* glibc_memalign(std::size_t alignment, std::size_t size, const char* call) {
  if (alignment <= kMallocAlignment) alignment = kMallocAlignment;
  if (alignment > SIZE_MAX / 2 + 1) return fail(EINVAL);
  return aligned_block(round_up_pow2(alignment), size, call);
}

// Checked build only: free_sized / free_aligned_sized with a size the block
// cannot have held, or a pointer without the alignment it was asked with.
// Aborts unless HPCALLOC_ON_ERROR=warn, like the heap's own reports.
[[maybe_unused, gnu::cold, gnu::noinline]] void report_sized_free(const char* operation,
                                                                  const void* p,
                                                                  std::size_t alignment,
                                                                  std::size_t size,
                                                                  std::size_t usable) {
  ReportLine line;
  line.text(operation).text(": block ").ptr(p).text(" (usable size ").dec(usable);
  line.text(") freed with size ").dec(size);
  if (alignment != 0) line.text(" and alignment ").dec(alignment);
  const char* policy = env_value("HPCALLOC_ON_ERROR");
  if (policy == nullptr || std::string_view(policy) != "warn") fatal(line);
  report_line(line.view()).write_to(STDERR_FILENO);
}

// Compiled to nothing outside the checked build.
void check_sized_free(const char* operation, void* p, std::size_t alignment, std::size_t size) {
  if constexpr (kChecked) {
    if (p == nullptr) return;
    const std::size_t usable = global::usable_size(p);
    // The lowest power of two dividing `alignment` divides every alignment
    // glibc_memalign may have rounded it up to.
    const std::size_t alignment_factor = alignment & (~alignment + 1);
    if (size > usable || (alignment != 0 && !is_aligned(p, alignment_factor))) {
      report_sized_free(operation, p, alignment, size, usable);
    }
  }
}

}  // namespace

void global::free_checking_size(void* p, std::size_t alignment, std::size_t size,
                                const char* call) noexcept {
  check_sized_free(call, p, alignment, size);
  global::free(p, call);
}

}  // namespace hpcalloc

namespace global = hpcalloc::global;

// Keep in step with project(VERSION) in the top-level CMakeLists.txt.
const char* hpc_version(void) { return HPCALLOC_VERSION; }  // from project() in CMake
const char* hpc_flavour(void) { return hpcalloc::kSecureFlavour ? "secure" : "default"; }

void* hpc_malloc(std::size_t size) { return hpcalloc::internal::malloc_inline(size); }

void hpc_free(void* p) { hpcalloc::internal::free_inline(p, "free()"); }

void* hpc_calloc(std::size_t count, std::size_t size) { return global::calloc(count, size); }

void* hpc_realloc(void* p, std::size_t size) { return global::realloc(p, size); }

void* hpc_reallocarray(void* p, std::size_t count, std::size_t size) {
  std::size_t bytes = 0;
  if (!hpcalloc::checked_mul(count, size, &bytes)) return hpcalloc::fail(ENOMEM);
  return global::realloc(p, bytes);
}

void* hpc_memalign(std::size_t alignment, std::size_t size) {
  return hpcalloc::glibc_memalign(alignment, size, "memalign()");
}

int hpc_posix_memalign(void** memptr, std::size_t alignment, std::size_t size) {
  if (alignment % sizeof(void*) != 0 || !hpcalloc::is_pow2(alignment)) [[unlikely]] {
    return EINVAL;
  }
  void* p = hpcalloc::glibc_memalign(alignment, size, "posix_memalign()");
  if (p == nullptr) return ENOMEM;  // errno is ENOMEM too, as in glibc
  *memptr = p;
  return 0;
}

void* hpc_aligned_alloc(std::size_t alignment, std::size_t size) {
  // glibc 2.36 exports aligned_alloc as an alias of memalign (2.38 added the
  // EINVAL for a non-power of two); we mirror the glibc we run on.
  return hpcalloc::glibc_memalign(alignment, size, "aligned_alloc()");
}

void* hpc_valloc(std::size_t size) {
  return hpcalloc::glibc_memalign(hpcalloc::page_size(), size, "valloc()");
}

void* hpc_pvalloc(std::size_t size) {
  const std::size_t page = hpcalloc::page_size();
  std::size_t rounded = 0;
  if (!hpcalloc::checked_align_up(size, page, &rounded)) return hpcalloc::fail(ENOMEM);
  // pvalloc(0) is one page, as documented (glibc 2.36's rounding mask is off
  // by one and asks for 1 byte; a whole page is what callers expect).
  if (rounded == 0) rounded = page;
  return hpcalloc::glibc_memalign(page, rounded, "pvalloc()");
}

std::size_t hpc_malloc_usable_size(void* p) { return global::usable_size(p); }

void hpc_free_sized(void* p, std::size_t size) {
  hpcalloc::global::free_checking_size(p, 0, size, "free_sized()");
}

void hpc_free_aligned_sized(void* p, std::size_t alignment, std::size_t size) {
  hpcalloc::global::free_checking_size(p, alignment, size, "free_aligned_sized()");
}

int hpc_malloc_trim(std::size_t pad) { return global::trim(pad) ? 1 : 0; }

int hpc_stat(const char* name, std::size_t* value) {
  if (name == nullptr) return -1;
  std::size_t ignored = 0;
  return global::stat(name, value != nullptr ? value : &ignored) ? 0 : -1;
}

void hpc_print_stats(int fd) { global::print_stats(fd); }

void hpc_print_stats_json(int fd) { global::print_stats_json(fd); }
