/* An OpenMP (libgomp) program whose parallel regions allocate and free
 * across the team: in each of many regions every thread of a team of 4
 * allocates blocks of mixed sizes (small to huge), fills them, and after a
 * barrier checks and frees the blocks of the thread next to it (a free from
 * another thread); each thread also opens a nested region of 2 threads that
 * does the same. libgomp keeps its threads in a pool across regions, so
 * hpcalloc should create a few heaps, not one per region: openmp.sh checks
 * that with the statistics (--stats=json). Prints "openmp_team: OK ..." and
 * exits 0 when every check holds. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kRegions = 60, kTeam = 4, kNested = 2, kBlocks = 64 };

static size_t block_size(int region, int thread, int i) {
  static const size_t kSizes[] = {24, 200, 1500, 9000, 70000, 1 << 20};
  return kSizes[(region + thread * 7 + i) % 6] + (size_t)i;
}

static unsigned char tag(int region, int thread, int i) {
  return (unsigned char)(region * 31 + thread * 7 + i + 1);
}

/* One team's exchange: every member fills kBlocks blocks, then checks and
 * frees the blocks of member (t + 1) % n. Returns the number of bad blocks. */
static int exchange(void* blocks[][kBlocks], int region, int salt) {
  const int n = omp_get_num_threads();
  const int t = omp_get_thread_num();
  for (int i = 0; i < kBlocks; ++i) {
    const size_t size = block_size(region, t + salt, i);
    unsigned char* p = malloc(size);
    if (p == NULL) return kBlocks;
    memset(p, tag(region, t + salt, i), size);
    blocks[t][i] = p;
  }
#pragma omp barrier
  int bad = 0;
  const int from = (t + 1) % n;
  for (int i = 0; i < kBlocks; ++i) {
    const unsigned char* p = blocks[from][i];
    const size_t size = block_size(region, from + salt, i);
    if (p[0] != tag(region, from + salt, i) || p[size - 1] != tag(region, from + salt, i)) ++bad;
    free(blocks[from][i]);
  }
#pragma omp barrier
  return bad;
}

int main(void) {
  omp_set_max_active_levels(2);
  int bad = 0;
  int teams_seen = 0;
  for (int region = 0; region < kRegions; ++region) {
#pragma omp parallel num_threads(kTeam) reduction(+ : bad, teams_seen)
    {
      static void* outer[kTeam][kBlocks]; /* one team at a time */
      bad += exchange(outer, region, 0);
      teams_seen += omp_get_num_threads() == kTeam;
      void* inner[kNested][kBlocks];
#pragma omp parallel num_threads(kNested) reduction(+ : bad)
      bad += exchange(inner, region, 100 + omp_get_ancestor_thread_num(1) * kNested);
    }
  }
  if (bad != 0 || teams_seen != kRegions * kTeam) {
    fprintf(stderr, "openmp_team: FAIL: %d bad blocks, %d of %d team members\n", bad, teams_seen,
            kRegions * kTeam);
    return 1;
  }
  printf("openmp_team: OK (%d regions of %d threads, each with a nested team of %d)\n", kRegions,
         kTeam, kNested);
  return 0;
}
