/* Run with libhpcalloc.so preloaded. Checks that HPCALLOC_NUMA places what
 * the standard malloc names return, as the kernel reports it:
 * get_mempolicy(MPOL_F_ADDR) gives the policy of a block's memory and
 * move_pages(nodes = NULL) the node of each touched page.
 *
 * Without arguments this is the driver: it runs itself (the preload
 * inherited) once per policy, then under `numactl --cpunodebind=0
 * --membind=0` (a task policy the library must not disturb), and fails if
 * any run does. With arguments `check POLICY [numactl]` it is one such run:
 *   off          MPOL_DEFAULT, hpc_numa_node_of() == -1;
 *   first-touch  MPOL_DEFAULT, hpc_numa_node_of() a real node;
 *   preferred    MPOL_PREFERRED on {hpc_numa_node_of()};
 *   bind         MPOL_BIND on {hpc_numa_node_of()};
 * for blocks of every size class kind, from the main thread and another
 * thread, and, under every policy, hpc_malloc_on_node(size, 0) is on node 0
 * (MPOL_BIND under bind, MPOL_PREFERRED otherwise). The hpc_* functions are
 * found with dlsym, as the preloaded library exports them.
 * Where the NUMA system calls are missing or forbidden (ENOSYS, EPERM) there
 * is nothing to observe: the program says so and exits 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hpcalloc.h"

/* From <linux/mempolicy.h>; ABI values. */
enum { MODE_DEFAULT = 0, MODE_PREFERRED = 1, MODE_BIND = 2 };
enum { FLAG_ADDR = 2 };
#define MASK_WORDS 16
#define BITS_PER_WORD (8 * sizeof(unsigned long))

static const char* const policies[] = {"off", "first-touch", "preferred", "bind"};
enum { OFF, FIRST_TOUCH, PREFERRED, BIND };

static int failures;
static void fail(const char* what, size_t size, const char* detail, long value) {
  fprintf(stderr, "numa_policy: FAIL: %s (size %zu): %s %ld\n", what, size, detail, value);
  ++failures;
}

static void* lookup(const char* name) {
  void* symbol = dlsym(RTLD_DEFAULT, name);
  if (symbol == NULL) {
    fprintf(stderr, "numa_policy: FAIL: %s not found: is libhpcalloc.so preloaded?\n", name);
    exit(1);
  }
  return symbol;
}

/* POSIX's way to take a function from dlsym without an object-to-function
 * pointer cast. */
static __typeof__(&hpc_numa_node_of) node_of;
static __typeof__(&hpc_numa_node_count) node_count;
static __typeof__(&hpc_malloc_on_node) malloc_on_node;
static __typeof__(&hpc_stat) stat_of;
static void load_api(void) {
  void* symbol = lookup("hpc_numa_node_of");
  memcpy(&node_of, &symbol, sizeof node_of);
  symbol = lookup("hpc_numa_node_count");
  memcpy(&node_count, &symbol, sizeof node_count);
  symbol = lookup("hpc_malloc_on_node");
  memcpy(&malloc_on_node, &symbol, sizeof malloc_on_node);
  symbol = lookup("hpc_stat");
  memcpy(&stat_of, &symbol, sizeof stat_of);
}

static size_t stat_value(const char* name) {
  size_t value = 0;
  if (stat_of(name, &value) != 0) fail("hpc_stat", 0, name, -1);
  return value;
}

/* The mode of the policy at p and whether its node mask is exactly {node}
 * (node -1: empty); -1 when get_mempolicy fails. */
static int policy_at(const void* p, int node, int* mask_matches) {
  unsigned long mask[MASK_WORDS] = {0};
  int mode = -1;
  if (syscall(SYS_get_mempolicy, &mode, mask, MASK_WORDS * BITS_PER_WORD + 1, p, FLAG_ADDR) != 0) {
    return -1;
  }
  unsigned long expected[MASK_WORDS] = {0};
  if (node >= 0) expected[node / BITS_PER_WORD] = 1UL << (node % BITS_PER_WORD);
  *mask_matches = memcmp(mask, expected, sizeof mask) == 0;
  return mode;
}

/* Each page overlapping [p, p + size) is on `node` (-1: on any node). */
static void check_pages(const char* what, const void* p, size_t size, int node) {
  const unsigned long page = (unsigned long)sysconf(_SC_PAGESIZE);
  const unsigned long first = (unsigned long)p & ~(page - 1);
  const unsigned long end = (unsigned long)p + size;
  size_t count = (end - first + page - 1) / page;
  if (count > 4096) count = 4096; /* 16 MiB is plenty */
  void** pages = mmap(NULL, count * (sizeof(void*) + sizeof(int)), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED) {
    fail(what, size, "mmap failed, errno", errno);
    return;
  }
  int* status = (int*)(pages + count);
  for (size_t i = 0; i < count; ++i) pages[i] = (char*)first + i * page;
  if (syscall(SYS_move_pages, 0, count, pages, NULL, status, 0) != 0) {
    fail(what, size, "move_pages failed, errno", errno);
  } else {
    for (size_t i = 0; i < count; ++i) {
      if (status[i] < 0 || (node >= 0 && status[i] != node)) {
        fail(what, size, "a page is on (or -errno)", status[i]);
        break;
      }
    }
  }
  munmap(pages, count * (sizeof(void*) + sizeof(int)));
}

