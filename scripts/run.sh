#!/usr/bin/env bash
# The main job: install what is missing, build libhpcalloc.so (release
# preset), run a real program with it preloaded and print hpcalloc's summary.
#   scripts/run.sh                 # the default workload (a Python program)
#   scripts/run.sh PROGRAM ARGS... # any program of yours
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target hpcalloc >/dev/null
library="$root/build/release/src/libhpcalloc.so"

if [[ $# -eq 0 ]]; then
  # Builds and sorts a few hundred thousand small objects: malloc-heavy.
  # /usr/bin/python3 (installed by deps.sh) rather than a version-manager shim,
  # which would run its own helper processes under the preload too;
  # PYTHONMALLOC=malloc sends every Python object to malloc (not pymalloc).
  export PYTHONMALLOC=malloc
  set -- /usr/bin/python3 -c '
import json, random
random.seed(1)
import threading
def work(seed, out):
    rnd = random.Random(seed)
    rows = [{"id": i, "name": "item-%d" % i, "tags": [str(rnd.random())] * 3} for i in range(100000)]
    rows.sort(key=lambda r: r["tags"][0])
    out[seed] = len(json.dumps(rows))
out = {}
threads = [threading.Thread(target=work, args=(s, out)) for s in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("python workload: 4 threads, %d bytes of JSON" % sum(out.values()))
'
fi

echo "hpcalloc: running '$1' with LD_PRELOAD=$library"
HPCALLOC_STATS=1 LD_PRELOAD="$library" "$@"
