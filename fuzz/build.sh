#!/usr/bin/env bash
# Builds the fuzz harnesses the way OSS-Fuzz and ClusterFuzzLite expect
# (https://google.github.io/oss-fuzz/getting-started/new-project-guide/),
# without CMake: every fuzz/*_fuzz.cpp becomes $OUT/<name>, compiled with
# $CXX $CXXFLAGS (the service's sanitizer and coverage flags) together with
# hpcalloc's core sources, and linked with $LIB_FUZZING_ENGINE. Next to each
# harness go its seed corpus ($OUT/<name>_seed_corpus.zip, from
# fuzz/corpus/<name>/ and fuzz/regressions/<name>/, when `zip` exists) and
# its dictionary ($OUT/<name>.dict, from fuzz/<name without _fuzz>.dict).
#
# On the service, the project's Dockerfile copies this repository to $SRC and
# its build.sh runs `$SRC/hpcalloc/fuzz/build.sh`. Locally the defaults below
# give a libFuzzer + ASan + UBSan build with Debian's clang-19:
#   fuzz/build.sh && build/oss-fuzz-out/c_api_fuzz -runs=1000
# The library is built with its checked-build assertions (HPCALLOC_CHECKED),
# as in the `fuzz` CMake preset.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-clang-19}
CXX=${CXX:-clang++-19}
default_flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link"
default_flags+=" -fno-sanitize-recover=undefined"
CFLAGS=${CFLAGS:-$default_flags}
CXXFLAGS=${CXXFLAGS:-$default_flags}
LIB_FUZZING_ENGINE=${LIB_FUZZING_ENGINE:--fsanitize=fuzzer}
OUT=${OUT:-$root/build/oss-fuzz-out}
export CC CFLAGS

version=$(sed -n 's/^project(hpcalloc VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

# Word splitting of the flag variables is intended: they hold several flags.
# shellcheck disable=SC2206
cxxflags=($CXXFLAGS -std=c++20 -I"$root" -I"$root/src" -DHPCALLOC_CHECKED=1 -DHPCALLOC_FUZZING=1)
# shellcheck disable=SC2206
engine=($LIB_FUZZING_ENGINE)

# The static library's sources, as src/CMakeLists.txt lists them (one list to
# keep up to date): everything between "set(hpcalloc_core_sources" and ")".
read -r -a core_sources <<<"$(sed -n '/^set(hpcalloc_core_sources/,/)/p' "$root/src/CMakeLists.txt" |
  sed 's/^set(hpcalloc_core_sources//; s/).*//' | tr '\n' ' ')"
[[ ${#core_sources[@]} -gt 0 ]] || { echo "no hpcalloc_core_sources in src/CMakeLists.txt" >&2; exit 1; }

objects=()
for source in "${core_sources[@]/#/src/}"; do
  object=$work/$(basename "$source" .cpp).o
  "$CXX" "${cxxflags[@]}" -DHPCALLOC_VERSION="\"$version\"" -DHPCALLOC_FORWARD_FOREIGN=0 \
    -c "$root/$source" -o "$object"
  objects+=("$object")
done

for source in "$root"/fuzz/*_fuzz.cpp; do
  name=$(basename "$source" .cpp)
  echo "building $OUT/$name"
  # The contents-pattern loops run without coverage hooks (see the list).
  "$CXX" "${cxxflags[@]}" -fsanitize-coverage-ignorelist="$root/fuzz/coverage_ignorelist.txt" \
    -c "$source" -o "$work/$name.o"
  "$CXX" "${cxxflags[@]}" "$work/$name.o" "${objects[@]}" "${engine[@]}" -lpthread -ldl \
    -o "$OUT/$name"

  dict=$root/fuzz/${name%_fuzz}.dict
  [[ -f $dict ]] && cp "$dict" "$OUT/$name.dict"

  seeds=()
  for dir in "$root/fuzz/corpus/$name" "$root/fuzz/regressions/$name"; do
    [[ -d $dir ]] && seeds+=("$dir"/*)
  done
  if [[ ${#seeds[@]} -gt 0 ]]; then
    if command -v zip >/dev/null; then
      rm -f "$OUT/${name}_seed_corpus.zip"
      zip -q -j "$OUT/${name}_seed_corpus.zip" "${seeds[@]}"
    else
      echo "zip not found: no $OUT/${name}_seed_corpus.zip" >&2
    fi
  fi
done
