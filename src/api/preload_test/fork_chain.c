/* Run with libhpcalloc.so preloaded. A child that lives on after fork()
 * reuses the memory it inherited, and a chain of forks does not pile up
 * heaps: kGenerations processes, each forked by the one before. Every
 * generation
 *   - frees the blocks its parent left it (inherited memory, freed in the
 *     child),
 *   - churns: small, medium and huge blocks, realloc,
 *   - runs a helper thread that allocates and exits, and frees the blocks
 *     the helper left (frees to its pooled heap, adopted by the next helper),
 *   - leaves blocks for the next generation, reports hpc_stat's
 *     heaps_created, heaps_abandoned and mapped_bytes to the test's first
 *     process through a pipe, forks the next generation and exits.
 * The first generation also has a thread still running (blocked) when it
 * forks: the second generation abandons that thread's heap, which must stay
 * the only heap ever abandoned.
 * The first process (a child subreaper, so the orphaned generations are its
 * to reap) checks that every generation reported and exited 0, that the
 * heap counts never grow after the second generation, and that mapped
 * bytes stay within a few MiB of the early generations'. Before the fork
 * handlers were reworked, every child abandoned the forking thread's heap
 * and made a new one: one heap and several MiB more per generation. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
  kGenerations = 1000,
  kCarried = 24,           /* blocks each generation leaves to the next */
  kWarmUp = 20,            /* generations whose figures set the bounds */
  kTestSeconds = 170,      /* watchdog of the whole chain */
  kGenerationSeconds = 30, /* one generation */
};
static const size_t kMappedSlack = (size_t)16 << 20;

struct Report {
  int generation;
  int ok;
  size_t heaps_created;
  size_t heaps_abandoned;
  size_t mapped_bytes;
};

static int (*hpc_stat_fn)(const char*, size_t*);

static size_t stat_value(const char* name) {
  size_t value = 0;
  if (hpc_stat_fn == NULL || hpc_stat_fn(name, &value) != 0) return (size_t)-1;
  return value;
}

static size_t size_for(unsigned i) {
  switch (i % 12) {
    case 0: return 1500 + (i * 131) % 30000;    /* medium, cached sizes */
    case 1: return 40000 + (i * 977) % 200000;  /* medium, free lists */
    case 2: return (3u << 20) + (i % 4) * 4096; /* huge */
    default: return 16 + (i * 37) % 1000;       /* small */
  }
}

static void* carried[kCarried];

static int churn(unsigned seed) {
  int ok = 1;
  for (unsigned i = 0; i < 200; ++i) {
    char* p = malloc(size_for(seed + i));
    if (p == NULL) return 0;
    p[0] = (char)i;
    char* q = realloc(p, size_for(seed + i + 5));
    if (q == NULL || q[0] != (char)i) ok = 0;
    free(q);
  }
  return ok;
}

static void* helper(void* arg) {
  unsigned seed = (unsigned)(long)arg;
  void** left = malloc(32 * sizeof(void*));
  for (unsigned i = 0; i < 64; ++i) {
    void* p = malloc(size_for(seed + i));
    if (i % 2 == 0) {
      free(p);
    } else {
      left[i / 2] = p;
    }
  }
  return left;
}

static int blocker_pipe[2];
static int blocker_ready[2];

/* Volatile: the compiler may not drop a malloc/free pair it can see. */
static void* volatile blocker_block;

