// Layer 1, base: bit tricks, overflow-checked arithmetic, diagnostics and
// environment parsing, none of which allocates. Depends on nothing above it.
#pragma once

#include "base/bits.h"
#include "base/check.h"
#include "base/env.h"
#include "base/report.h"