/* A block of a thread's heap under `policy` (touched here). */
static void check_heap_block(const char* what, void* p, size_t size, int policy) {
  if (p == NULL) {
    fail(what, size, "allocation failed, errno", errno);
    return;
  }
  memset(p, 0x6b, size);
  const int node = node_of(p);
  if (policy == OFF ? node != -1 : node < 0 || node >= node_count()) {
    fail(what, size, "hpc_numa_node_of", node);
    return;
  }
  if (node_of((char*)p + size - 1) != node) fail(what, size, "interior node differs", node);
  const int expected_mode[] = {MODE_DEFAULT, MODE_DEFAULT, MODE_PREFERRED, MODE_BIND};
  const int placed = policy == PREFERRED || policy == BIND;
  for (int end = 0; end < 2; ++end) {
    int mask_matches = 0;
    const int mode = policy_at((char*)p + (end ? size - 1 : 0), placed ? node : -1, &mask_matches);
    if (mode != expected_mode[policy]) fail(what, size, "get_mempolicy mode", mode);
    if (mode >= 0 && !mask_matches) fail(what, size, "get_mempolicy mask is wrong; mode", mode);
  }
  check_pages(what, p, size, placed ? node : -1);
}

static const size_t sizes[] = {8,         100,     1000,          5000,   64 << 10,
                               300 << 10, 1 << 20, (2 << 20) + 1, 8 << 20};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])

static void check_thread_heap(const char* who, int policy) {
  void* blocks[SIZE_COUNT];
  char what[64];
  for (size_t i = 0; i < SIZE_COUNT; ++i) {
    snprintf(what, sizeof what, "%s: malloc", who);
    blocks[i] = malloc(sizes[i]);
    check_heap_block(what, blocks[i], sizes[i], policy);
  }
  snprintf(what, sizeof what, "%s: calloc", who);
  void* zeroed = calloc(5, 1 << 20);
  check_heap_block(what, zeroed, 5 << 20, policy);
  snprintf(what, sizeof what, "%s: realloc", who);
  void* grown = malloc(3 << 20);
  for (size_t size = 3 << 20; size <= (24 << 20) && grown != NULL; size *= 2) {
    grown = realloc(grown, size);
    check_heap_block(what, grown, size, policy);
  }
  snprintf(what, sizeof what, "%s: posix_memalign", who);
  void* aligned = NULL;
  if (posix_memalign(&aligned, 4 << 20, 3 << 20) != 0) aligned = NULL;
  check_heap_block(what, aligned, 3 << 20, policy);
  free(aligned);
  free(grown);
  free(zeroed);
  for (size_t i = 0; i < SIZE_COUNT; ++i) free(blocks[i]);
}

/* hpc_malloc_on_node(size, 0): bound to node 0 whatever the policy. */
static void check_on_node(const char* who, int policy) {
  char what[64];
  snprintf(what, sizeof what, "%s: hpc_malloc_on_node", who);
  const int mode = policy == BIND ? MODE_BIND : MODE_PREFERRED;
  for (size_t i = 0; i < SIZE_COUNT; ++i) {
    const size_t size = sizes[i];
    char* p = malloc_on_node(size, 0);
    if (p == NULL) {
      fail(what, size, "NULL, errno", errno);
      continue;
    }
    memset(p, 0x2d, size);
    if (node_of(p) != 0) fail(what, size, "hpc_numa_node_of", node_of(p));
    int mask_matches = 0;
    const int got = policy_at(p, 0, &mask_matches);
    if (got != mode) fail(what, size, "get_mempolicy mode", got);
    if (got >= 0 && !mask_matches) fail(what, size, "get_mempolicy mask is not {0}; mode", got);
    check_pages(what, p, size, 0);
    free(p);
  }
  errno = 0;
  if (malloc_on_node(16, node_count()) != NULL || errno != EINVAL) {
    fail(what, 16, "a node past the last is not EINVAL; errno", errno);
  }
}

static int thread_policy;
static void* thread_body(void* arg) {
  (void)arg;
  check_thread_heap("thread", thread_policy);
  check_on_node("thread", thread_policy);
  return NULL;
}