static void* blocker(void* arg) {
  (void)arg;
  blocker_block = malloc(5000);
  char byte = 1;
  /* Its heap is attached: the fork may come. */
  if (write(blocker_ready[1], &byte, 1) != 1) abort();
  /* Blocked here, never woken: still running when its process forks. */
  while (read(blocker_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  free(blocker_block);
  return NULL;
}

/* One generation's work and report; 0 when something failed. */
static int generation(int number, int report_fd) {
  /* A generation that hangs dies (SIGALRM) instead of holding the pipe and
   * the test's output open: the chain then breaks and the test fails. */
  alarm(kGenerationSeconds);
  int ok = 1;
  for (int i = 0; i < kCarried; ++i) {
    unsigned char* p = carried[i];
    if (p != NULL && p[0] != (unsigned char)(i + number - 1)) ok = 0;
    free(p);
  }
  ok &= churn((unsigned)number * 7);
  pthread_t t;
  void** left = NULL;
  if (pthread_create(&t, NULL, helper, (void*)(long)number) != 0) {
    ok = 0;
  } else {
    pthread_join(t, (void**)&left);
    for (int i = 0; i < 32; ++i) free(left[i]);
    free(left);
  }
  if (number == 1) {
    pthread_t b;
    char byte;
    if (pipe(blocker_pipe) != 0 || pipe(blocker_ready) != 0 ||
        pthread_create(&b, NULL, blocker, NULL) != 0 || read(blocker_ready[0], &byte, 1) != 1) {
      ok = 0;
    }
  }
  for (int i = 0; i < kCarried; ++i) {
    unsigned char* p = malloc(size_for((unsigned)(number * 3 + i)));
    if (p != NULL) p[0] = (unsigned char)(i + number);
    carried[i] = p;
  }
  struct Report report = {number, ok, stat_value("heaps_created"), stat_value("heaps_abandoned"),
                          stat_value("mapped_bytes")};
  if (write(report_fd, &report, sizeof report) != (ssize_t)sizeof report) ok = 0;
  return ok;
}

/* The chain, from its first generation: each forks the next, which goes on
 * in the same loop, and exits. Does not return. */
static void chain(int report_fd) {
  for (int number = 1;; ++number) {
    const int ok = generation(number, report_fd);
    if (number == kGenerations) _exit(ok ? 0 : 1);
    const pid_t next = fork();
    if (next != 0) _exit(ok && next > 0 ? 0 : 1);
  }
}

static void on_watchdog(int signal_number) {
  (void)signal_number;
  static const char message[] = "FAIL: fork_chain: the chain took too long (a hang?)\n";
  write(STDERR_FILENO, message, sizeof message - 1);
  _exit(1);
}

int main(void) {
  void* symbol = dlsym(RTLD_DEFAULT, "hpc_stat");
  memcpy(&hpc_stat_fn, &symbol, sizeof hpc_stat_fn);
  if (hpc_stat_fn == NULL) {
    printf("hpc_stat not found: not running on hpcalloc, fork chain check skipped\n");
    return 0;
  }
  signal(SIGALRM, on_watchdog);
  alarm(kTestSeconds);
  /* The generations whose parents exit become ours to reap. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t first = fork();
  if (first == 0) {
    close(fds[0]);
    signal(SIGALRM, SIG_DFL);
    alarm(0);
    chain(fds[1]);
  }
  close(fds[1]);
  int failures = 0;
  int reported = 0;
  size_t created_bound = 0, abandoned_bound = 0, mapped_bound = 0;
  size_t created_last = 0, abandoned_last = 0, mapped_max = 0;
  struct Report r;
  while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r) {
    ++reported;
    if (r.generation != reported) {
      fprintf(stderr, "FAIL: generation %d reported as number %d\n", r.generation, reported);
      ++failures;
    }
    if (!r.ok) {
      fprintf(stderr, "FAIL: generation %d: a block lost its contents or an allocation failed\n",
              r.generation);
      ++failures;
    }
    if (r.generation <= kWarmUp) {
      if (r.heaps_created > created_bound) created_bound = r.heaps_created;
      if (r.heaps_abandoned > abandoned_bound) abandoned_bound = r.heaps_abandoned;
      if (r.mapped_bytes > mapped_bound) mapped_bound = r.mapped_bytes;
    } else if (r.heaps_created > created_bound || r.heaps_abandoned > abandoned_bound ||
               r.mapped_bytes > mapped_bound + kMappedSlack) {
      fprintf(stderr,
              "FAIL: generation %d: heaps created %zu, abandoned %zu, mapped %zu bytes; bounds "
              "from the first %d generations: %zu, %zu, %zu + %zu\n",
              r.generation, r.heaps_created, r.heaps_abandoned, r.mapped_bytes, kWarmUp,
              created_bound, abandoned_bound, mapped_bound, kMappedSlack);
      ++failures;
      break;
    }
    created_last = r.heaps_created;
    abandoned_last = r.heaps_abandoned;
    if (r.mapped_bytes > mapped_max) mapped_max = r.mapped_bytes;
  }
  /* Every generation that reported exited 0. Orphans are ours to reap (we
   * are their subreaper); one may still be on its way to us (ECHILD). */
  int reaped = 0;
  for (int idle = 0; reaped < reported && idle < 5000;) {
    int status = 0;
    const pid_t pid = wait(&status);
    if (pid < 0) {
      if (errno == ECHILD) {
        ++idle;
        usleep(1000);
      }
      continue;
    }
    ++reaped;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "FAIL: a generation (pid %d) ended with status 0x%x\n", (int)pid,
              (unsigned)status);
      ++failures;
    }
  }
  if (reaped != reported) {
    fprintf(stderr, "FAIL: %d generations reported but %d were reaped\n", reported, reaped);
    ++failures;
  }
  if (reported != kGenerations && failures == 0) {
    fprintf(stderr, "FAIL: the chain broke after %d of %d generations\n", reported, kGenerations);
    ++failures;
  }
  if (abandoned_bound > 1) {
    fprintf(stderr, "FAIL: %zu heaps abandoned; only the blocked thread's should be\n",
            abandoned_bound);
    ++failures;
  }
  if (failures != 0) return 1;
  printf("fork_chain: %d generations; heaps created %zu, abandoned %zu; mapped at most %zu bytes\n",
         reported, created_last, abandoned_last, mapped_max);
  return 0;
}
