#!/usr/bin/env bash
# Installs the Debian 12 packages hpcalloc needs to build, test and benchmark.
# Idempotent and silent when everything is already installed; uses sudo when
# not run as root. Called by run.sh and test.sh.
set -euo pipefail

packages=(
  cmake ninja-build g++ python3                       # build, scripts
  clang-19 libclang-rt-19-dev                         # TSan, ASan, libFuzzer
  libgtest-dev librapidcheck-dev relacy-dev           # unit, prop, model
  libnuma-dev                                         # NUMA topology/binding
  libbenchmark-dev valgrind                           # benchmarks, instruction counts
  python3-matplotlib numactl                          # bench plots, NUMA binding
  libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev  # benchmark peers
  sqlite3 git                                         # preload tests run them
  redis-server redis-tools                            # bench/programs: redis workload
  make pkgconf man-db                                 # install test: examples, man page
  openmpi-bin libopenmpi-dev                          # preload test under mpirun (libgomp: GCC's)
  debhelper lintian fakeroot dpkg-dev                 # scripts/package.sh: the Debian packages
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
[[ "$(id -u)" -ne 0 ]] && sudo=(sudo)
echo "hpcalloc: installing ${missing[*]} (apt-get)"
log=$(mktemp)
if ! { "${sudo[@]}" apt-get update -q && \
       DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "hpcalloc: package installation failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