static const char* numa_calls_unavailable(void) {
  void* p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return "mmap failed";
  *(char*)p = 1;
  const char* why = NULL;
  int mode = 0;
  int status = 0;
  if (syscall(SYS_mbind, p, 4096, MODE_DEFAULT, NULL, 0, 0) != 0 &&
      (errno == ENOSYS || errno == EPERM)) {
    why = "mbind";
  } else if (syscall(SYS_get_mempolicy, &mode, NULL, 0, p, FLAG_ADDR) != 0 &&
             (errno == ENOSYS || errno == EPERM)) {
    why = "get_mempolicy";
  } else if (syscall(SYS_move_pages, 0, 1, &p, NULL, &status, 0) != 0 &&
             (errno == ENOSYS || errno == EPERM)) {
    why = "move_pages";
  }
  munmap(p, 4096);
  return why;
}

static int check(const char* policy_name, int under_numactl) {
  int policy = -1;
  for (int i = 0; i < 4; ++i) {
    if (strcmp(policy_name, policies[i]) == 0) policy = i;
  }
  if (policy < 0) {
    fprintf(stderr, "numa_policy: unknown policy %s\n", policy_name);
    return 2;
  }
  alarm(30); /* a hang fails the run */
  load_api();
  if (under_numactl) {
    /* numactl's MPOL_BIND {0} is the task's policy, not the ranges'. */
    unsigned long mask[MASK_WORDS] = {0};
    int mode = -1;
    if (syscall(SYS_get_mempolicy, &mode, mask, MASK_WORDS * BITS_PER_WORD + 1, NULL, 0) != 0 ||
        mode != MODE_BIND || mask[0] != 1) {
      fail("numactl", 0, "the task policy is not MPOL_BIND {0}; mode", mode);
    }
  }
  /* volatile: the compiler may drop an unused malloc and free pair. */
  char* volatile probe = malloc(8 << 20);
  if (stat_value("huge_blocks") < 1) fail("malloc", 8 << 20, "not served by hpcalloc", 0);
  free(probe);
  check_thread_heap("main", policy);
  check_on_node("main", policy);
  thread_policy = policy;
  pthread_t thread;
  if (pthread_create(&thread, NULL, thread_body, NULL) != 0) {
    fail("pthread_create", 0, "errno", errno);
  } else {
    pthread_join(thread, NULL);
  }
  if (stat_value("numa_bind_failures") != 0) {
    fail("hpc_stat", 0, "numa_bind_failures", (long)stat_value("numa_bind_failures"));
  }
  return failures == 0 ? 0 : 1;
}

/* Runs argv with HPCALLOC_NUMA=policy; its exit status (127: not found). */
static int run(char* const argv[], const char* policy) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setenv("HPCALLOC_NUMA", policy, 1);
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "check") == 0) {
    return check(argv[2], argc >= 4 && strcmp(argv[3], "numactl") == 0);
  }
  const char* why = numa_calls_unavailable();
  if (why != NULL) {
    printf("numa_policy: %s is unavailable here (ENOSYS/EPERM): nothing to check\n", why);
    return 0;
  }
  const char* preload = getenv("LD_PRELOAD");
  if (preload == NULL || strstr(preload, "hpcalloc") == NULL) {
    fprintf(stderr, "numa_policy: FAIL: run me with libhpcalloc.so in LD_PRELOAD\n");
    return 1;
  }
  /* Our own path: numactl execs it, so /proc/self/exe would be numactl. */
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  if (length <= 0) {
    fprintf(stderr, "numa_policy: FAIL: readlink(/proc/self/exe), errno %d\n", errno);
    return 1;
  }
  self[length] = '\0';
  char check_arg[] = "check";
  char numactl_arg[] = "numactl";
  int failed = 0;
  for (int i = 0; i < 4; ++i) {
    char* args[] = {self, check_arg, (char*)policies[i], NULL};
    const int status = run(args, policies[i]);
    printf("numa_policy: HPCALLOC_NUMA=%s: %s\n", policies[i], status == 0 ? "ok" : "FAILED");
    if (status != 0) failed = 1;
  }
  if (access("/sys/devices/system/node/node0", F_OK) != 0) {
    printf("numa_policy: no node 0: numactl run skipped\n");
  } else {
    const char* const numactl_policies[] = {"first-touch", "bind"};
    for (int i = 0; i < 2; ++i) {
      char numactl[] = "numactl";
      char cpus[] = "--cpunodebind=0";
      char mems[] = "--membind=0";
      char* args[] = {numactl,     cpus, mems, self, check_arg, (char*)numactl_policies[i],
                      numactl_arg, NULL};
      const int status = run(args, numactl_policies[i]);
      if (status == 127) {
        printf("numa_policy: numactl not found: its run skipped\n");
        break;
      }
      printf("numa_policy: numactl --cpunodebind=0 --membind=0, HPCALLOC_NUMA=%s: %s\n",
             numactl_policies[i], status == 0 ? "ok" : "FAILED");
      if (status != 0) failed = 1;
    }
  }
  return failed;
}
