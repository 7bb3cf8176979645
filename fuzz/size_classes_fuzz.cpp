// libFuzzer harness of SizeClasses (mem/size_classes.h) for every kSmallMax
// a config may choose. Each input is a list of (size, alignment) pairs; for
// each, the class the table gives must be the smallest that holds the size,
// a multiple of 16, within one step of its doubling (12.5%) above 128 bytes,
// and the aligned class must be the power of two covering size and
// alignment. The domain is small, so a campaign soon covers all of it; the
// harness exists so that a change of the table is checked in seconds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_input.h"
#include "mem/size_classes.h"

namespace hpcalloc::fuzz {
namespace {

constexpr char kName[] = "size_classes_fuzz";

template <std::size_t kSmallMax>
void check_table() {
  using Classes = SizeClasses<kSmallMax>;
  for (unsigned c = 0; c < Classes::kClassCount; ++c) {
    if (Classes::class_size(c) != Classes::compute_class_size(c)) fail(kName, "table != rule");
    if (c > 0 && Classes::class_size(c) <= Classes::class_size(c - 1)) {
      fail(kName, "class sizes not increasing");
    }
  }
  if (Classes::class_size(Classes::kClassCount - 1) != kSmallMax) fail(kName, "last class");
}

template <std::size_t kSmallMax>
void check_size(std::size_t size, std::size_t alignment) {
  using Classes = SizeClasses<kSmallMax>;
  size %= kSmallMax + 1;
  // Built only on failure: the checks run millions of times a second.
  const auto where = [&] {
    return "kSmallMax " + std::to_string(kSmallMax) + ", size " + std::to_string(size);
  };
  const unsigned c = Classes::class_of(size);
  if (c >= Classes::kClassCount) fail(kName, where() + ": class out of range");
  const std::size_t got = Classes::class_size(c);
  if (got < size) fail(kName, where() + ": class too small");
  if (c > 0 && Classes::class_size(c - 1) >= size)
    fail(kName, where() + ": not the smallest class");
  if (got % Classes::kGranule != 0) fail(kName, where() + ": class not a multiple of 16");
  if (size != 0 && (size > 128 ? (got - size) * 8 >= size : got - size >= Classes::kGranule)) {
    fail(kName, where() + ": wastes more than one step");
  }

  // alignment: a power of two up to kSmallMax.
  alignment = std::size_t{1} << (alignment % (log2_floor(kSmallMax) + 1));
  const unsigned a = Classes::class_of_aligned(size, alignment);
  const std::size_t aligned = Classes::class_size(a);
  std::size_t want = size > alignment ? size : alignment;
  want = round_up_pow2(want < Classes::kGranule ? Classes::kGranule : want);
  if (aligned != want) {
    fail(kName, where() + ", alignment " + std::to_string(alignment) + ": aligned class " +
                    std::to_string(aligned) + ", want " + std::to_string(want));
  }
}

}  // namespace
}  // namespace hpcalloc::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  using namespace hpcalloc::fuzz;
  check_table<128>();
  check_table<256>();
  check_table<1024>();
  check_table<4096>();
  check_table<32768>();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hpcalloc::fuzz;
  Input in(data, size);
  while (!in.empty()) {
    const std::size_t n = in.u16();
    const std::size_t alignment = in.byte();
    switch (in.byte() % 5) {
      case 0: check_size<128>(n, alignment); break;
      case 1: check_size<256>(n, alignment); break;
      case 2: check_size<1024>(n, alignment); break;
      case 3: check_size<4096>(n, alignment); break;
      default: check_size<32768>(n, alignment); break;
    }
  }
  return 0;
}
