/* An MPI program as HPC codes are written: every rank allocates its send and
 * receive buffers with malloc (small, medium and huge: 256 B, 64 KiB and
 * 4 MiB per peer), exchanges them with MPI_Alltoall, reduces a checksum with
 * MPI_Allreduce, checks every value it received, then frees and reallocates
 * its buffers (realloc up and down) before the next round. Run by mpi.sh
 * under mpirun with hpcalloc preloaded in every rank (through the launcher),
 * where Open MPI's own memory hooks (its registration cache intercepts
 * munmap and friends) and its shared-memory transport run on top of
 * hpcalloc. Prints "mpi_exchange: rank R of N: OK" and exits 0 when every
 * check holds; any wrong value aborts the job. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kRounds = 6 };
static const size_t kPerPeer[] = {32, 8192, 524288}; /* doubles: 256 B, 64 KiB, 4 MiB */

/* The value rank `from` sends to rank `to` at index i of a round: exact in a
 * double, different for every (from, to, i, round). */
static double value(int from, int to, size_t i, int round) {
  return (double)from * 1e9 + (double)to * 1e7 + (double)i * 4.0 + (double)round;
}

static void die(int rank, const char* what, size_t at) {
  fprintf(stderr, "mpi_exchange: rank %d: %s (at %zu)\n", rank, what, at);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double* kept = NULL; /* a buffer carried across rounds, resized each time */
  size_t kept_count = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (size_t k = 0; k < sizeof kPerPeer / sizeof kPerPeer[0]; ++k) {
      const size_t n = kPerPeer[k];
      const size_t total = n * (size_t)size;
      double* send = malloc(total * sizeof *send);
      double* receive = malloc(total * sizeof *receive);
      if (send == NULL || receive == NULL) die(rank, "malloc failed", total);
      for (int peer = 0; peer < size; ++peer) {
        for (size_t i = 0; i < n; ++i) send[(size_t)peer * n + i] = value(rank, peer, i, round);
      }
      MPI_Alltoall(send, (int)n, MPI_DOUBLE, receive, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
      double local = 0;
      for (int peer = 0; peer < size; ++peer) {
        for (size_t i = 0; i < n; ++i) {
          const double got = receive[(size_t)peer * n + i];
          if (got != value(peer, rank, i, round)) die(rank, "wrong value received", i);
          local += got - value(peer, rank, i, round) + 1.0; /* 1 per value: exact */
        }
      }
      double global = 0;
      MPI_Allreduce(&local, &global, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      if (global != (double)total * size) die(rank, "wrong reduced checksum", total);
      free(send);
      free(receive);
    }
    /* Grow or shrink the carried buffer across size classes; its prefix
     * must survive every move. */
    const size_t next_count = (round % 2 == 0) ? kPerPeer[round % 3] * 4 : 16;
    double* moved = realloc(kept, next_count * sizeof *moved);
    if (moved == NULL) die(rank, "realloc failed", next_count);
    const size_t keep = kept_count < next_count ? kept_count : next_count;
    for (size_t i = 0; i < keep; ++i) {
      if (moved[i] != (double)(i * 3 + (size_t)rank)) die(rank, "realloc lost data", i);
    }
    for (size_t i = 0; i < next_count; ++i) moved[i] = (double)(i * 3 + (size_t)rank);
    kept = moved;
    kept_count = next_count;
    MPI_Barrier(MPI_COMM_WORLD);
  }
  free(kept);
  printf("mpi_exchange: rank %d of %d: OK\n", rank, size);
  MPI_Finalize();
  return 0;
}
