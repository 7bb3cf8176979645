// The platform the allocator runs on, picked at compile time. This is the one
// file with a platform #if ladder (STYLE.md): everything else names
// DefaultPal, or takes a Pal through its Config, and never asks which OS it
// is on. Porting hpcalloc means writing a Pal and adding a rung here.
#pragma once

#include "pal/pal_concept.h"

#if defined(__linux__)
#include "pal/linux_pal.h"
namespace hpcalloc {
using DefaultPal = LinuxPal;
}  // namespace hpcalloc
#else
#error "hpcalloc: no Pal for this platform (only Linux is implemented)"
#endif

namespace hpcalloc {
static_assert(Pal<DefaultPal>);
}  // namespace hpcalloc
