/* Run with libhpcalloc.so preloaded. The background thread
 * (HPCALLOC_BACKGROUND_THREAD=1) end to end, in the resident set
 * (/proc/self/statm): a worker grows to about 60 MB (small and medium
 * blocks, and huge ones that end in the mapping cache) and exits; the main
 * thread then frees what the worker handed it (remote frees into the
 * worker's pooled heap) and sleeps without calling the allocator. With
 * HPCALLOC_DECAY_MS=100 and the background thread, the resident set must
 * fall to within 12 MB of where it started (waits up to 20 s, so a busy
 * machine only makes it slower), and the thread must be there by its name
 * (hpcalloc-decay); a fork's child that starts a thread must have one too.
 * Without it, nothing may go back during 2 s of sleep (no slow path runs):
 * the resident set keeps at least 40 MB, which shows the bound can fail.
 * The program runs itself once per setting (the library reads the
 * variables when it loads). Exits non-zero with a line per failed check. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preload_test/lib/resident.h"

enum { kSmall = 40000, kMedium = 200, kHuge = 5 };
static const size_t kMB = 1000 * 1000;
static void* handed[kSmall + kMedium + kHuge];

/* Allocates everything, frees half itself, hands the other half over. */
static void* worker(void* arg) {
  (void)arg;
  size_t n = 0;
  for (int i = 0; i < kSmall; ++i) handed[n++] = malloc(256);
  for (int i = 0; i < kMedium; ++i) handed[n++] = malloc(50 * 1024);
  for (int i = 0; i < kHuge; ++i) handed[n++] = malloc(8 * 1024 * 1024);
  for (size_t i = 0; i < n; ++i) {
    if (handed[i] == NULL) abort();
    memset(handed[i], 0x5a, i < kSmall ? 256 : i < kSmall + kMedium ? 50 * 1024 : 8 << 20);
  }
  for (size_t i = 0; i < n; i += 2) {
    free(handed[i]);
    handed[i] = NULL;
  }
  return NULL;
}

/* Whether a thread of this process is named hpcalloc-decay. */
static int has_background_thread(void) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == NULL) return 0;
  int found = 0;
  for (struct dirent* e; (e = readdir(dir)) != NULL && !found;) {
    if (e->d_name[0] == '.') continue;
    char path[300];
    char name[32] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (read(fd, name, sizeof name - 1) > 0 && strncmp(name, "hpcalloc-decay", 14) == 0) found = 1;
    close(fd);
  }
  closedir(dir);
  return found;
}

static void* attach(void* arg) {
  char* volatile p = malloc(64); /* attaches a heap (volatile: not elided) */
  if (p == NULL) abort();
  p[0] = 1;
  free(p);
  return arg;
}

/* A fork's child has no background thread until it attaches a heap. */
static int child_restarts_it(void) {
  const pid_t child = fork();
  if (child == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, attach, NULL) != 0 || pthread_join(t, NULL) != 0) _exit(2);
    for (int i = 0; i < 500 && !has_background_thread(); ++i) sleep_ms(10);
    _exit(has_background_thread() ? 0 : 1);
  }
  int wstatus = 0;
  return child > 0 && waitpid(child, &wstatus, 0) == child && WIFEXITED(wstatus) &&
         WEXITSTATUS(wstatus) == 0;
}

static int run(int background) {
  const size_t start = resident_bytes();
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0) abort();
  for (size_t i = 0; i < sizeof handed / sizeof handed[0]; ++i) free(handed[i]);
  const size_t peak = resident_bytes();
  int failures = 0;
  if (peak < start + 50 * kMB) {
    printf("FAIL: the program did not grow (%zu -> %zu bytes resident)\n", start, peak);
    ++failures;
  }
  /* From here on no allocator call until the end of the wait. */
  size_t after = peak;
  if (background) {
    for (int i = 0; i < 2000 && after > start + 12 * kMB; ++i) {
      sleep_ms(10);
      after = resident_bytes();
    }
    if (after > start + 12 * kMB) {
      printf(
          "FAIL: with the background thread: resident %zu bytes after 20 s (start %zu, peak %zu)\n",
          after, start, peak);
      ++failures;
    }
    if (!has_background_thread()) {
      printf("FAIL: no thread named hpcalloc-decay\n");
      ++failures;
    }
    if (!child_restarts_it()) {
      printf("FAIL: a fork's child that starts a thread has no background thread\n");
      ++failures;
    }
  } else {
    sleep_ms(2000);
    after = resident_bytes();
    if (after < start + 40 * kMB) {
      printf(
          "FAIL: without the background thread, memory went back with no slow path "
          "(%zu -> %zu -> %zu bytes)\n",
          start, peak, after);
      ++failures;
    }
    if (has_background_thread()) {
      printf("FAIL: a background thread runs though HPCALLOC_BACKGROUND_THREAD=0\n");
      ++failures;
    }
  }
  printf("HPCALLOC_BACKGROUND_THREAD=%d: resident %zu -> %zu -> %zu bytes\n", background, start,
         peak, after);
  return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  (void)argc;
  const char* background = getenv("HPCALLOC_BACKGROUND_THREAD");
  if (background != NULL) return run(strcmp(background, "1") == 0);
  int status = 0;
  const char* settings[] = {"1", "0"};
  for (int i = 0; i < 2; ++i) {
    const pid_t child = fork();
    if (child == 0) {
      setenv("HPCALLOC_BACKGROUND_THREAD", settings[i], 1);
      setenv("HPCALLOC_DECAY_MS", "100", 1);
      execv("/proc/self/exe", argv);
      _exit(127);
    }
    int wstatus = 0;
    if (child < 0 || waitpid(child, &wstatus, 0) != child || !WIFEXITED(wstatus) ||
        WEXITSTATUS(wstatus) != 0) {
      printf("FAIL: the run with HPCALLOC_BACKGROUND_THREAD=%s failed\n", settings[i]);
      status = 1;
    }
  }
  if (status == 0) printf("background_thread_rss: ok\n");
  return status;
}
