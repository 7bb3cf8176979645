// Tests of the reference model itself (reference_model.h), so that a property
// test passing against it means something:
//   - glibc, the implementation whose semantics the model claims to state,
//     passes a long random run of every call judged by the model;
//   - each kind of wrong answer an allocator could give (NULL with memory to
//     spare, wrong errno, misaligned or overlapping blocks, lost contents,
//     a usable size below the request, ...) is rejected;
//   - misuse (double free, interior pointer, realloc or usable size of a
//     freed block) is allowed only as hpcalloc's warn mode promises: one
//     report each, nothing served, nothing changed. glibc cannot show this
//     (it aborts or corrupts itself), so the answers are made up.
#include "model/reference_model.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace hpcalloc::reference {
namespace {

constexpr Memory kPlenty = Memory::kPlenty;

Limits glibc_limits() {
  Limits limits;
  limits.page_size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  limits.pvalloc_zero_is_one_page = false;  // glibc 2.36 asks for one byte
  return limits;
}

// After an allowed allocation: learn the usable size, write the pattern.
void adopt(ReferenceModel& model, void* p) {
  if (p == nullptr) return;
  ASSERT_EQ(model.usable_size(p, ::malloc_usable_size(p)), "");
  model.fill(p);
}

TEST(ReferenceModel, GlibcPassesARandomRun) {
  ReferenceModel model(glibc_limits());
  std::mt19937_64 random(12345);
  std::vector<void*> live;
  auto pick = [&]() -> std::size_t { return random() % live.size(); };
  auto size = [&]() -> std::size_t {
    switch (random() % 8) {
      case 0: return 0;
      case 1: return random() % 64;
      case 2: return random() % 4096;
      case 3: return random() % (1 << 20);
      case 4: return PTRDIFF_MAX + (random() % 2);
      case 5: return SIZE_MAX - random() % 3;
      default: return random() % 512;
    }
  };
  auto alignment = [&]() -> std::size_t {
    static const std::size_t kChoices[] = {0,
                                           1,
                                           2,
                                           3,
                                           8,
                                           16,
                                           24,
                                           32,
                                           48,
                                           64,
                                           100,
                                           4096,
                                           4097,
                                           1 << 16,
                                           SIZE_MAX / 2 + 1,
                                           SIZE_MAX / 2 + 2,
                                           SIZE_MAX};
    return kChoices[random() % (sizeof kChoices / sizeof kChoices[0])];
  };
  auto keep = [&](void* p) {
    if (p != nullptr) live.push_back(p);
  };
  for (int step = 0; step < 6000; ++step) {
    // Few live blocks at a time keeps the run (and check_all) quick.
    const unsigned op = live.size() > 64 ? 5 : static_cast<unsigned>(random() % 12);
    const std::size_t n = size();
    errno = 0;
    switch (op) {
      case 0: {
        void* p = std::malloc(n);
        ASSERT_EQ(model.malloc(n, p, errno, kPlenty), "");
        adopt(model, p);
        keep(p);
        break;
      }
      case 1: {
        const std::size_t count = random() % 4 == 0 ? SIZE_MAX / 3 : random() % 9;
        const std::size_t each = n % 4096;
        void* p = std::calloc(count, each);
        ASSERT_EQ(model.calloc(count, each, p, errno, kPlenty), "");
        adopt(model, p);
        keep(p);
        break;
      }
      case 2:
      case 3: {
        if (live.empty()) break;
        const std::size_t i = pick();
        const std::size_t m = op == 2 ? n : random() % 3000;
        ASSERT_EQ(model.check(live[i]), "");
        void* q = std::realloc(live[i], m);
        ASSERT_EQ(model.realloc(live[i], m, q, errno, kPlenty), "");
        if (q == nullptr && m != 0) break;  // the old block stays
        adopt(model, q);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        keep(q);
        break;
      }
      case 4: {
        if (live.empty()) break;
        const std::size_t i = pick();
        const std::size_t count = random() % 4 == 0 ? SIZE_MAX / 2 : random() % 5;
        const std::size_t each = n % 2048;
        ASSERT_EQ(model.check(live[i]), "");
        void* q = ::reallocarray(live[i], count, each);
        ASSERT_EQ(model.reallocarray(live[i], count, each, q, errno, kPlenty), "");
        std::size_t total = 0;
        if (q == nullptr && (__builtin_mul_overflow(count, each, &total) || total != 0)) break;
        adopt(model, q);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        keep(q);
        break;
      }
      case 5:
      case 6: {
        if (live.empty()) break;
        const std::size_t i = pick();
        ASSERT_EQ(model.free(live[i]), "");
        std::free(live[i]);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      case 7: {
        const std::size_t a = alignment();
        void* p = ::memalign(a, n);
        ASSERT_EQ(model.memalign(a, n, p, errno, kPlenty), "");
        adopt(model, p);
        keep(p);
        break;
      }
      case 8: {
        const std::size_t a = alignment();
        void* p = std::aligned_alloc(a, n);
        ASSERT_EQ(model.aligned_alloc(a, n, p, errno, kPlenty), "");
        adopt(model, p);
        keep(p);
        break;
      }
      case 9: {
        const std::size_t a = alignment();
        void* const sentinel = reinterpret_cast<void*>(std::uintptr_t{0x5a5a0});
        void* p = sentinel;
        errno = 1234;
        const int rc = ::posix_memalign(&p, a, n);
        ASSERT_EQ(model.posix_memalign(sentinel, p, a, n, rc, 1234, errno, kPlenty), "");
        if (rc == 0) {
          adopt(model, p);
          keep(p);
        }
        break;
      }
      case 10: {
        const bool page_rounded = random() % 2 == 0;
        void* p = page_rounded ? ::pvalloc(n) : ::valloc(n);
        ASSERT_EQ(
            page_rounded ? model.pvalloc(n, p, errno, kPlenty) : model.valloc(n, p, errno, kPlenty),
            "");
        adopt(model, p);
        keep(p);
        break;
      }
      default:
        if (step % 16 == 0) {
          ASSERT_EQ(model.check_all(), "");
        }
        break;
    }
  }
  for (void* p : live) {
    ASSERT_EQ(model.free(p), "");
    std::free(p);
  }
  EXPECT_EQ(model.live_count(), 0u);
}

TEST(ReferenceModel, GlibcPvallocRoundsToPages) {
  ReferenceModel model(glibc_limits());
  const std::size_t page = glibc_limits().page_size;
  for (std::size_t n : {std::size_t{1}, page - 1, page, page + 1, 3 * page + 5}) {
    void* p = ::pvalloc(n);
    ASSERT_EQ(model.pvalloc(n, p, errno, kPlenty), "");
    adopt(model, p);  // the usable size covers whole pages
    ASSERT_EQ(model.free(p), "");
    std::free(p);
  }
  errno = 0;
  void* p = ::pvalloc(SIZE_MAX - 1);
  EXPECT_EQ(model.pvalloc(SIZE_MAX - 1, p, errno, kPlenty), "");
}

// A block in a buffer we control, to hand the model results no real
// allocator would give. Page-aligned, so the offsets used below are never
// page-aligned themselves (valloc's check) whatever the stack layout.
struct alignas(4096) Arena {
  unsigned char bytes[4096];
};

TEST(ReferenceModel, RejectsWrongAnswers) {
  Arena arena;
  void* a = arena.bytes;
  void* b = arena.bytes + 64;
  {
    ReferenceModel model;
    EXPECT_NE(model.malloc(10, nullptr, ENOMEM, kPlenty), "") << "NULL with memory to spare";
    EXPECT_EQ(model.malloc(10, nullptr, ENOMEM, Memory::kMayRunOut), "");
    EXPECT_NE(model.malloc(10, nullptr, EINVAL, Memory::kMayRunOut), "") << "wrong errno";
    EXPECT_NE(model.malloc(SIZE_MAX, a, 0, kPlenty), "") << "an impossible size served";
    EXPECT_NE(model.malloc(10, arena.bytes + 8, 0, kPlenty), "") << "misaligned";
    EXPECT_EQ(model.malloc(100, a, 0, kPlenty), "");
    EXPECT_NE(model.malloc(10, arena.bytes + 96, 0, kPlenty), "") << "overlap";
    EXPECT_NE(model.usable_size(a, 99), "") << "usable size below the request";
    EXPECT_EQ(model.usable_size(a, 112), "");
    EXPECT_NE(model.usable_size(a, 128), "") << "usable size changed";
    EXPECT_NE(model.malloc(0, arena.bytes + 96, 0, kPlenty), "") << "inside the usable tail";
    model.fill(a);
    arena.bytes[111] ^= 1;
    EXPECT_NE(model.free(a), "") << "a live block changed";
  }
  {
    ReferenceModel model;
    std::memset(a, 1, 64);
    EXPECT_NE(model.calloc(4, 16, a, 0, kPlenty), "") << "calloc not zero";
    EXPECT_NE(model.calloc(SIZE_MAX / 2, 4, nullptr, 0, kPlenty), "") << "overflow without ENOMEM";
    EXPECT_EQ(model.calloc(SIZE_MAX / 2, 4, nullptr, ENOMEM, kPlenty), "");
  }
  {
    ReferenceModel model;
    ASSERT_EQ(model.malloc(32, a, 0, kPlenty), "");
    ASSERT_EQ(model.usable_size(a, 32), "");
    model.fill(a);
    std::memcpy(b, a, 31);  // one byte short
    EXPECT_NE(model.realloc(a, 48, b, 0, kPlenty), "") << "realloc lost a byte";
  }
  {
    ReferenceModel model;
    ASSERT_EQ(model.malloc(32, a, 0, kPlenty), "");
    EXPECT_NE(model.realloc(a, 0, b, 0, kPlenty), "") << "realloc(p, 0) must return NULL";
    ASSERT_EQ(model.malloc(32, a, 0, kPlenty), "");
    EXPECT_NE(model.realloc(a, 64, nullptr, ENOMEM, kPlenty), "") << "NULL with memory to spare";
    EXPECT_TRUE(model.is_live(a)) << "a failed realloc keeps the block";
    EXPECT_NE(model.reallocarray(a, SIZE_MAX, 2, nullptr, 0, kPlenty), "") << "overflow errno";
  }
  {
    ReferenceModel model;
    void* const sentinel = b;
    EXPECT_NE(model.posix_memalign(sentinel, sentinel, 24, 8, ENOMEM, 0, ENOMEM, kPlenty), "")
        << "bad alignment must be EINVAL";
    EXPECT_NE(model.posix_memalign(sentinel, sentinel, 24, 8, EINVAL, 0, EINVAL, kPlenty), "")
        << "EINVAL must leave errno alone";
    EXPECT_NE(model.posix_memalign(sentinel, nullptr, 64, 8, ENOMEM, 0, ENOMEM, Memory::kMayRunOut),
              "")
        << "*memptr written on failure";
    EXPECT_NE(model.posix_memalign(sentinel, arena.bytes + 32, 64, 8, 0, 0, 0, kPlenty), "")
        << "not aligned to 64";
    EXPECT_EQ(model.posix_memalign(sentinel, a, 64, 8, 0, 0, 0, kPlenty), "");
  }
  {
    ReferenceModel model;
    EXPECT_NE(model.memalign(SIZE_MAX / 2 + 2, 8, nullptr, ENOMEM, kPlenty), "") << "want EINVAL";
    EXPECT_EQ(model.memalign(SIZE_MAX / 2 + 2, 8, nullptr, EINVAL, kPlenty), "");
    EXPECT_NE(model.memalign(48, 8, arena.bytes + 32, 0, kPlenty), "") << "48 rounds up to 64";
    EXPECT_NE(model.valloc(8, arena.bytes + 64, 0, kPlenty), "") << "not page-aligned";
    EXPECT_NE(model.pvalloc(SIZE_MAX - 2, nullptr, EINVAL, kPlenty), "") << "overflow is ENOMEM";
  }
  {
    ReferenceModel model;
    ASSERT_EQ(model.malloc(32, a, 0, kPlenty), "");
    EXPECT_NE(model.free_sized(a, 33), "") << "free_sized with the wrong size";
    EXPECT_EQ(model.free_sized(a, 32), "");
  }
}

TEST(ReferenceModel, MisuseIsReportedOnceAndChangesNothing) {
  Arena arena;
  void* a = arena.bytes;
  void* b = arena.bytes + 256;
  void* inside_b = arena.bytes + 256 + 16;
  ReferenceModel model;
  ASSERT_EQ(model.malloc(100, a, 0, kPlenty), "");
  ASSERT_EQ(model.malloc(100, b, 0, kPlenty), "");
  model.fill(a);
  model.fill(b);
  ASSERT_EQ(model.free(a), "");

  EXPECT_FALSE(model.is_misuse(nullptr));
  EXPECT_FALSE(model.is_misuse(b));
  EXPECT_TRUE(model.is_misuse(a)) << "freed";
  EXPECT_TRUE(model.is_misuse(inside_b)) << "interior";
  EXPECT_NE(model.free_misused(b), "") << "a live block is no misuse";
  EXPECT_NE(model.free_misused(nullptr), "") << "free(NULL) is no misuse";

  // Each misuse call expects one report; nothing changes.
  EXPECT_EQ(model.free_misused(a), "");
  EXPECT_EQ(model.free_misused(inside_b), "");
  EXPECT_EQ(model.realloc_misused(a, 64, nullptr), "");
  EXPECT_EQ(model.usable_size_misused(a, 0), "");
  EXPECT_EQ(model.expected_reports(), 4u);
  EXPECT_EQ(model.reports(4), "");
  EXPECT_EQ(model.expected_reports(), 0u);
  EXPECT_EQ(model.live_count(), 1u);
  EXPECT_TRUE(model.is_live(b));
  EXPECT_EQ(model.reports(0), "") << "nothing since the last count";
}

TEST(ReferenceModel, RejectsMisuseHandledWrongly) {
  Arena arena;
  void* a = arena.bytes;
  void* b = arena.bytes + 256;
  void* inside_b = arena.bytes + 256 + 1;
  ReferenceModel model;
  ASSERT_EQ(model.malloc(100, a, 0, kPlenty), "");
  ASSERT_EQ(model.malloc(100, b, 0, kPlenty), "");
  model.fill(b);
  ASSERT_EQ(model.free(a), "");

  ASSERT_EQ(model.free_misused(a), "");
  EXPECT_NE(model.reports(0), "") << "a double free not reported";
  ASSERT_EQ(model.free_misused(inside_b), "");
  EXPECT_NE(model.reports(2), "") << "one interior free reported twice";
  ASSERT_EQ(model.free_misused(a), "");
  ASSERT_EQ(model.free_misused(a), "");
  EXPECT_NE(model.reports(1), "") << "two double frees, one report";

  EXPECT_NE(model.realloc_misused(a, 64, b), "") << "realloc served a freed block";
  EXPECT_NE(model.usable_size_misused(a, 112), "") << "usable size of a freed block";
  model.reports(2);

  ASSERT_EQ(model.free_misused(a), "");
  arena.bytes[256 + 7] ^= 1;  // the double free wrote into another live block
  const std::string verdict = model.reports(1);
  EXPECT_NE(verdict, "") << "another live block changed";
  EXPECT_NE(verdict.find("changed at byte 7"), std::string::npos) << verdict;
}

}  // namespace
}  // namespace hpcalloc::reference
