// The state machine behind c_api_prop and c_api_misuse_prop: the prefixed C
// API of the real library (hpc_malloc ... from libhpcalloc_static, LinuxPal,
// the process-wide heap of this thread): malloc, calloc, realloc,
// reallocarray, free, free_sized, memalign, posix_memalign, aligned_alloc,
// valloc, pvalloc, malloc_usable_size and malloc_trim, with sizes around
// every boundary of the production config, impossible sizes, overflowing
// products and every kind of alignment (zero, non-powers of two, beyond
// SIZE_MAX / 2). Each result is judged by the reference model
// (model/reference_model.h) with glibc 2.36's semantics; memory is
// plentiful, so only impossible requests may fail. Every live block carries
// a pattern tied to its address, checked at free, realloc and trim.
#pragma once

#include <rapidcheck.h>
#include <rapidcheck/state.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "api/hpcalloc.h"
#include "model/reference_model.h"
#include "proptests/handle_list.h"

namespace hpcalloc::proptest {

using reference::Memory;
using reference::ReferenceModel;

constexpr Memory kPlenty = Memory::kPlenty;
constexpr std::size_t kSmallMax = 1024;  // production config
constexpr std::size_t kMediumMax = std::size_t{1} << 20;

inline std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

using ApiModel = HandleList;

struct ApiSut {
  ApiSut() : spec(limits()) {}
  static reference::Limits limits() {
    reference::Limits l;
    l.page_size = page_size();
    return l;
  }

  void judge(const std::string& verdict) {
    if (!verdict.empty()) RC_FAIL(verdict);
  }
  // A new block from a successful call: learn its usable size, fill it.
  void adopt(void* p) {
    if (p == nullptr) return;
    judge(spec.usable_size(p, hpc_malloc_usable_size(p)));
    judge(spec.addressable(p));
    spec.fill(p);
  }
  // The bytes a live block (or NULL: 0) was asked with.
  std::size_t asked_size(const void* p) const {
    return p == nullptr ? 0 : spec.live().at(reinterpret_cast<std::uintptr_t>(p)).size;
  }
  void hold(unsigned h, void* p) {
    blocks[h] = p;
    adopt(p);
  }

  ReferenceModel spec;
  std::map<unsigned, void*> blocks;  // handle -> block (nullptr after a failure)
  struct Freed {
    void* p = nullptr;
    std::size_t size = 0;  // bytes it was asked with (calloc: the product)
  };
  std::map<unsigned, Freed> freed;  // handle -> the block its free gave back
  // Misuse harness: hpc_stat("errors_reported") as last read, and the
  // addresses freed on its second thread (by any handle: a freed block's
  // address may be handed out again and freed there).
  std::size_t reports_seen = 0;
  std::set<const void*> freed_on_worker;
};

using ApiCommand = rc::state::Command<ApiModel, ApiSut>;

inline rc::Gen<std::size_t> request_size() {
  return rc::gen::weightedOneOf<std::size_t>({
      {30, rc::gen::inRange<std::size_t>(0, 65)},
      {25, rc::gen::inRange<std::size_t>(0, kSmallMax + 1)},
      {15, rc::gen::inRange<std::size_t>(kSmallMax + 1, kMediumMax + 1)},
      {5, rc::gen::inRange<std::size_t>(kMediumMax + 1, 3 * kMediumMax)},
      {8, rc::gen::element<std::size_t>(16, 17, kSmallMax, kSmallMax + 1, 4096, 65536, kMediumMax,
                                        kMediumMax + 1)},
      {3, rc::gen::element<std::size_t>(PTRDIFF_MAX, std::size_t{PTRDIFF_MAX} + 1, SIZE_MAX - 1,
                                        SIZE_MAX)},
  });
}

inline rc::Gen<std::size_t> alignment() {
  return rc::gen::weightedOneOf<std::size_t>({
      {6, rc::gen::element<std::size_t>(0, 1, 2, 3, 4, 8, 16, 24, 32, 48, 64, 100, 128, 4096, 4097,
                                        std::size_t{1} << 16, std::size_t{1} << 21,
                                        std::size_t{1} << 22)},
      {2, rc::gen::inRange<std::size_t>(0, 8193)},
      {1,
       rc::gen::element<std::size_t>(SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 2, SIZE_MAX)},
  });
}

inline rc::Gen<std::size_t> count() {
  return rc::gen::weightedOneOf<std::size_t>(
      {{9, rc::gen::inRange<std::size_t>(0, 9)},
       {1, rc::gen::element<std::size_t>(SIZE_MAX / 2 + 1, std::size_t{1} << 62, SIZE_MAX)}});
}

// Allocating calls that make a new handle.
enum class Alloc { kMalloc, kCalloc, kMemalign, kPosixMemalign, kAlignedAlloc, kValloc, kPvalloc };

struct Allocate : ApiCommand {
  unsigned id;
  Alloc how = *rc::gen::element(Alloc::kMalloc, Alloc::kMalloc, Alloc::kMalloc, Alloc::kCalloc,
                                Alloc::kMemalign, Alloc::kPosixMemalign, Alloc::kAlignedAlloc,
                                Alloc::kValloc, Alloc::kPvalloc);
  std::size_t n = how == Alloc::kCalloc ? *count() : 1;
  std::size_t size = *request_size();
  std::size_t align = *alignment();
  explicit Allocate(const ApiModel& s) : id(s.next_id) {}

