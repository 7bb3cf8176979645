#!/usr/bin/env bash
# hpcalloc's build tools under the preload: cmake configures a scratch
# project that builds five of hpcalloc's own unit tests (base, sync and ds
# layers: bit tricks, env parsing, the spin lock, the intrusive list, the
# remote-free queue) from $HPCALLOC_SOURCE_DIR, and ninja builds them with g++ in
# Release mode, two jobs at a time. cmake, ninja, g++, cc1plus, as and ld
# all run preloaded.
# Checked: every built test passes (run without the preload) and says so
# in GoogleTest's summary.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup rebuild_hpcalloc
source_dir=${HPCALLOC_SOURCE_DIR:-}
[[ -f "$source_dir/src/base/bits.h" ]] || fail "HPCALLOC_SOURCE_DIR must name hpcalloc's repository root"

tests=(base/bits_test base/env_test sync/spin_lock_test ds/intrusive_list_test ds/remote_free_queue_test)
mkdir "$tmp/project"
cat >"$tmp/project/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(hpcalloc_rebuild CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_BUILD_TYPE Release)
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)
foreach(test ${tests[*]})
  string(REPLACE "/" "_" name \${test})
  add_executable(\${name} "$source_dir/src/\${test}.cpp")
  target_include_directories(\${name} PRIVATE "$source_dir/src")
  target_link_libraries(\${name} PRIVATE GTest::gtest_main Threads::Threads)
endforeach()
CMAKE

# Without the statistics: cmake reads `uname`'s stderr with its stdout, and
# the summary the preloaded uname prints at exit would end up in CMAKE_SYSTEM_*.
preloaded_without_stats cmake -S "$tmp/project" -B "$tmp/build" -G Ninja >"$tmp/configure.out"
preloaded ninja -C "$tmp/build" -j 2 >"$tmp/build.out"

for test in "${tests[@]}"; do
  binary="$tmp/build/${test//\//_}"
  [[ -x "$binary" ]] || fail "ninja did not build $binary"
  if ! timeout 60 "$binary" >"$tmp/test.out" 2>&1; then
    tail -n 20 "$tmp/test.out" >&2
    fail "$test, built by the preloaded compiler, failed"
  fi
  grep -q '^\[  PASSED  \] [0-9]* test' "$tmp/test.out" || fail "$test printed no GoogleTest summary"
  if grep -q '^\[  FAILED  \]' "$tmp/test.out"; then fail "$test reports failures"; fi
  echo "rebuild_hpcalloc: $test: $(grep '^\[  PASSED  \]' "$tmp/test.out")"
done
preload_done
