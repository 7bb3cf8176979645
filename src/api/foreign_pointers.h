// Pointers outside every hpcalloc segment. The preload library hands such a
// pointer to the next malloc in the chain (glibc's, which owns the blocks
// allocated before hpcalloc took over), but only one that could be a glibc
// block: anything else (an address in the first page, a misaligned one, one
// on the calling thread's stack, one inside a loaded object's image, such as
// a global) cannot have come from any malloc, and glibc's free would crash
// on it or report it in words of its own. hpcalloc reports those itself.
// Never allocates: it runs inside free().
#pragma once

namespace hpcalloc {

// Whether p may be a block of the malloc hpcalloc replaced: 16-byte
// aligned (glibc's blocks all are on 64-bit targets), past the first page,
// not within the calling thread's stack (the 1 MiB above its stack pointer
// and the red zone below it: frames of callers) and not in the loaded image
// of any object (dl_iterate_phdr's PT_LOAD segments).
bool could_be_glibc_block(const void* p);

}  // namespace hpcalloc
