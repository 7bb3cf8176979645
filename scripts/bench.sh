#!/usr/bin/env bash
# Benchmarks hpcalloc against glibc, jemalloc, tcmalloc and mimalloc: installs
# what is missing, builds the release preset (libhpcalloc.so and the bench
# programs) and runs bench/runner/run.py with every argument passed on. See
# bench/README.md for the options and what the report means.
#   scripts/bench.sh                         # every workload, 5 reps, threads = CPUs
#   scripts/bench.sh --reps=3 --scale=0.5    # a quicker run
#   scripts/bench.sh --threads=1,2,4,8,16    # scaling
#   scripts/bench.sh --instructions          # instructions per malloc+free pair (callgrind)
#   scripts/bench.sh --help                  # every option
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# /usr/bin/python3, the one deps.sh gives matplotlib, not a version-manager shim.
python=/usr/bin/python3
runner=(bench/runner/run.py --build-dir build/release)
for argument in "$@"; do
  if [[ "$argument" == "-h" || "$argument" == "--help" ]]; then
    exec "$python" "${runner[@]}" --help
  fi
done

scripts/deps.sh
log=$(mktemp)
if ! { cmake --preset release && cmake --build --preset release; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "hpcalloc: the release build failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
exec "$python" "${runner[@]}" "$@"
