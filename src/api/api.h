// Layer 6, api: the process-wide instance, the prefixed C API (hpcalloc.h),
// the standard-name overrides of the preload library, configuration and
// statistics. Everything below it is reached through a Config; this is the
// only layer that holds globals.
#pragma once

#include "api/hpcalloc.h"
