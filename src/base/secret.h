// The per-process secret that keys every structure a misusing program could
// forge: the links of free blocks (small and medium caches, medium free
// lists) and the medium chunk headers (mem/). A program that writes into a
// freed block, or overflows into a neighbour, changes a link or a header
// without the matching key, and the check made before the link is followed
// fails (glibc's safe-linking and mimalloc's encoded free lists protect
// links the same way; ours also authenticate them).
//
// The secret comes from the 16 random bytes the kernel hands every process
// (AT_RANDOM in the auxiliary vector): no system call, no allocation, no
// file, so it can be read during our own initialisation. A fork child keeps
// its parent's secret, as it keeps the parent's free structures.
#pragma once

#include <sys/auxv.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace hpcalloc {

// A 64-bit mixer (the finaliser of SplitMix64): every output bit depends on
// every input bit.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

namespace internal {
inline std::uint64_t read_process_secret() {
  std::uint64_t words[2] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull};
  // AT_RANDOM's bytes also seed glibc's stack and pointer guards: the
  // secret is a mix of them with a constant of ours, never equal to either.
  if (const auto* bytes = reinterpret_cast<const void*>(getauxval(AT_RANDOM)); bytes != nullptr) {
    std::memcpy(words, bytes, sizeof(words));
  }
  const std::uint64_t secret = mix64(words[0] ^ mix64(words[1] ^ 0x6870'6361'6c6c'6f63ull));
  return secret != 0 ? secret : 0x9e3779b97f4a7c15ull;
}
}  // namespace internal

// The process's secret, never 0. Cached in a constant-initialised atomic
// rather than a function-local static with a dynamic initialiser, whose
// guard would need the C++ runtime (__cxa_guard_acquire), which the preload
// library does not link. Racing first callers compute the same value (it
// depends only on AT_RANDOM), so relaxed loads and stores are enough.
inline std::uint64_t process_secret() {
  static constinit std::atomic<std::uint64_t> cached{0};
  std::uint64_t secret = cached.load(std::memory_order_relaxed);
  if (secret == 0) {
    secret = internal::read_process_secret();
    cached.store(secret, std::memory_order_relaxed);
  }
  return secret;
}

// A key for one structure: the secret mixed with the structure's address
// and a constant naming its purpose, so keys differ between heaps and
// between the structures of one heap.
inline std::uint64_t derive_key(std::uint64_t secret, const void* structure,
                                std::uint64_t purpose) {
  return mix64(secret ^ mix64(reinterpret_cast<std::uintptr_t>(structure) ^ purpose)) | 1;
}

}  // namespace hpcalloc
