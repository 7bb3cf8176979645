/* Run with libhpcalloc.so preloaded. Each misuse runs in a child of its own
 * (the default configuration aborts at the first) and must end it with
 * SIGABRT and exactly one line on stderr naming the call the program made,
 * the kind of misuse and an address, in hpcalloc's one format:
 *   hpcalloc: fatal: <call>(): <what> 0x...
 * The cases are the ones the hardening issue found crashing inside glibc,
 * or naming the wrong call: free() of a stack address, of (void*)1 and of a
 * global (pointers that cannot be glibc blocks are no longer forwarded to
 * glibc), realloc() and malloc_usable_size() of a freed block, and
 * realloc() of a pointer hpcalloc never returned. Also: HPCALLOC_STATS_FILE
 * naming a file that cannot be opened gives one warning, and the summary
 * goes to stderr instead of being lost. Under the secure flavour
 * (libhpcalloc-secure.so, which this test also runs with), an overflow by
 * one byte and a write into a freed block are reported too.
 * Exits non-zero with a line per failed check. */
#define _GNU_SOURCE
/* The misuse is the point: the compiler's own warnings about it are off. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static char global_buffer[64] __attribute__((aligned(16)));

typedef void (*Misuse)(void);

static void free_stack_address(void) {
  char local[64] __attribute__((aligned(16)));
  memset(local, 0, sizeof local);
  free(local);
}
static void free_one(void) { free((void*)1); }
static void free_global(void) { free(global_buffer); }
static void realloc_freed_small(void) {
  void* p = malloc(40);
  free(p);
  void* volatile q = realloc(p, 80);
  (void)q;
}
static void realloc_freed_medium(void) {
  void* p = malloc(4096);
  free(p);
  void* volatile q = realloc(p, 8192);
  (void)q;
}
static void usable_size_freed(void) {
  void* p = malloc(200);
  free(p);
  volatile size_t n = malloc_usable_size(p);
  (void)n;
}
static void realloc_stack_address(void) {
  char local[64] __attribute__((aligned(16)));
  void* volatile q = realloc(local, 128);
  (void)q;
}
static void usable_size_global(void) {
  volatile size_t n = malloc_usable_size(global_buffer);
  (void)n;
}
/* The pointer, hidden from the optimiser (which may drop a store it can
 * prove out of bounds or after free). */
static char* launder(void* p) {
  __asm__ volatile("" : "+r"(p));
  return (char*)p;
}
static void overflow_by_one(void) {
  char* p = malloc(32);
  launder(p)[32] = 'x';
  free(p);
}
static void write_after_free(void) {
  char* p = malloc(32);
  free(p);
  launder(p)[20] = 'x';
  void* blocks[300];
  for (int i = 0; i < 300; ++i) blocks[i] = malloc(32);
  for (int i = 0; i < 300; ++i) free(blocks[i]);
}

/* A function the preloaded library exports (the C++ operators by their
 * mangled names: this is a C program), copied into *fn (ISO C has no cast
 * from dlsym's object pointer to a function pointer). */
static void find_symbol(const char* name, void* fn, size_t size) {
  void* found = dlsym(RTLD_DEFAULT, name);
  if (found == NULL || size != sizeof found) {
    fprintf(stderr, "FAIL: %s is not exported\n", name);
    exit(1);
  }
  memcpy(fn, &found, size);
}
static void operator_delete_twice(void) {
  void (*op_delete)(void*);
  find_symbol("_ZdlPv", &op_delete, sizeof op_delete); /* operator delete(void*) */
  char* p = malloc(48);
  op_delete(p);
  op_delete(launder(p));
}
static void sized_operator_delete_twice(void) {
  void (*op_delete)(void*, size_t);
  find_symbol("_ZdlPvm", &op_delete, sizeof op_delete); /* operator delete(void*, size_t) */
  char* p = malloc(5000);
  op_delete(p, 5000);
  op_delete(launder(p), 5000);
}
static void small_sized_operator_delete_twice(void) {
  void (*op_delete)(void*, size_t);
  find_symbol("_ZdlPvm", &op_delete, sizeof op_delete);
  char* p = malloc(48);
  op_delete(p, 48);
  op_delete(launder(p), 48);
}
static void free_sized_twice(void) {
  void (*sized_free)(void*, size_t);
  find_symbol("free_sized", &sized_free, sizeof sized_free);
  char* p = malloc(48);
  sized_free(p, 48);
  sized_free(launder(p), 48);
}
/* A write into a cached block's link, found by the aligned allocation that
 * takes the block next: the report names that call. */
