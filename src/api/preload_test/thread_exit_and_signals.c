/* Run with libhpcalloc.so preloaded. Checks the thread and process edges of
 * the allocator that a plain workload never reaches:
 *   1. threads whose other pthread-key destructors (running after ours, in
 *      later destructor passes) allocate and free: no crash, no leak of
 *      heaps (heaps_created stays bounded over hundreds of such threads);
 *   2. fork() from a signal handler that interrupts the main thread while it
 *      allocates, possibly inside malloc or free: the child allocates, frees
 *      and exits 0. glibc deadlocks here (its fork handler waits for the
 *      arena lock the interrupted free holds), so this check runs only on
 *      hpcalloc. The timer is one-shot, armed again at the end of each
 *      handler: however long a fork and wait take (a loaded machine), the
 *      main loop runs between two signals, and the check makes kForks forks
 *      whatever the speed (a periodic timer shorter than one handler would
 *      be pending again at every return, and the main loop would starve);
 *   3. libnuma, whose use allocates, works under the preload.
 * Exits non-zero with a line per failed check. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <numa.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void fail(const char* what) {
  fprintf(stderr, "FAIL: %s\n", what);
  ++failures;
}

static pthread_key_t late_keys[3];

/* Each destructor allocates, and re-arms its key twice, so allocations
 * happen in destructor passes after hpcalloc's own heap was given back. */
static void late_destructor(void* value) {
  long passes = (long)value;
  char* p = malloc(100 + passes * 1000);
  if (p == NULL) {
    fail("malloc in a TLS destructor returned NULL");
    return;
  }
  memset(p, 0x5a, 100);
  void* q = calloc(10, 300);
  free(p);
  free(q);
  if (passes < 3) {
    for (int k = 0; k < 3; ++k) {
      if (pthread_getspecific(late_keys[k]) == NULL) {
        pthread_setspecific(late_keys[k], (void*)(passes + 1));
      }
    }
  }
}

static void* thread_body(void* arg) {
  (void)arg;
  for (int k = 0; k < 3; ++k) pthread_setspecific(late_keys[k], (void*)1L);
  void* blocks[64];
  for (int i = 0; i < 64; ++i) blocks[i] = malloc((size_t)(i * 61 + 1));
  for (int i = 0; i < 64; i += 2) free(blocks[i]);
  /* The odd ones are freed by the main thread after this thread is gone. */
  void** leftovers = malloc(32 * sizeof(void*));
  for (int i = 0; i < 32; ++i) leftovers[i] = blocks[2 * i + 1];
  return leftovers;
}

static size_t stat_value(const char* name) {
  /* POSIX's way to take a function from dlsym without an object-to-
   * function pointer cast. */
  int (*hpc_stat)(const char*, size_t*);
  void* symbol = dlsym(RTLD_DEFAULT, "hpc_stat");
  memcpy(&hpc_stat, &symbol, sizeof hpc_stat);
  size_t value = 0;
  if (hpc_stat == NULL || hpc_stat(name, &value) != 0) return (size_t)-1;
  return value;
}

static void check_thread_exit(void) {
  for (int k = 0; k < 3; ++k) pthread_key_create(&late_keys[k], late_destructor);
  const size_t created_before = stat_value("heaps_created");
  for (int round = 0; round < 200; ++round) {
    pthread_t threads[2];
    for (int t = 0; t < 2; ++t) pthread_create(&threads[t], NULL, thread_body, NULL);
    for (int t = 0; t < 2; ++t) {
      void** leftovers = NULL;
      pthread_join(threads[t], (void**)&leftovers);
      for (int i = 0; i < 32; ++i) free(leftovers[i]);
      free(leftovers);
    }
  }
  const size_t created_after = stat_value("heaps_created");
  if (created_before == (size_t)-1) {
    printf("hpc_stat not found: not running on hpcalloc, heap-count check skipped\n");
  } else if (created_after - created_before > 6) {
    fprintf(stderr, "heaps created: %zu -> %zu\n", created_before, created_after);
    fail("heaps of exited threads are not reused");
  }
}

enum { kForks = 20 };
static volatile sig_atomic_t forks_done;
static volatile sig_atomic_t fork_failures;
static timer_t alarm_timer;
/* 2 ms of main loop, then one SIGALRM. */
static const struct itimerspec kOneShot = {{0, 0}, {0, 2000000}};

static void on_alarm(int signal_number) {
  (void)signal_number;
  const int saved_errno = errno;
  pid_t pid = fork();
  if (pid == 0) {
    int ok = 1;
    for (int i = 0; i < 1000; ++i) {
      void* p = malloc((size_t)(i % 3000) + 1);
      if (p == NULL) ok = 0;
      p = realloc(p, (size_t)(i % 5000) + 10);
      free(p);
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ++fork_failures;
  }
  ++forks_done;
  /* Armed again only now (timer_settime is async-signal-safe). */
  if (forks_done < kForks) timer_settime(alarm_timer, 0, &kOneShot, NULL);
  errno = saved_errno;
}

static void check_fork_in_signal_handler(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, NULL);
  struct sigevent event;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGALRM;
  if (timer_create(CLOCK_MONOTONIC, &event, &alarm_timer) != 0) {
    fail("timer_create");
    return;
  }
  timer_settime(alarm_timer, 0, &kOneShot, NULL);
  unsigned long i = 0;
  while (forks_done < kForks) {
    void* p = malloc(i % 4000 + 1);
    /* realloc and malloc_trim are slow paths the fork handlers detect (a
     * marked path; the pool's and the sources' locks): a signal landing in
     * one makes the child set this thread's heap aside and start afresh,
     * elsewhere the child keeps the heap. */
    p = realloc(p, i % 6000 + 1);
    free(p);
    if (i % 64 == 0) malloc_trim(0);
    ++i;
  }
  timer_delete(alarm_timer);
  if (fork_failures != 0) fail("a child forked from a signal handler failed");
}

static void check_libnuma(void) {
  if (numa_available() < 0) {
    printf("libnuma: NUMA not available here, allocation checks only\n");
  }
  struct bitmask* mask = numa_allocate_nodemask();
  if (mask == NULL) {
    fail("numa_allocate_nodemask");
    return;
  }
  numa_free_nodemask(mask);
}

int main(void) {
  check_libnuma();
  check_thread_exit();
  if (stat_value("heaps_created") != (size_t)-1) {
    check_fork_in_signal_handler();
  } else {
    printf("not on hpcalloc: fork-in-signal-handler check skipped (glibc deadlocks there)\n");
  }
  if (failures != 0) return 1;
  printf("thread exit, fork in a signal handler, libnuma: all passed\n");
  return 0;
}
