// Test support: what the kernel says about NUMA placement, through the raw
// system calls (no libnuma): the policy a range carries (get_mempolicy with
// MPOL_F_ADDR), the node of a touched page (get_mempolicy MPOL_F_NODE, and
// move_pages with nodes = NULL), and whether these calls work here at all
// (a kernel without NUMA answers ENOSYS, a seccomp filter EPERM). Used by
// pal/linux_pal_numa_test.cpp and api/numa_api_test.cpp.
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hpcalloc::numa_queries {

// From <linux/mempolicy.h>; ABI values.
constexpr int kMpolDefault = 0;
constexpr int kMpolPreferred = 1;
constexpr int kMpolBind = 2;
constexpr unsigned long kMpolFNode = 1;
constexpr unsigned long kMpolFAddr = 2;
// get_mempolicy needs a mask of at least the kernel's node count.
constexpr unsigned kMaskWords = 16;
constexpr unsigned kBitsPerWord = 8 * sizeof(unsigned long);
constexpr unsigned kMaskBits = kMaskWords * kBitsPerWord;

struct RangePolicy {
  long result = -1;
  int error = 0;
  int mode = -1;
  std::vector<int> nodes;
};

// The policy of the range holding p.
inline RangePolicy policy_at(const void* p) {
  unsigned long mask[kMaskWords] = {};
  RangePolicy out;
  errno = 0;
  out.result = ::syscall(SYS_get_mempolicy, &out.mode, mask, kMaskBits + 1, p, kMpolFAddr);
  out.error = errno;
  for (unsigned bit = 0; bit < kMaskBits; ++bit) {
    if ((mask[bit / kBitsPerWord] >> (bit % kBitsPerWord)) & 1) {
      out.nodes.push_back(static_cast<int>(bit));
    }
  }
  return out;
}

// The node of a touched page per get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)
// (which faults the page in if it is not), -1 on failure.
inline int node_of_page(const void* p) {
  int node = -1;
  if (::syscall(SYS_get_mempolicy, &node, nullptr, 0, p, kMpolFNode | kMpolFAddr) != 0) return -1;
  return node;
}

// move_pages' status for each page overlapping [p, p + size): the node, or
// -errno (-ENOENT: not present); empty when the call fails.
inline std::vector<int> page_statuses(const void* p, std::size_t size) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(p) + size;
  std::vector<void*> pages;
  for (std::uintptr_t at = first; at < end; at += page) {
    pages.push_back(reinterpret_cast<void*>(at));
  }
  std::vector<int> status(pages.size(), INT_MIN);
  if (::syscall(SYS_move_pages, 0, pages.size(), pages.data(), nullptr, status.data(), 0) != 0) {
    return {};
  }
  return status;
}

// nullptr when the NUMA calls work here, else why not.
inline const char* numa_calls_unavailable() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return "mmap failed";
  static_cast<char*>(p)[0] = 1;
  const char* why = nullptr;
  int mode = 0;
  int status = 0;
  if (::syscall(SYS_mbind, p, 4096, kMpolDefault, nullptr, 0, 0) != 0 &&
      (errno == ENOSYS || errno == EPERM)) {
    why = "mbind is unavailable (ENOSYS/EPERM: no NUMA kernel or a seccomp filter)";
  } else if (::syscall(SYS_get_mempolicy, &mode, nullptr, 0, p, kMpolFAddr) != 0 &&
             (errno == ENOSYS || errno == EPERM)) {
    why = "get_mempolicy is unavailable (ENOSYS/EPERM)";
  } else if (::syscall(SYS_move_pages, 0, 1, &p, nullptr, &status, 0) != 0 &&
             (errno == ENOSYS || errno == EPERM)) {
    why = "move_pages is unavailable (ENOSYS/EPERM)";
  }
  ::munmap(p, 4096);
  return why;
}

}  // namespace hpcalloc::numa_queries
