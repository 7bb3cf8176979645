#!/usr/bin/env bash
# Builds hpcalloc's Debian packages with Debian's own tooling
# (dpkg-buildpackage and debhelper; the packaging is src/install/debian/),
# then runs lintian on them:
#   libhpcalloc0     the shared libraries (default and secure flavours)
#   hpcalloc         the launcher and its man page
#   libhpcalloc-dev  header, static libraries, CMake package, pkg-config file
#   scripts/package.sh [OUT_DIR]    # default build/packages
# The packages are built from a copy of the working tree (tracked files and
# untracked ones git does not ignore), so the checkout stays clean.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(realpath -m "${1:-build/packages}")

scripts/deps.sh
version=$(sed -n 's/^project(hpcalloc VERSION \([0-9.]*\) .*/\1/p' CMakeLists.txt)
changelog_version=$(dpkg-parsechangelog -l src/install/debian/changelog -S Version)
if [[ "$changelog_version" != "$version" ]]; then
  echo "hpcalloc: src/install/debian/changelog is at $changelog_version, CMakeLists.txt at $version" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/hpcalloc-$version
mkdir -p "$stage"
git ls-files -z --cached --others --exclude-standard |
  xargs -0 cp --parents --no-dereference -t "$stage" 2>/dev/null || true
cp -r src/install/debian "$stage/debian"

log=$work/build.log
echo "hpcalloc: building the Debian packages (log: $out/build.log)"
mkdir -p "$out"
if ! (cd "$stage" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
  cp "$log" "$out/build.log"
  tail -n 40 "$log" >&2
  echo "hpcalloc: dpkg-buildpackage failed" >&2
  exit 1
fi
cp "$log" "$out/build.log"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
arch=$(dpkg --print-architecture)
for package in libhpcalloc0 hpcalloc libhpcalloc-dev; do
  [[ -f "$work/${package}_${version}_${arch}.deb" ]] || { echo "hpcalloc: no $package package" >&2; exit 1; }
done
# (with the -dbgsym packages debhelper adds, which the .changes lists)
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"

# lintian: every finding is either fixed or explained in
# src/install/debian/*.lintian-overrides; errors fail the build.
status=0
lintian --fail-on error --display-info "$out"/*.changes >"$work/lintian.txt" 2>&1 || status=$?
# (lintian's note that it runs as root is not a finding.)
grep -v "running with root privileges is not recommended" "$work/lintian.txt" >"$out/lintian.txt" || true
if [[ $status -ne 0 ]]; then
  cat "$out/lintian.txt" >&2
  echo "hpcalloc: lintian found errors (status $status)" >&2
  exit 1
fi
echo "hpcalloc: packages in $out:"
ls -1 "$out"/*.deb
echo "hpcalloc: lintian: $(grep -c . "$out/lintian.txt" || true) findings ($out/lintian.txt)"
