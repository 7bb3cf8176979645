/* Plain malloc/realloc/free, served by hpcalloc because the program links
 * libhpcalloc.so (found with pkg-config): hpcalloc's statistics (hpc_stat)
 * count the program's 8 MiB buffer among its huge blocks. Exit 0 when every
 * check holds. */
#include <hpcalloc/hpcalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char* text = malloc(16);
  if (text == NULL) return 1;
  strcpy(text, "hpcalloc");
  for (size_t size = 32; size <= (8u << 20); size *= 4) { /* small to huge, moved or grown */
    text = realloc(text, size);
    if (text == NULL || strcmp(text, "hpcalloc") != 0) {
      fprintf(stderr, "pkg_config_example: realloc to %zu lost the contents\n", size);
      return 1;
    }
  }
  size_t huge_blocks = 0;
  if (hpc_stat("huge_blocks", &huge_blocks) != 0 || huge_blocks < 1) {
    fprintf(stderr, "pkg_config_example: malloc is not hpcalloc's\n");
    return 1;
  }
  free(text);
  printf("pkg_config_example: malloc is hpcalloc %s\n", hpc_version());
  return 0;
}
