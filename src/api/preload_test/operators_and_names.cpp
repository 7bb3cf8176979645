// Runs with libhpcalloc.so preloaded (ctest sets LD_PRELOAD): checks inside
// the process that every standard name, glibc-internal alias and operator
// new/delete resolves to hpcalloc, that each behaves as glibc 2.36 and the
// C++ standard say (errno, new_handler, bad_alloc, nothrow), that mallinfo2
// follows allocations and that glibc's own blocks are still freed correctly.
// Prints one line per failed check; exits 0 only if every check passed.
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <source_location>
#include <thread>
#include <vector>

namespace {

int g_failures = 0;

void check(bool ok, const char* what,
           std::source_location where = std::source_location::current()) {
  if (ok) return;
  std::printf("FAILED line %u: %s\n", static_cast<unsigned>(where.line()), what);
  ++g_failures;
}

// Keeps the optimiser from folding impossible sizes or eliding new/delete.
std::size_t opaque(std::size_t value) {
  asm volatile("" : "+r"(value));
  return value;
}
void escape(void* p) { asm volatile("" : : "r"(p) : "memory"); }

bool aligned_to(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

bool from_hpcalloc(const void* address) {
  Dl_info info{};
  return address != nullptr && dladdr(address, &info) != 0 && info.dli_fname != nullptr &&
         std::strstr(info.dli_fname, "libhpcalloc") != nullptr;
}

template <class Fn>
Fn lookup(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

constexpr std::size_t kImpossible = SIZE_MAX;

void check_names_resolve_to_hpcalloc() {
  const char* const names[] = {
      "malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
      "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size", "cfree", "free_sized",
      "free_aligned_sized", "malloc_trim", "mallinfo", "mallinfo2", "__libc_malloc", "__libc_free",
      "__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc", "__libc_pvalloc",
      "hpc_malloc", "hpc_stat",
      // operator new/delete: plain, array, nothrow, aligned, sized.
      "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
      "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
      "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvRKSt9nothrow_t",
      "_ZdaPvRKSt9nothrow_t", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t",
      "_ZdaPvSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
      "_ZdaPvSt11align_val_tRKSt9nothrow_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t"};
  for (const char* name : names) {
    if (!from_hpcalloc(dlsym(RTLD_DEFAULT, name))) {
      std::printf("FAILED: %s does not resolve to libhpcalloc.so\n", name);
      ++g_failures;
    }
  }
  check(from_hpcalloc(reinterpret_cast<const void*>(&malloc)), "&malloc is hpcalloc's");
}

void check_malloc_is_hpcallocs() {
  using StatFn = int (*)(const char*, std::size_t*);
  using UsableFn = std::size_t (*)(void*);
  const auto hpc_stat = lookup<StatFn>("hpc_stat");
  const auto hpc_usable = lookup<UsableFn>("hpc_malloc_usable_size");
  check(hpc_stat != nullptr && hpc_usable != nullptr, "hpc_stat and hpc_malloc_usable_size found");
  if (hpc_stat == nullptr || hpc_usable == nullptr) return;
  std::size_t before = 0;
  std::size_t during = 0;
  check(hpc_stat("in_use_bytes", &before) == 0, "hpc_stat(in_use_bytes)");
  void* p = std::malloc(opaque(4 << 20));
  check(p != nullptr, "malloc(4 MiB)");
  check(hpc_stat("in_use_bytes", &during) == 0 && during >= before + (4 << 20),
        "in_use_bytes grows with malloc");
  check(malloc_usable_size(p) == hpc_usable(p), "malloc_usable_size agrees with hpcalloc");
  std::free(p);
}

void check_errno_behaviours() {
  errno = 0;
  check(std::malloc(opaque(kImpossible)) == nullptr && errno == ENOMEM, "malloc(SIZE_MAX): ENOMEM");
  errno = 0;
  check(std::calloc(opaque(kImpossible), 2) == nullptr && errno == ENOMEM,
        "calloc overflow: ENOMEM");
  // Through a pointer, so the compiler does not assume (-Wuse-after-free)
  // that a realloc which fails has freed the block.
  using ReallocFn = void* (*)(void*, std::size_t);
  using ReallocarrayFn = void* (*)(void*, std::size_t, std::size_t);
  const auto realloc_fn = lookup<ReallocFn>("realloc");
  const auto reallocarray_fn = lookup<ReallocarrayFn>("reallocarray");
  void* p = std::malloc(64);
  std::memset(p, 0x3c, 64);
  errno = 0;
  check(realloc_fn(p, opaque(kImpossible)) == nullptr && errno == ENOMEM,
        "realloc(p, SIZE_MAX): ENOMEM");
  check(static_cast<unsigned char*>(p)[63] == 0x3c, "failed realloc keeps the block");
  errno = 0;
  check(reallocarray_fn(p, opaque(kImpossible), 2) == nullptr && errno == ENOMEM,
        "reallocarray overflow: ENOMEM");
  check(static_cast<unsigned char*>(p)[63] == 0x3c, "failed reallocarray keeps the block");
  errno = 0;
  check(realloc_fn(p, opaque(0)) == nullptr && errno == 0, "realloc(p, 0) frees, NULL");

  void* const untouched = reinterpret_cast<void*>(std::uintptr_t{0x1234});
  void* q = untouched;
  errno = 0;
  check(posix_memalign(&q, opaque(24), 10) == EINVAL && q == untouched && errno == 0,
        "posix_memalign(24): EINVAL, result and errno untouched");
  check(posix_memalign(&q, 64, opaque(kImpossible)) == ENOMEM && q == untouched,
        "posix_memalign(64, SIZE_MAX): ENOMEM, result untouched");
  check(posix_memalign(&q, 4096, 100) == 0 && aligned_to(q, 4096), "posix_memalign(4096)");
  std::free(q);

  errno = 0;
  check(memalign(opaque(kImpossible), 10) == nullptr && errno == EINVAL,
        "memalign(SIZE_MAX): EINVAL");
  void* m = memalign(opaque(100), 10);  // rounded up to 128, as glibc
  check(m != nullptr && aligned_to(m, 128), "memalign(100) is 128-aligned");
  std::free(m);
  void* a = aligned_alloc(opaque(3), 10);  // glibc 2.36: memalign, so malloc
  check(a != nullptr && aligned_to(a, 16), "aligned_alloc(3) behaves as glibc 2.36's");
  std::free(a);
  a = aligned_alloc(opaque(256), 10);
  check(a != nullptr && aligned_to(a, 256), "aligned_alloc(256, 10)");
  std::free(a);

  const std::size_t page = page_size();
  errno = 0;
  check(pvalloc(opaque(kImpossible)) == nullptr && errno == ENOMEM, "pvalloc(SIZE_MAX): ENOMEM");
  void* v = pvalloc(0);
  check(v != nullptr && aligned_to(v, page) && malloc_usable_size(v) >= page, "pvalloc(0): a page");
  std::free(v);
  v = valloc(100);
  check(v != nullptr && aligned_to(v, page), "valloc(100) is page-aligned");
  std::free(v);

  errno = 1234;
  std::free(nullptr);
  void* big = std::malloc(8 << 20);
  escape(big);
  std::free(big);
  check(errno == 1234, "free keeps errno");
  check(malloc_usable_size(nullptr) == 0, "malloc_usable_size(NULL) == 0");
  const int trimmed = malloc_trim(0);
  check(trimmed == 0 || trimmed == 1, "malloc_trim returns 0 or 1");
}

void check_libc_aliases() {
  using MallocFn = void* (*)(std::size_t);
  using FreeFn = void (*)(void*);
  using CallocFn = void* (*)(std::size_t, std::size_t);
  using ReallocFn = void* (*)(void*, std::size_t);
  using MemalignFn = void* (*)(std::size_t, std::size_t);
  using FreeSizedFn = void (*)(void*, std::size_t);
  using FreeAlignedSizedFn = void (*)(void*, std::size_t, std::size_t);
  const auto libc_malloc = lookup<MallocFn>("__libc_malloc");
  const auto libc_free = lookup<FreeFn>("__libc_free");
  const auto libc_calloc = lookup<CallocFn>("__libc_calloc");
  const auto libc_realloc = lookup<ReallocFn>("__libc_realloc");
  const auto libc_memalign = lookup<MemalignFn>("__libc_memalign");
  const auto libc_valloc = lookup<MallocFn>("__libc_valloc");
  const auto libc_pvalloc = lookup<MallocFn>("__libc_pvalloc");
  const auto cfree = lookup<FreeFn>("cfree");
  const auto free_sized = lookup<FreeSizedFn>("free_sized");
  const auto free_aligned_sized = lookup<FreeAlignedSizedFn>("free_aligned_sized");
  if (!libc_malloc || !libc_free || !libc_calloc || !libc_realloc || !libc_memalign ||
      !libc_valloc || !libc_pvalloc || !cfree || !free_sized || !free_aligned_sized) {
    check(false, "every __libc_* alias, cfree and the C23 sized frees are exported");
    return;
  }
  // Blocks cross between the aliases and the standard names freely.
  void* p = libc_malloc(100);
  std::memset(p, 7, 100);
  std::free(p);
  p = std::malloc(100);
  libc_free(p);
  auto* z = static_cast<unsigned char*>(libc_calloc(1000, 1));
  bool zero = z != nullptr;
  for (int i = 0; zero && i < 1000; ++i) zero = z[i] == 0;
  check(zero, "__libc_calloc zeroes");
  z[999] = 42;
  z = static_cast<unsigned char*>(libc_realloc(z, 100000));
  check(z != nullptr && z[999] == 42, "__libc_realloc keeps contents");
  libc_free(z);
  void* m = libc_memalign(64, 100);
  check(m != nullptr && aligned_to(m, 64), "__libc_memalign(64)");
  cfree(m);
  void* v = libc_valloc(100);
  check(v != nullptr && aligned_to(v, page_size()), "__libc_valloc");
  free_sized(v, 100);
  v = libc_pvalloc(100);
  check(v != nullptr && aligned_to(v, page_size()), "__libc_pvalloc");
  std::free(v);
  void* a = aligned_alloc(128, 300);
  free_aligned_sized(a, 128, 300);
}

int g_handler_calls = 0;
void handler_giving_up_second_time() {
  if (++g_handler_calls == 2) std::set_new_handler(nullptr);
}
void handler_throwing() {
  ++g_handler_calls;
  throw std::bad_alloc();
}

template <class Allocate>
bool throws_bad_alloc_after_two_handler_calls(Allocate allocate) {
  g_handler_calls = 0;
  std::set_new_handler(handler_giving_up_second_time);
  bool threw = false;
  try {
    escape(allocate());
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  std::set_new_handler(nullptr);
  return threw && g_handler_calls == 2;
}

template <class Allocate>
bool nothrow_gives_null(Allocate allocate) {
  std::set_new_handler(nullptr);
  if (allocate() != nullptr) return false;
  g_handler_calls = 0;
  std::set_new_handler(handler_throwing);  // its bad_alloc must be caught
  const bool null_after_handler = allocate() == nullptr && g_handler_calls == 1;
  std::set_new_handler(nullptr);
  return null_after_handler;
}

void check_operators() {
  const std::align_val_t a64{64};
  const std::align_val_t a4k{4096};
  // Each replaceable form, called directly so none can be elided.
  void* p = ::operator new(100);
  escape(p);
  check(p != nullptr && aligned_to(p, 16), "operator new");
  ::operator delete(p);
  p = ::operator new[](100);
  escape(p);
  ::operator delete[](p);
  p = ::operator new(100, std::nothrow);
  check(p != nullptr, "operator new nothrow");
  ::operator delete(p, std::nothrow);
  p = ::operator new[](100, std::nothrow);
  check(p != nullptr, "operator new[] nothrow");
  ::operator delete[](p, std::nothrow);
  p = ::operator new(100);
  ::operator delete(p, 100);
  p = ::operator new[](100);
  ::operator delete[](p, 100);
  for (std::align_val_t alignment : {a64, a4k, std::align_val_t{8}}) {
    const auto bytes = static_cast<std::size_t>(alignment);
    const std::size_t want = bytes < 16 ? 16 : bytes;
    p = ::operator new(100, alignment);
    check(aligned_to(p, want), "aligned operator new");
    ::operator delete(p, alignment);
    p = ::operator new[](100, alignment);
    check(aligned_to(p, want), "aligned operator new[]");
    ::operator delete[](p, alignment);
    p = ::operator new(100, alignment, std::nothrow);
    check(p != nullptr && aligned_to(p, want), "aligned nothrow operator new");
    ::operator delete(p, alignment, std::nothrow);
    p = ::operator new[](100, alignment, std::nothrow);
    check(p != nullptr && aligned_to(p, want), "aligned nothrow operator new[]");
    ::operator delete[](p, alignment, std::nothrow);
    p = ::operator new(100, alignment);
    ::operator delete(p, 100, alignment);
    p = ::operator new[](100, alignment);
    ::operator delete[](p, 100, alignment);
  }
  // new-expressions on over-aligned types pick the aligned forms.
  struct alignas(256) Wide {
    char bytes[256];
  };
  Wide* w = new Wide;
  escape(w);
  check(aligned_to(w, 256), "new of an alignas(256) type");
  delete w;
  Wide* ws = new Wide[3];
  escape(ws);
  check(aligned_to(ws, 256), "new[] of an alignas(256) type");
  delete[] ws;

  void* zero1 = ::operator new(0);
  void* zero2 = ::operator new(0);
  check(zero1 != nullptr && zero2 != nullptr && zero1 != zero2, "operator new(0) is unique");
  ::operator delete(zero1);
  ::operator delete(zero2);

  const std::size_t huge = opaque(kImpossible / 2);
  check(throws_bad_alloc_after_two_handler_calls([&] { return ::operator new(huge); }),
        "operator new: new_handler loop, then bad_alloc");
  check(throws_bad_alloc_after_two_handler_calls([&] { return ::operator new[](huge); }),
        "operator new[]: new_handler loop, then bad_alloc");
  check(throws_bad_alloc_after_two_handler_calls([&] { return ::operator new(huge, a64); }),
        "aligned operator new: new_handler loop, then bad_alloc");
  check(throws_bad_alloc_after_two_handler_calls([&] { return ::operator new[](huge, a4k); }),
        "aligned operator new[]: new_handler loop, then bad_alloc");
  check(throws_bad_alloc_after_two_handler_calls(
            [&] { return ::operator new (1, std::align_val_t{opaque(kImpossible / 2 + 1)}); }),
        "operator new with an alignment of 2^63: bad_alloc");
  bool threw_without_handler = false;
  try {
    escape(::operator new(huge));
  } catch (const std::bad_alloc&) {
    threw_without_handler = true;
  }
  check(threw_without_handler, "operator new without handler throws bad_alloc");
  check(nothrow_gives_null([&] { return ::operator new(huge, std::nothrow); }),
        "nothrow operator new: nullptr");
  check(nothrow_gives_null([&] { return ::operator new[](huge, std::nothrow); }),
        "nothrow operator new[]: nullptr");
  check(nothrow_gives_null([&] { return ::operator new(huge, a64, std::nothrow); }),
        "aligned nothrow operator new: nullptr");
  check(nothrow_gives_null([&] { return ::operator new[](huge, a4k, std::nothrow); }),
        "aligned nothrow operator new[]: nullptr");
}

void check_mallinfo() {
  const struct mallinfo2 before = mallinfo2();
  void* small = std::malloc(opaque(1000));
  void* huge = std::malloc(opaque(std::size_t{16} << 20));
  std::memset(huge, 1, 4096);
  escape(small);
  escape(huge);
  const struct mallinfo2 during = mallinfo2();
  check(during.uordblks >= before.uordblks + (std::size_t{16} << 20) + 1000,
        "mallinfo2.uordblks grows with allocation");
  check(during.hblks >= before.hblks + 1, "mallinfo2.hblks counts the huge block");
  check(during.hblkhd >= (std::size_t{16} << 20), "mallinfo2.hblkhd covers the huge block");
  check(during.arena > 0, "mallinfo2.arena counts the segments");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // still exported: test it
  const struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
  check(old.uordblks > 0 && old.hblks >= 1, "mallinfo (int) is filled");
  std::free(huge);
  std::free(small);
  const struct mallinfo2 after = mallinfo2();
  check(after.uordblks < during.uordblks, "mallinfo2.uordblks shrinks after free");
}

// Blocks from glibc's own malloc (reached through libc.so.6 itself, as code
// that allocated before the preload would have) go back to glibc.
void check_foreign_blocks_forwarded() {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  check(libc != nullptr, "libc.so.6 is loaded");
  if (libc == nullptr) return;
  using MallocFn = void* (*)(std::size_t);
  const auto glibc_malloc = reinterpret_cast<MallocFn>(dlsym(libc, "malloc"));
  check(glibc_malloc != nullptr && !from_hpcalloc(reinterpret_cast<const void*>(glibc_malloc)),
        "glibc's own malloc is reachable");
  if (glibc_malloc == nullptr) return;
  auto* p = static_cast<unsigned char*>(glibc_malloc(100));
  std::memset(p, 9, 100);
  check(malloc_usable_size(p) >= 100, "malloc_usable_size of a glibc block");
  p = static_cast<unsigned char*>(std::realloc(p, 5000));
  check(p != nullptr && p[99] == 9, "realloc of a glibc block");
  std::free(p);
  dlclose(libc);
}

void check_cross_thread() {
  std::vector<int*> made;
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) made.push_back(new int[1 + i % 300]{i});
  }).join();
  bool kept = true;
  for (int i = 0; i < 1000; ++i) kept = kept && made[i][0] == i;
  check(kept, "blocks made by another thread keep their contents");
  for (int* p : made) delete[] p;
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // every line out before a crash
  if (std::getenv("LD_PRELOAD") == nullptr) {
    std::printf("FAILED: run me with LD_PRELOAD=libhpcalloc.so\n");
    return 1;
  }
  check_names_resolve_to_hpcalloc();
  check_malloc_is_hpcallocs();
  check_errno_behaviours();
  check_libc_aliases();
  check_operators();
  check_mallinfo();
  check_foreign_blocks_forwarded();
  check_cross_thread();
  if (g_failures != 0) {
    std::printf("%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