  void checkPreconditions(const ApiModel& s) const override { RC_PRE(!s.has(id)); }
  void apply(ApiModel& s) const override { s.add(id, size); }
  void run(const ApiModel&, ApiSut& sut) const override {
    ReferenceModel& spec = sut.spec;
    void* p = nullptr;
    errno = 0;
    switch (how) {
      case Alloc::kMalloc:
        p = hpc_malloc(size);
        sut.judge(spec.malloc(size, p, errno, kPlenty));
        break;
      case Alloc::kCalloc:
        p = hpc_calloc(n, size);
        sut.judge(spec.calloc(n, size, p, errno, kPlenty));
        break;
      case Alloc::kMemalign:
        p = hpc_memalign(align, size);
        sut.judge(spec.memalign(align, size, p, errno, kPlenty));
        break;
      case Alloc::kAlignedAlloc:
        p = hpc_aligned_alloc(align, size);
        sut.judge(spec.aligned_alloc(align, size, p, errno, kPlenty));
        break;
      case Alloc::kValloc:
        p = hpc_valloc(size);
        sut.judge(spec.valloc(size, p, errno, kPlenty));
        break;
      case Alloc::kPvalloc:
        p = hpc_pvalloc(size);
        sut.judge(spec.pvalloc(size, p, errno, kPlenty));
        break;
      case Alloc::kPosixMemalign: {
        void* const untouched = &sut;  // any recognisable non-block value
        void* out = untouched;
        errno = 1234;
        const int rc = hpc_posix_memalign(&out, align, size);
        sut.judge(spec.posix_memalign(untouched, out, align, size, rc, 1234, errno, kPlenty));
        p = rc == 0 ? out : nullptr;
        break;
      }
    }
    sut.hold(id, p);
  }
  void show(std::ostream& os) const override {
    static const char* const kNames[] = {"malloc",        "calloc", "memalign", "posix_memalign",
                                         "aligned_alloc", "valloc", "pvalloc"};
    os << "h" << id << " = " << kNames[static_cast<int>(how)] << "(";
    if (how == Alloc::kCalloc) os << n << ", ";
    if (how == Alloc::kMemalign || how == Alloc::kPosixMemalign || how == Alloc::kAlignedAlloc) {
      os << align << ", ";
    }
    os << size << ")";
  }
};

inline ApiModel::Handle existing_handle(const ApiModel& s) {
  RC_PRE(!s.handles.empty());
  return *rc::gen::elementOf(s.handles);
}

// realloc, or reallocarray(p, n, size) when `n` is set.
struct Realloc : ApiCommand {
  ApiModel::Handle handle;
  bool array = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
  std::size_t n = array ? *count() : 1;
  std::size_t size = *rc::gen::weightedOneOf<std::size_t>(
      {{3, request_size()},
       {1, rc::gen::just<std::size_t>(0)},
       {3, handle.size > (std::size_t{1} << 40)
               ? request_size()
               : rc::gen::element<std::size_t>(handle.size + 1, handle.size * 2 + 1,
                                               handle.size / 2 + 1, handle.size + 4096)}});
  explicit Realloc(const ApiModel& s) : handle(existing_handle(s)) {}

