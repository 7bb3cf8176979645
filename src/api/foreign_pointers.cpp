// could_be_glibc_block (foreign_pointers.h).
#include "api/foreign_pointers.h"

#include <link.h>

#include <cstddef>
#include <cstdint>

namespace hpcalloc {
namespace {

constexpr std::uintptr_t kFirstPage = 4096;
constexpr std::uintptr_t kGlibcAlignment = 16;
// How far above the stack pointer the calling thread's callers' frames are
// taken to reach, and the red zone below it. A glibc block cannot lie
// there in practice: its heap and mappings are not within 1 MiB above a
// live stack pointer (stacks grow down into their own mapping).
constexpr std::uintptr_t kStackAbove = std::uintptr_t{1} << 20;
constexpr std::uintptr_t kStackBelow = 128;

[[gnu::noinline]] std::uintptr_t stack_pointer() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

// dl_iterate_phdr's callback: stops (returns 1) when the address lies in a
// PT_LOAD segment of the object. dl_iterate_phdr takes the loader's
// recursive lock and allocates nothing.
int in_loaded_segment(dl_phdr_info* info, std::size_t, void* data) {
  const auto address = *static_cast<const std::uintptr_t*>(data);
  for (unsigned i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    if (address >= begin && address - begin < ph.p_memsz) return 1;
  }
  return 0;
}

}  // namespace

bool could_be_glibc_block(const void* p) {
  auto address = reinterpret_cast<std::uintptr_t>(p);
  if (address < kFirstPage || address % kGlibcAlignment != 0) return false;
  const std::uintptr_t sp = stack_pointer();
  if (address >= sp - kStackBelow && address < sp + kStackAbove) return false;
  return dl_iterate_phdr(in_loaded_segment, &address) == 0;
}

}  // namespace hpcalloc
