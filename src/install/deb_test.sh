#!/usr/bin/env bash
# The Debian packages, as a user gets them: scripts/package.sh builds them
# with dpkg-buildpackage and runs lintian (no error or warning may remain:
# what is left is explained in src/install/debian/*.lintian-overrides or
# the closing notes); their contents are checked; then, as root and when
# hpcalloc is not installed on this machine already, they are installed
# with dpkg, `hpcalloc --stats python3 -c 'print(1)'` runs from them, the
# three examples build against the system's places (no prefix), and the
# packages are removed again.
# Usage: deb_test.sh SOURCE_DIR   (ctest passes it)
set -euo pipefail
source=$1
scratch=$(mktemp -d)
installed=()
cleanup() {
  if [[ ${#installed[@]} -gt 0 ]]; then
    dpkg --purge "${installed[@]}" >/dev/null 2>&1 || echo "deb_test: could not remove ${installed[*]}" >&2
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
  echo "deb_test: FAIL: $*" >&2
  exit 1
}

out=$scratch/packages
"$source/scripts/package.sh" "$out" >"$scratch/package.log" 2>&1 ||
  { tail -n 40 "$scratch/package.log"; fail "scripts/package.sh failed"; }
if grep -E "^[EW]: " "$out/lintian.txt"; then
  fail "lintian errors or warnings (above)"
fi
version=$(sed -n 's/^project(hpcalloc VERSION \([0-9.]*\) .*/\1/p' "$source/CMakeLists.txt")
arch=$(dpkg --print-architecture)
deb() { echo "$out/${1}_${version}_${arch}.deb"; }
contents() {  # PACKAGE PATTERN...: each pattern matches a file of the package
  local package=$1 listing
  shift
  listing=$(dpkg-deb -c "$(deb "$package")") || fail "no $package package"
  for pattern in "$@"; do
    grep -qE "$pattern" <<<"$listing" || fail "$package lacks $pattern"
  done
}
contents libhpcalloc0 '/usr/lib/[^/]+/libhpcalloc\.so\.0\.' '/usr/lib/[^/]+/libhpcalloc\.so\.0 ->' \
  '/usr/lib/[^/]+/libhpcalloc-secure\.so\.0 ->'
contents hpcalloc '/usr/bin/hpcalloc$' '/usr/share/man/man1/hpcalloc\.1\.gz$' \
  '/usr/share/doc/hpcalloc/README\.md'
contents libhpcalloc-dev '/usr/include/hpcalloc/hpcalloc\.h$' '/usr/lib/[^/]+/libhpcalloc\.so ->' \
  '/usr/lib/[^/]+/libhpcalloc_static\.a$' '/usr/lib/[^/]+/cmake/hpcalloc/hpcalloc-config\.cmake$' \
  '/usr/lib/[^/]+/pkgconfig/hpcalloc\.pc$'

if [[ "$(id -u)" -ne 0 ]]; then
  echo "deb_test: OK (built, lintian-clean, contents checked; not root: not installed)"
  exit 0
fi
status=$(dpkg-query -W -f='${Status}' libhpcalloc0 2>/dev/null || true)
if [[ "$status" == *"ok installed"* ]]; then
  echo "deb_test: OK (built, lintian-clean, contents checked; hpcalloc is installed on this machine already: left alone)"
  exit 0
fi
installed=(hpcalloc libhpcalloc-dev libhpcalloc0)
dpkg -i "$(deb libhpcalloc0)" "$(deb hpcalloc)" "$(deb libhpcalloc-dev)" >"$scratch/dpkg.log" 2>&1 ||
  { cat "$scratch/dpkg.log"; fail "dpkg -i"; }
out_text=$(/usr/bin/hpcalloc --stats /usr/bin/python3 -c 'print(1)' 2>"$scratch/stats.err") ||
  fail "hpcalloc --stats python3 failed"
[[ "$out_text" == 1 ]] || fail "python3 printed '$out_text'"
grep -q "^hpcalloc: stats: hpcalloc $version, default flavour" "$scratch/stats.err" ||
  fail "no summary from the installed library: $(head -c 300 "$scratch/stats.err")"
[[ "$(/usr/bin/hpcalloc --print-library)" == /usr/lib/*/libhpcalloc.so.0 ]] ||
  fail "the installed launcher preloads $(/usr/bin/hpcalloc --print-library)"
# shellcheck source=examples.sh
source "$(dirname "${BASH_SOURCE[0]}")/examples.sh"
build_and_run_examples "$source" "$scratch"
echo "deb_test: OK (built, lintian-clean, installed, hpcalloc --stats python3 ran, 3 examples against /usr, removed)"
