/* Run with libhpcalloc.so preloaded. Decay end to end, measured where users
 * see it, in the resident set (/proc/self/statm): a program grows to about
 * 100 MB of small, medium and huge blocks, frees all but one block in fifty,
 * then keeps making a medium request every 10 ms (slow paths, where decay
 * runs). With HPCALLOC_DECAY_MS=100 its resident set must fall to within
 * 24 MB of where it started (the kept blocks pin their pages: one page in
 * three of the small runs; 40 MB for the secure flavour, whose quarantine
 * holds freed blocks and whose slots are larger); with HPCALLOC_DECAY_MS=-1 it must keep at least
 * 60 MB after a second of the same, which shows the bound can fail. The
 * program runs itself once per setting (the library reads the variable when
 * it loads). Waits up to 20 s for the fall, so a busy machine only makes it
 * slower. Exits non-zero with a line per failed check. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preload_test/lib/resident.h"

enum { kSmall = 100000, kMedium = 1000, kHuge = 4, kKeepOneIn = 50 };
static const size_t kMB = 1000 * 1000;

/* One slow path: a medium request (the heap reads the decay clock). */
static void medium_request(void) {
  for (int i = 0; i < 8; ++i) {
    char* p = malloc(100 * 1024);
    if (p == NULL) abort();
    p[0] = 1;
    free(p);
  }
}

/* Grows, frees all but one block in kKeepOneIn; returns the kept blocks. */
static void** grow_and_free(size_t* kept_count) {
  const size_t total = kSmall + kMedium + kHuge;
  void** blocks = calloc(total, sizeof(void*));
  void** kept = calloc(total / kKeepOneIn + 8, sizeof(void*));
  if (blocks == NULL || kept == NULL) abort();
  size_t n = 0;
  for (int i = 0; i < kSmall; ++i) blocks[n++] = malloc(256);
  for (int i = 0; i < kMedium; ++i) blocks[n++] = malloc(50 * 1024);
  for (int i = 0; i < kHuge; ++i) blocks[n++] = malloc(8 * 1024 * 1024);
  for (size_t i = 0; i < n; ++i) {
    if (blocks[i] == NULL) abort();
    memset(blocks[i], 0x5a, i < kSmall ? 256 : i < kSmall + kMedium ? 50 * 1024 : 8 << 20);
  }
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % kKeepOneIn == 0) {
      kept[k++] = blocks[i];
    } else {
      free(blocks[i]);
    }
  }
  free(blocks);
  *kept_count = k;
  return kept;
}

static int run(const char* delay) {
  const char* flavour = getenv("HPCALLOC_EXPECT_FLAVOUR");
  const size_t bound = (flavour != NULL && strcmp(flavour, "secure") == 0 ? 40 : 24) * kMB;
  const size_t start = resident_bytes();
  size_t kept_count = 0;
  void** kept = grow_and_free(&kept_count);
  const size_t peak = resident_bytes();
  int failures = 0;
  if (peak < start + 80 * kMB) {
    printf("FAIL: the program did not grow (%zu -> %zu bytes resident)\n", start, peak);
    ++failures;
  }
  if (strcmp(delay, "-1") == 0) {
    for (int i = 0; i < 100; ++i) {
      medium_request();
      sleep_ms(10);
    }
    const size_t after = resident_bytes();
    if (after < start + 60 * kMB) {
      printf("FAIL: HPCALLOC_DECAY_MS=-1 gave memory back (%zu -> %zu -> %zu bytes)\n", start, peak,
             after);
      ++failures;
    }
  } else {
    size_t after = peak;
    for (int i = 0; i < 2000 && after > start + bound; ++i) {
      medium_request();
      sleep_ms(10);
      after = resident_bytes();
    }
    if (after > start + bound) {
      printf("FAIL: HPCALLOC_DECAY_MS=%s: resident %zu bytes after 20 s (start %zu, peak %zu)\n",
             delay, after, start, peak);
      ++failures;
    } else {
      printf("HPCALLOC_DECAY_MS=%s: resident %zu -> %zu -> %zu bytes\n", delay, start, peak, after);
    }
  }
  for (size_t i = 0; i < kept_count; ++i) free(kept[i]);
  free(kept);
  return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  (void)argc;
  const char* delay = getenv("HPCALLOC_DECAY_MS");
  if (delay != NULL) return run(delay);
  int status = 0;
  const char* settings[] = {"100", "-1"};
  for (int i = 0; i < 2; ++i) {
    const pid_t child = fork();
    if (child == 0) {
      setenv("HPCALLOC_DECAY_MS", settings[i], 1);
      execv("/proc/self/exe", argv);
      _exit(127);
    }
    int wstatus = 0;
    if (child < 0 || waitpid(child, &wstatus, 0) != child || !WIFEXITED(wstatus) ||
        WEXITSTATUS(wstatus) != 0) {
      printf("FAIL: the run with HPCALLOC_DECAY_MS=%s failed\n", settings[i]);
      status = 1;
    }
  }
  if (status == 0) printf("decay_rss: ok\n");
  return status;
}