static char* freed_with_overwritten_link(void) {
  char* p = malloc(32);
  free(p);
  memset(launder(p), 0x41, 8);
  return p;
}
static void posix_memalign_after_a_write_after_free(void) {
  freed_with_overwritten_link();
  void* q = NULL;
  (void)posix_memalign(&q, 16, 32);
}
static void aligned_alloc_after_a_write_after_free(void) {
  freed_with_overwritten_link();
  void* volatile q = aligned_alloc(16, 32);
  (void)q;
}
/* operator new takes the block from the cache itself (its own fast path):
 * the overwritten link must be found there too. */
static void operator_new_after_a_write_after_free(void) {
  void* (*op_new)(size_t);
  find_symbol("_Znwm", &op_new, sizeof op_new); /* operator new(size_t) */
  freed_with_overwritten_link();
  void* volatile q = op_new(32);
  (void)q;
}

/* The preloaded library's flavour ("default" or "secure"). */
static const char* flavour(void) {
  void* found = dlsym(RTLD_DEFAULT, "hpc_flavour");
  if (found == NULL) return "none";
  const char* (*hpc_flavour)(void);
  memcpy(&hpc_flavour, &found, sizeof hpc_flavour);
  return hpc_flavour();
}

/* Runs child() in a forked child whose stderr goes to a pipe; returns its
 * wait status, with what it wrote to stderr in out (NUL-terminated). */
