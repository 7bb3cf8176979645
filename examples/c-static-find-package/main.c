/* hpcalloc's prefixed API next to the system malloc: blocks of every size
 * class (small, medium, huge), filled and checked, freed from another
 * thread too. Prints one line and exits 0 when every check holds. */
#include <hpcalloc/hpcalloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t kSizes[] = {16, 100, 1000, 5000, 70000, 3 << 20};
enum { kCount = sizeof kSizes / sizeof kSizes[0] };

static void* free_all(void* blocks) {
  void** b = blocks;
  for (int i = 0; i < kCount; ++i) hpc_free(b[i]);
  return NULL;
}

int main(void) {
  void* blocks[kCount];
  for (int i = 0; i < kCount; ++i) {
    blocks[i] = hpc_malloc(kSizes[i]);
    if (blocks[i] == NULL || hpc_malloc_usable_size(blocks[i]) < kSizes[i]) {
      fprintf(stderr, "c_static_example: hpc_malloc(%zu) failed\n", kSizes[i]);
      return 1;
    }
    memset(blocks[i], i + 1, kSizes[i]);
  }
  for (int i = 0; i < kCount; ++i) {
    const unsigned char* bytes = blocks[i];
    for (size_t j = 0; j < kSizes[i]; ++j) {
      if (bytes[j] != (unsigned char)(i + 1)) {
        fprintf(stderr, "c_static_example: block %d changed\n", i);
        return 1;
      }
    }
  }
  pthread_t thread; /* every block freed by a thread that did not allocate it */
  if (pthread_create(&thread, NULL, free_all, blocks) != 0 || pthread_join(thread, NULL) != 0) {
    return 1;
  }
  size_t heaps = 0;
  if (hpc_stat("heaps_created", &heaps) != 0 || heaps < 1) {
    fprintf(stderr, "c_static_example: hpc_stat failed\n");
    return 1;
  }
  printf("c_static_example: hpcalloc %s (%s flavour), %d blocks checked\n", hpc_version(),
         hpc_flavour(), kCount);
  return 0;
}
