/* bench_runner_spawn: starts one workload run for the runner (measure.py)
 * and reports the child's exit status and resource usage.
 *
 *   bench_runner_spawn REPORT PRELOAD PROGRAM [ARGS...]
 *
 * Why not wait4 from Python directly: Linux keeps the peak RSS of the memory
 * image a process had before execve in its ru_maxrss, and a child forked (or
 * vforked) from the runner starts with the Python interpreter's image, so
 * every workload would report at least the runner's size (tens of MiB).
 * Forked from this small program instead, the floor is this program's size
 * (about 1 MiB) and ru_maxrss is the workload's own peak.
 *
 * The child gets LD_PRELOAD=PRELOAD (none if PRELOAD is empty); this program
 * itself runs without the allocator under test. When the child has ended,
 * REPORT gets one line
 *   status=<wait status> maxrss_kib=<n> utime=<s> stime=<s>
 * and the exit code is 0. Exit 2: bad usage; 1: fork, wait4 or the report
 * failed. A child whose exec fails exits 127 with a message on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static double seconds(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_runner_spawn REPORT PRELOAD PROGRAM [ARGS...]\n");
    return 2;
  }
  const char* report_path = argv[1];
  const char* preload = argv[2];

  pid_t child = fork();
  if (child < 0) {
    perror("bench_runner_spawn: fork");
    return 1;
  }
  if (child == 0) {
    if (preload[0] != '\0') {
      setenv("LD_PRELOAD", preload, 1);
    } else {
      unsetenv("LD_PRELOAD");
    }
    execv(argv[3], argv + 3);
    fprintf(stderr, "bench_runner_spawn: cannot run %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }

  int status = 0;
  struct rusage usage;
  while (wait4(child, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      perror("bench_runner_spawn: wait4");
      return 1;
    }
  }
  FILE* report = fopen(report_path, "w");
  if (report == NULL) {
    perror("bench_runner_spawn: report");
    return 1;
  }
  fprintf(report, "status=%d maxrss_kib=%ld utime=%.6f stime=%.6f\n", status, usage.ru_maxrss,
          seconds(usage.ru_utime), seconds(usage.ru_stime));
  return fclose(report) == 0 ? 0 : 1;
}
