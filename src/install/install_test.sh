#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, as a user would
# (`cmake --install BUILD --prefix PREFIX`), then checks the installed files
# alone, never the build tree:
#   - the layout (sonames, header, CMake package, pkg-config file, launcher,
#     man page);
#   - the three examples (examples/): two built with find_package(hpcalloc),
#     one with pkg-config, each run and its check passed;
#   - the installed launcher: --version, --help, bad options and a missing
#     program are refused with status 2, an existing LD_PRELOAD is kept,
#     options reach the library (--stats prints the summary, --secure loads
#     the secure flavour).
# Usage: install_test.sh BUILD_DIR SOURCE_DIR   (ctest passes both)
set -euo pipefail
build=$1
source=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix

fail() {
  echo "install_test: FAIL: $*" >&2
  exit 1
}
expect_file() { [[ -e "$prefix/$1" ]] || fail "not installed: $1"; }

cmake --install "$build" --prefix "$prefix" >"$scratch/install.log" 2>&1 ||
  { cat "$scratch/install.log"; fail "cmake --install failed"; }

# Layout. The library directory is GNUInstallDirs' (lib, or lib/<triplet>
# for a /usr prefix): found from the CMake package's location.
config=$(find "$prefix" -name hpcalloc-config.cmake -print -quit)
[[ -n "$config" ]] || fail "no hpcalloc-config.cmake"
libdir=$(cd "$(dirname "$config")/../.." && pwd)
libdir=${libdir#"$prefix"/}
version=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$(dirname "$config")/hpcalloc-config-version.cmake")
[[ -n "$version" ]] || fail "no version in hpcalloc-config-version.cmake"
major=${version%%.*}
for flavour in hpcalloc hpcalloc-secure; do
  expect_file "$libdir/lib$flavour.so.$version"
  expect_file "$libdir/lib$flavour.so.$major"
  expect_file "$libdir/lib$flavour.so"
  soname=$(readelf -d "$prefix/$libdir/lib$flavour.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [[ "$soname" == "lib$flavour.so.$major" ]] || fail "lib$flavour's soname is '$soname'"
  # Only the C library: a C program that preloads hpcalloc must not load
  # the C++ runtime or libm (their pages are most of a small program's RSS).
  needed=$(readelf -d "$prefix/$libdir/lib$flavour.so.$version" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  [[ "$needed" == "libc.so.6 " ]] || fail "lib$flavour needs '$needed', not only libc.so.6"
done
for file in "$libdir/libhpcalloc_static.a" "$libdir/libhpcalloc_secure_static.a" \
            include/hpcalloc/hpcalloc.h "$libdir/pkgconfig/hpcalloc.pc" bin/hpcalloc \
            share/man/man1/hpcalloc.1 share/doc/hpcalloc/README.md; do
  expect_file "$file"
done
if command -v man >/dev/null; then
  man -l "$prefix/share/man/man1/hpcalloc.1" >"$scratch/man.txt" 2>/dev/null || true
  grep -q "run a program with the hpcalloc" "$scratch/man.txt" || fail "the man page does not render"
fi

# The examples, against the prefix only.
# shellcheck source=examples.sh
source "$(dirname "${BASH_SOURCE[0]}")/examples.sh"
build_and_run_examples "$source" "$scratch" "$prefix"

# The installed launcher.
launcher=$prefix/bin/hpcalloc
[[ "$("$launcher" --version)" == "hpcalloc $version" ]] || fail "--version"
# (Outputs go to files before grep -q reads them: grep -q stops at the first
# match, and the writer's SIGPIPE would fail the pipeline under pipefail.)
"$launcher" --help >"$scratch/help.txt" && grep -q "^Usage: hpcalloc" "$scratch/help.txt" || fail "--help"
[[ "$("$launcher" --print-library)" == "$prefix/$libdir/libhpcalloc.so.$major" ]] ||
  fail "--print-library: $("$launcher" --print-library)"
expect_refused() {  # WHAT WORDS ARGS... : status 2 and a message with WORDS
  local what=$1 words=$2 status=0
  shift 2
  "$launcher" "$@" >/dev/null 2>"$scratch/refused.err" || status=$?
  [[ $status -eq 2 ]] && grep -q -e "$words" "$scratch/refused.err" ||
    fail "$what: status $status, stderr: $(cat "$scratch/refused.err")"
}
expect_refused "a bad option" "unknown option '--bogus'" --bogus true
expect_refused "a bad --numa" "--numa must be" --numa=sideways true
expect_refused "an empty value" "needs a value" --stats-file= true
expect_refused "a missing value" "needs a value" --on-error
expect_refused "a missing program" "program 'no-such-program-x' not found" no-such-program-x
expect_refused "no program" "no program to run"
# (env, not a shell: dash leaves with _exit, so no summary would be printed.)
env -u HPCALLOC_NUMA -u LD_PRELOAD "$launcher" --stats -- env >"$scratch/env.out" 2>"$scratch/stats.err"
grep -qx "LD_PRELOAD=$prefix/$libdir/libhpcalloc.so.$major" "$scratch/env.out" ||
  fail "LD_PRELOAD: $(grep LD_PRELOAD "$scratch/env.out")"
grep -q "^HPCALLOC_NUMA=" "$scratch/env.out" && fail "HPCALLOC_NUMA set without --numa"
grep -q "^hpcalloc: stats: hpcalloc $version, default flavour" "$scratch/stats.err" ||
  fail "--stats: no summary from the preloaded library: $(cat "$scratch/stats.err")"
LD_PRELOAD=libm.so.6 "$launcher" --numa first-touch --on-error=warn env >"$scratch/env.out"
grep -qx "LD_PRELOAD=$prefix/$libdir/libhpcalloc.so.$major libm.so.6" "$scratch/env.out" ||
  fail "an existing LD_PRELOAD was lost: $(grep LD_PRELOAD "$scratch/env.out")"
grep -qx "HPCALLOC_NUMA=first-touch" "$scratch/env.out" && grep -qx "HPCALLOC_ON_ERROR=warn" "$scratch/env.out" ||
  fail "the options did not reach the environment"
"$launcher" --secure --stats true 2>"$scratch/secure.err" && grep -q "secure flavour" "$scratch/secure.err" ||
  fail "--secure: $(head -c 300 "$scratch/secure.err")"
"$launcher" --stats=json true 2>"$scratch/json.err" &&
  grep -q '^{"schema":1,"hpcalloc":"'"$version"'"' "$scratch/json.err" ||
  fail "--stats=json: $(head -c 200 "$scratch/json.err")"
expect_refused "a bad --stats" "--stats takes text or json" --stats=xml true
echo "install_test: OK (prefix layout, 3 examples, launcher)"