  void checkPreconditions(const ApiModel& s) const override { RC_PRE(s.has(handle.id)); }
  void apply(ApiModel& s) const override { s.resize(handle.id, size); }
  void run(const ApiModel&, ApiSut& sut) const override {
    void* old = sut.blocks.at(handle.id);
    if (old != nullptr) sut.judge(sut.spec.check(old));
    errno = 0;
    void* p = array ? hpc_reallocarray(old, n, size) : hpc_realloc(old, size);
    const int error = errno;
    sut.judge(array ? sut.spec.reallocarray(old, n, size, p, error, kPlenty)
                    : sut.spec.realloc(old, size, p, error, kPlenty));
    // A failed call leaves the old block; a zero size freed it.
    std::size_t bytes = 0;
    const bool zero = !__builtin_mul_overflow(n, size, &bytes) && bytes == 0;
    if (p != nullptr || zero) sut.hold(handle.id, p);
  }
  void show(std::ostream& os) const override {
    os << "h" << handle.id << " = " << (array ? "reallocarray" : "realloc") << "(h" << handle.id
       << ", ";
    if (array) os << n << ", ";
    os << size << ")";
  }
};

// free, or free_sized with the size the block was asked with.
struct Free : ApiCommand {
  unsigned h;
  bool sized = *rc::gen::arbitrary<bool>();
  explicit Free(const ApiModel& s) : h(existing_handle(s).id) {}

  void checkPreconditions(const ApiModel& s) const override { RC_PRE(s.has(h)); }
  void apply(ApiModel& s) const override { s.free(h); }
  void run(const ApiModel&, ApiSut& sut) const override {
    void* p = sut.blocks.at(h);
    sut.freed[h] = {p, sut.asked_size(p)};
    if (sized && p != nullptr) {
      const std::size_t size = sut.spec.live().at(reinterpret_cast<std::uintptr_t>(p)).size;
      sut.judge(sut.spec.free_sized(p, size));  // reads the block: before the free
      hpc_free_sized(p, size);
    } else {
      sut.judge(sut.spec.free(p));
      hpc_free(p);
    }
    sut.blocks.erase(h);
  }
  void show(std::ostream& os) const override {
    os << (sized ? "free_sized(h" : "free(h") << h << ")";
  }
};

struct UsableSize : ApiCommand {
  unsigned h;
  explicit UsableSize(const ApiModel& s) : h(existing_handle(s).id) {}

  void checkPreconditions(const ApiModel& s) const override { RC_PRE(s.has(h)); }
  void run(const ApiModel&, ApiSut& sut) const override {
    void* p = sut.blocks.at(h);
    sut.judge(sut.spec.usable_size(p, hpc_malloc_usable_size(p)));
  }
  void show(std::ostream& os) const override { os << "malloc_usable_size(h" << h << ")"; }
};

struct Trim : ApiCommand {
  void run(const ApiModel&, ApiSut& sut) const override {
    hpc_malloc_trim(0);
    sut.judge(sut.spec.check_all());
  }
  void show(std::ostream& os) const override { os << "malloc_trim(0)"; }
};

inline std::size_t stat(const char* name) {
  std::size_t value = 0;
  RC_ASSERT(hpc_stat(name, &value) == 0);
  return value;
}

}  // namespace hpcalloc::proptest
