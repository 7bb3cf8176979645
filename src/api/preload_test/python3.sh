#!/usr/bin/env bash
# CPython under the preload, with PYTHONMALLOC=malloc so that every object,
# not only the large ones, comes from malloc: 4 threads each build a dict of
# 100k strings (a quarter of them with small lists and dicts), sort it,
# round-trip it through JSON and hash the result, while the main thread
# forks a child that does the same. Objects built by one thread are freed by
# whichever thread drops the last reference, so frees cross threads all the
# time. Checked: every digest (threads' and child's) equals the one the same
# code computes sequentially in a run without the preload, and the JSON
# round trips give back the data.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup python3

python=/usr/bin/python3 # not a version-manager shim: it would run its own helpers
cat >"$tmp/churn.py" <<'EOF_PY'
import hashlib, json, os, random, sys, threading

N = 100_000
SEEDS, CHILD_SEED = range(4), 99

def work(seed):
    rnd = random.Random(seed)
    table = {}
    for i in range(N):
        key = "k%d-%010x" % (seed, rnd.getrandbits(40))
        table[key] = [i, str(i * i), {"rev": key[::-1], "f": i / 7}] if i % 4 == 0 else key[::-1]
    items = sorted(table.items())
    blob = json.dumps(items, separators=(",", ":"))
    if json.loads(blob) != [[k, v] for k, v in items]:
        raise SystemExit("json round trip changed the data (seed %d)" % seed)
    words = " ".join(k[-4:] for k, _ in items).split(" ")
    words.sort(reverse=True)
    digest = hashlib.sha256(blob.encode())
    digest.update("".join(words).encode())
    return digest.hexdigest()

if sys.argv[1] == "sequential":
    for seed in [*SEEDS, CHILD_SEED]:
        print("seed %d %s" % (seed, work(seed)))
    sys.exit(0)

results = {}
threads = [threading.Thread(target=lambda s=s: results.update({s: work(s)})) for s in SEEDS]
for t in threads:
    t.start()
pid = os.fork()  # while the threads allocate: the child must be able to allocate too
if pid == 0:
    line = "seed %d %s\n" % (CHILD_SEED, work(CHILD_SEED))
    os.write(1, line.encode())
    os._exit(0)
for t in threads:
    t.join()
_, status = os.waitpid(pid, 0)  # the child has printed its line: ours come after
if status != 0:
    raise SystemExit("forked child failed: wait status %d" % status)
for seed in SEEDS:
    print("seed %d %s" % (seed, results[seed]))
EOF_PY

preloaded env PYTHONMALLOC=malloc "$python" -s "$tmp/churn.py" threads >"$tmp/preloaded.out"
plain env PYTHONMALLOC=malloc "$python" -s "$tmp/churn.py" sequential >"$tmp/expected.out"

[[ $(wc -l <"$tmp/expected.out") -eq 5 ]] || fail "unexpected output without the preload: $(cat "$tmp/expected.out")"
sort -o "$tmp/preloaded.out" "$tmp/preloaded.out"
sort -o "$tmp/expected.out" "$tmp/expected.out"
expect_same_file "digests (threads and forked child, preloaded) and sequential ones (not preloaded)" \
  "$tmp/expected.out" "$tmp/preloaded.out"
preload_done
