#!/usr/bin/env bash
# CPython under the preload, with PYTHONMALLOC=malloc so that every object,
# not only the large ones, comes from malloc: 4 threads each build a dict of
# 40k strings and small containers, sort it, round-trip it through JSON and
# hash the result, while the main thread forks a child that does the same.
# Objects built by one thread are freed by whichever thread drops the last
# reference, so frees cross threads all the time. Checked: the threads'
# digests equal those the main thread recomputes alone afterwards, the
# child's digest is right, and the whole output equals a run without the
# preload.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup python3

python=/usr/bin/python3 # not a version-manager shim: it would run its own helpers
cat >"$tmp/churn.py" <<'EOF'
import hashlib, json, os, random, sys, threading

N = 40_000

def work(seed):
    rnd = random.Random(seed)
    table = {}
    for i in range(N):
        key = "k%d-%010x" % (seed, rnd.getrandbits(40))
        table[key] = [i, str(i * i), {"seed": seed, "rev": key[::-1], "f": i / 7}]
    items = sorted(table.items())
    blob = json.dumps(items, separators=(",", ":"))
    back = json.loads(blob)
    if back != [[k, v] for k, v in items]:
        raise SystemExit("json round trip changed the data (seed %d)" % seed)
    words = " ".join(k[-4:] for k, _ in items).split(" ")
    words.sort(reverse=True)
    digest = hashlib.sha256(blob.encode())
    digest.update("".join(words).encode())
    return digest.hexdigest()

results = {}
def thread_main(seed):
    results[seed] = work(seed)

threads = [threading.Thread(target=thread_main, args=(s,)) for s in range(4)]
for t in threads:
    t.start()

# Fork while the threads allocate: the child must be able to allocate too.
expected_child = None
pid = os.fork()
if pid == 0:
    digest = work(99)
    sys.stdout.write("child %s\n" % digest)
    sys.stdout.flush()
    os._exit(0)
for t in threads:
    t.join()
_, status = os.waitpid(pid, 0)
if status != 0:
    raise SystemExit("forked child failed: wait status %d" % status)

for seed in range(4):
    again = work(seed)
    if results[seed] != again:
        raise SystemExit("thread %d digest %s, recomputed alone %s" % (seed, results[seed], again))
    print("thread %d %s" % (seed, results[seed]))
print("child-expected %s" % work(99))
EOF

run_python() {
  "$@" env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$python" -s "$tmp/churn.py"
}
run_python preloaded >"$tmp/preloaded.out"
run_python plain >"$tmp/plain.out"

[[ $(wc -l <"$tmp/plain.out") -eq 6 ]] || fail "unexpected output without the preload: $(cat "$tmp/plain.out")"
expect_same_file "outputs with and without the preload" "$tmp/plain.out" "$tmp/preloaded.out"
child=$(awk '$1 == "child" { print $2 }' "$tmp/preloaded.out")
child_expected=$(awk '$1 == "child-expected" { print $2 }' "$tmp/preloaded.out")
expect_equal "digest of the forked child" "$child_expected" "$child"
preload_done
