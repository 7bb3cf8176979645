/* hpcalloc's public C interface. Every function is also exported under the
 * standard names by libhpcalloc.so when it is preloaded; the prefixed names
 * are for programs that link hpcalloc next to another malloc, and for tests
 * under sanitizers that own malloc. */
#ifndef HPCALLOC_H
#define HPCALLOC_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
const char* hpc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* HPCALLOC_H */