static int run_captured(void (*child)(const void*), const void* arg, char* out, size_t cap) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(2);
  }
  fflush(NULL);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    child(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t got = 0;
  ssize_t n;
  while (got < cap - 1 && (n = read(fds[0], out + got, cap - 1 - got)) > 0) got += (size_t)n;
  out[got] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

static void call_misuse(const void* misuse) { (*(const Misuse*)misuse)(); }

/* Runs misuse() in a child; checks the child died of SIGABRT after printing
 * exactly `want` as the start of its only line. */
static void expect_abort(const char* name, Misuse misuse, const char* want) {
  char out[1024];
  const int status = run_captured(call_misuse, &misuse, out, sizeof out);
  const char* newline = strchr(out, '\n');
  const int one_line = newline != NULL && newline[1] == '\0';
  const int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  if (!aborted || !one_line || strncmp(out, want, strlen(want)) != 0 ||
      strstr(out, " 0x") == NULL) {
    fprintf(stderr, "FAIL: %s: %s, stderr \"%s\", want one line starting \"%s\"\n", name,
            aborted ? "aborted" : "did not abort", out, want);
    ++failures;
  }
}

static void run_stats_child(const void* self) {
  setenv("HPCALLOC_STATS_FILE", "/nonexistent-hpcalloc-dir/stats.txt", 1);
  execl((const char*)self, (const char*)self, "stats-child", (char*)NULL);
  _exit(3);
}

/* Runs this program again as "stats-child" (it allocates, overwrites the
 * variable's value and exits 0) with HPCALLOC_STATS_FILE naming a file in a
 * directory that does not exist. */
static void expect_stats_file_warning(const char* self) {
  char out[8192];
  const int status = run_captured(run_stats_child, self, out, sizeof out);
  const char* want =
      "hpcalloc: warning: cannot open HPCALLOC_STATS_FILE /nonexistent-hpcalloc-dir/stats.txt";
  const char* warning = strstr(out, want);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || warning != out ||
      strstr(warning + 1, "hpcalloc: warning") != NULL ||
      strstr(out, "\nhpcalloc: stats: heaps created") == NULL) {
    fprintf(stderr, "FAIL: HPCALLOC_STATS_FILE unopenable: status %d, stderr \"%s\"\n", status,
            out);
    ++failures;
  }
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "stats-child") == 0) {
    free(malloc(100));
    /* Then scribble over the variable's value, as programs that set their
     * process title do (redis): the summary at exit must still name the
     * file hpcalloc was given. */
    char* value = getenv("HPCALLOC_STATS_FILE");
    if (value != NULL) memset(value, 'x', strlen(value));
    return 0;
  }
  expect_stats_file_warning(argv[0]);
  expect_abort("free of a stack address", free_stack_address,
               "hpcalloc: fatal: free(): pointer not allocated by hpcalloc: ");
  expect_abort("free((void*)1)", free_one,
               "hpcalloc: fatal: free(): pointer not allocated by hpcalloc: ");
  expect_abort("free of a global", free_global,
               "hpcalloc: fatal: free(): pointer not allocated by hpcalloc: ");
  expect_abort("realloc of a freed small block", realloc_freed_small,
               "hpcalloc: fatal: realloc(): use of freed block ");
  expect_abort("realloc of a freed medium block", realloc_freed_medium,
               "hpcalloc: fatal: realloc(): use of freed block ");
  expect_abort("malloc_usable_size of a freed block", usable_size_freed,
               "hpcalloc: fatal: malloc_usable_size(): use of freed block ");
  expect_abort("realloc of a stack address", realloc_stack_address,
               "hpcalloc: fatal: realloc(): pointer not allocated by hpcalloc: ");
  expect_abort("malloc_usable_size of a global", usable_size_global,
               "hpcalloc: fatal: malloc_usable_size(): pointer not allocated by hpcalloc: ");
  const char* want_flavour = getenv("HPCALLOC_EXPECT_FLAVOUR");
  if (want_flavour != NULL && strcmp(flavour(), want_flavour) != 0) {
    fprintf(stderr, "FAIL: the preloaded library is the %s flavour, not %s\n", flavour(),
            want_flavour);
    ++failures;
  }
  expect_abort("operator delete twice", operator_delete_twice,
               "hpcalloc: fatal: operator delete: double free of ");
  expect_abort("sized operator delete twice", sized_operator_delete_twice,
               "hpcalloc: fatal: operator delete: double free of ");
  expect_abort("sized operator delete of a small block twice", small_sized_operator_delete_twice,
               "hpcalloc: fatal: operator delete: double free of ");
  expect_abort("free_sized twice", free_sized_twice,
               "hpcalloc: fatal: free_sized(): double free of ");
  if (strcmp(flavour(), "default") == 0) {
    /* (The secure flavour reports the write when the block leaves its
     * quarantine, under whichever call that is.) */
    expect_abort("posix_memalign after a write after free", posix_memalign_after_a_write_after_free,
                 "hpcalloc: fatal: posix_memalign(): corrupted free block ");
    expect_abort("aligned_alloc after a write after free", aligned_alloc_after_a_write_after_free,
                 "hpcalloc: fatal: aligned_alloc(): corrupted free block ");
    expect_abort("operator new after a write after free", operator_new_after_a_write_after_free,
                 "hpcalloc: fatal: malloc(): corrupted free block ");
  }
  if (strcmp(flavour(), "secure") == 0) {
    expect_abort("an overflow by one byte", overflow_by_one,
                 "hpcalloc: fatal: free(): write past the end of block ");
    expect_abort("a write into a freed block", write_after_free,
                 "hpcalloc: fatal: free(): write into freed block ");
  }
  return failures == 0 ? 0 : 1;
}
