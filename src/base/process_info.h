// What the allocator asks of the process at start-up (an environment
// variable, the page size), read without libc's getenv and sysconf.
//
// Why not those: a program's resident set counts every 64 KiB window of
// libc's code and read-only data that the kernel maps around a page fault.
// getenv, sysconf and sysconf's jump table sat in windows that nothing else
// of a small C program touches: 12 to 35 KiB of its RSS on average (where a
// library loads varies, so which windows a touch shares does too; found
// with `perf record -e page-faults -d`, README, "A small C program"). The environment is libc's own `environ` array, which getenv
// reads too, so both give the same answer at every point of start-up; the
// page size is the kernel's AT_PAGESZ, which sysconf returns as well.
#pragma once

#include <sys/auxv.h>
#include <unistd.h>

#include <cstddef>

namespace hpcalloc {

// The value of variable `name` (its text after '='), or nullptr when unset.
// Does not allocate. The first match wins, as with getenv.
inline const char* env_value(const char* name) {
  char** entries = environ;
  if (entries == nullptr || name == nullptr || name[0] == '\0') return nullptr;
  for (; *entries != nullptr; ++entries) {
    const char* entry = *entries;
    const char* wanted = name;
    while (*wanted != '\0' && *entry == *wanted) {
      ++entry;
      ++wanted;
    }
    if (*wanted == '\0' && *entry == '=') return entry + 1;
  }
  return nullptr;
}

// The system page size; 4096 should the kernel not say (it always does).
inline std::size_t os_page_size() {
  const unsigned long page = getauxval(AT_PAGESZ);
  return page != 0 ? static_cast<std::size_t>(page) : 4096;
}

}  // namespace hpcalloc
