/* Run with libhpcalloc.so preloaded. Modelled on glibc's
 * tst-malloc-fork-deadlock (which hung 2 runs in 5 on hpcalloc before the
 * fork handlers were reworked): in one run,
 *   - kForkers threads fork at the same time, kForksEach times each; every
 *     child frees a block its parent thread left it, allocates, reads a file
 *     through stdio (which allocates its buffer) and exits 0;
 *   - kAllocators threads allocate and free blocks of every size class
 *     (small, medium, huge), free each other's blocks and read files;
 *   - a churn thread keeps starting threads that allocate and exit (their
 *     heaps are pooled under the pool's lock, and trimmed, while the forks
 *     take the same locks).
 * The test makes kRuns such runs in a row, each in a fresh process (this
 * program executed again with --run), and fails on the first run or child
 * that fails. Hangs are failures, not ctest timeouts: every run and every
 * child arms alarm() first (SIGALRM kills it; the test reports which), and
 * the whole test has a watchdog of its own. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
  kRuns = 200,
  kForkers = 3,
  kForksEach = 3,
  kAllocators = 2,
  kRunSeconds = 30,   /* one run (it takes milliseconds) */
  kChildSeconds = 20, /* one child of a run */
  kTestSeconds = 170, /* all runs: under ctest's default timeout */
};

static atomic_bool stop;

static size_t size_for(unsigned i) {
  switch (i % 16) {
    case 0: return 1500 + i % 30000;            /* medium */
    case 1: return (1u << 20) + (i % 5) * 4096; /* huge */
    default: return 16 + (i * 37) % 1000;       /* small */
  }
}

/* Reads a small file through stdio: fopen allocates the FILE and its buffer. */
static int read_file(void) {
  FILE* f = fopen("/proc/self/stat", "r");
  if (f == NULL) return 0;
  char line[256];
  int ok = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  return ok;
}

static void child(void* inherited) {
  alarm(kChildSeconds);
  int ok = inherited != NULL && ((unsigned char*)inherited)[0] == 0x5a;
  free(inherited);
  for (unsigned i = 0; i < 200; ++i) {
    char* p = malloc(size_for(i));
    if (p == NULL) ok = 0;
    if (p != NULL) p[0] = (char)i;
    char* q = realloc(p, size_for(i + 3));
    if (q == NULL || q[0] != (char)i) ok = 0;
    free(q);
  }
  if (!read_file()) ok = 0;
  _exit(ok ? 0 : 1);
}

static void* forker(void* arg) {
  long failures = 0;
  for (int f = 0; f < kForksEach; ++f) {
    unsigned char* inherited = malloc(size_for((unsigned)((long)arg * 7 + f)));
    if (inherited != NULL) inherited[0] = 0x5a;
    pid_t pid = fork();
    if (pid == 0) child(inherited);
    free(inherited);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
      fprintf(stderr, "FAIL: fork or waitpid failed\n");
      ++failures;
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      fprintf(stderr, "FAIL: a child hung (its alarm killed it after %d s)\n", kChildSeconds);
      ++failures;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "FAIL: a child failed (status 0x%x)\n", (unsigned)status);
      ++failures;
    }
  }
  return (void*)failures;
}

static _Atomic(void*) slots[8];

static void* allocator(void* arg) {
  unsigned seed = (unsigned)(long)arg * 1000;
  for (unsigned i = 0; !atomic_load(&stop); ++i) {
    void* blocks[8];
    for (int b = 0; b < 8; ++b) {
      blocks[b] = malloc(size_for(seed + i * 8 + (unsigned)b));
      if (blocks[b] != NULL) memset(blocks[b], b, 16);
    }
    /* One block goes to whichever thread comes next: remote frees. */
    free(atomic_exchange(&slots[i % 8], blocks[0]));
    for (int b = 1; b < 8; ++b) free(blocks[b]);
    if (i % 32 == 0) read_file();
  }
  return NULL;
}

static void* short_lived(void* arg) {
  (void)arg;
  void** kept = malloc(16 * sizeof(void*));
  for (unsigned i = 0; i < 32; ++i) {
    void* p = malloc(size_for(i));
    if (i % 2 == 0) {
      free(p);
    } else {
      kept[i / 2] = p;
    }
  }
  return kept; /* freed by the churn thread once this one is gone */
}

static void* churn(void* arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    pthread_t t;
    void** kept = NULL;
    if (pthread_create(&t, NULL, short_lived, NULL) != 0) continue;
    pthread_join(t, (void**)&kept);
    for (int i = 0; i < 16; ++i) free(kept[i]);
    free(kept);
  }
  return NULL;
}

/* One run (a process of its own): exit status 0 when every child was fine. */
static int run_once(void) {
  alarm(kRunSeconds);
  pthread_t background[kAllocators + 1];
  for (long a = 0; a < kAllocators; ++a) pthread_create(&background[a], NULL, allocator, (void*)a);
  pthread_create(&background[kAllocators], NULL, churn, NULL);
  pthread_t forkers[kForkers];
  for (long f = 0; f < kForkers; ++f) pthread_create(&forkers[f], NULL, forker, (void*)f);
  long failures = 0;
  for (int f = 0; f < kForkers; ++f) {
    void* result = NULL;
    pthread_join(forkers[f], &result);
    failures += (long)result;
  }
  atomic_store(&stop, 1);
  for (int b = 0; b <= kAllocators; ++b) pthread_join(background[b], NULL);
  for (int s = 0; s < 8; ++s) free(atomic_exchange(&slots[s], NULL));
  return failures == 0 ? 0 : 1;
}

static volatile pid_t current_run;

static void on_test_watchdog(int signal_number) {
  (void)signal_number;
  static const char message[] = "FAIL: fork_deadlock: the runs took too long (a hang?)\n";
  if (current_run > 0) kill(current_run, SIGKILL);
  write(STDERR_FILENO, message, sizeof message - 1);
  _exit(1);
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--run") == 0) return run_once();
  signal(SIGALRM, on_test_watchdog);
  alarm(kTestSeconds);
  for (int run = 0; run < kRuns; ++run) {
    pid_t pid = fork();
    if (pid == 0) {
      /* The alarm and the handler are not carried over: the run arms its own. */
      signal(SIGALRM, SIG_DFL);
      execl("/proc/self/exe", argv[0], "--run", (char*)NULL);
      _exit(127);
    }
    current_run = pid;
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
      fprintf(stderr, "FAIL: run %d: fork or waitpid failed\n", run);
      return 1;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      fprintf(stderr, "FAIL: run %d hung (its alarm killed it after %d s)\n", run, kRunSeconds);
      return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "FAIL: run %d failed (status 0x%x)\n", run, (unsigned)status);
      return 1;
    }
  }
  printf(
      "fork_deadlock: %d runs of %d threads forking %d times each while %d allocate: all passed\n",
      kRuns, kForkers, kForksEach, kAllocators);
  return 0;
}
