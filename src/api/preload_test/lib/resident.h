/* Helpers the preload tests that measure memory share: the process's
 * resident set from /proc/self/statm (no allocation: open, read, sscanf
 * on a stack buffer) and a sleep in milliseconds. */
#ifndef HPCALLOC_PRELOAD_TEST_RESIDENT_H
#define HPCALLOC_PRELOAD_TEST_RESIDENT_H

#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Resident bytes of this process; 0 when statm cannot be read. */
static inline size_t resident_bytes(void) {
  char text[128] = {0};
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  unsigned long size = 0, resident = 0;
  if (n <= 0 || sscanf(text, "%lu %lu", &size, &resident) != 2) return 0;
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static inline void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

#endif
