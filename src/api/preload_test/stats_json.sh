#!/usr/bin/env bash
# HPCALLOC_STATS=json as a tool reads it: real programs (a threaded GNU sort
# that spills to files, a Python program that starts two child processes
# which inherit the variables) append one JSON object per process to one
# HPCALLOC_STATS_FILE, and each line is parsed and checked against the
# README's schema (keys, types, the heaps' figures adding up to the
# process's). Also: HPCALLOC_STATS=json on stderr, and a malformed
# HPCALLOC_STATS warned about once and ignored.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup stats_json

library_is_hpcalloc || { echo "stats_json: not hpcalloc: skipped"; exit 0; }
python=/usr/bin/python3
jsonl=$tmp/stats.jsonl

seq 400000 -1 1 | awk '{ printf "%08d line %d\n", $1 * 7919 % 1000003, $1 }' >"$tmp/input.txt"
json_run() { bounded_run "$preload_log" preloaded env LD_PRELOAD="$HPCALLOC_LIBRARY" "$@"; }
json_run HPCALLOC_STATS=json HPCALLOC_STATS_FILE="$jsonl" \
  sort -S 4M --parallel=2 -T "$tmp" "$tmp/input.txt" -o "$tmp/sorted.txt"
json_run HPCALLOC_STATS=json HPCALLOC_STATS_FILE="$jsonl" PYTHONMALLOC=malloc "$python" -c '
import subprocess, sys
blocks = [bytes(i % 5000) for i in range(20000)]
for _ in range(2):
    subprocess.run(["/bin/true"], check=True)
print(len(blocks))' >"$tmp/python.out"

# Every line one object of the schema (README, "Statistics as JSON").
"$python" - "$jsonl" "$(basename "$HPCALLOC_LIBRARY")" <<'EOF' || fail "the JSON summaries do not follow the schema (see above)"
import json, sys
path, library = sys.argv[1], sys.argv[2]
flavour = "secure" if "secure" in library else "default"
lines = open(path).read().splitlines()
# sort (one process), python3 and its two /bin/true children.
assert len(lines) >= 4, f"{len(lines)} lines, want one per process (>= 4)"
pids = set()
with_heaps = 0
for number, line in enumerate(lines, 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        sys.exit(f"line {number} is not JSON ({e}): {line[:200]}")
    def need(cond, what):
        if not cond:
            sys.exit(f"line {number}: {what}: {line[:300]}")
    need(o.get("schema") == 1, "schema is not 1")
    need(isinstance(o.get("hpcalloc"), str) and o["hpcalloc"].count(".") == 2, "version")
    need(o.get("flavour") == flavour, f"flavour is not {flavour}")
    need(isinstance(o.get("pid"), int) and o["pid"] not in pids, "pid missing or repeated")
    pids.add(o["pid"])
    need(isinstance(o.get("initialized"), bool), "initialized")
    s = o.get("statistics")
    need(isinstance(s, dict), "statistics")
    heaps = o.get("heaps")
    need(isinstance(heaps, list), "heaps")
    need(o.get("heaps_omitted") == 0, "heaps_omitted")
    if not o["initialized"]:
        need(s == {} and heaps == [], "an uninitialised process has figures")
        continue
    for key in ("heaps_created", "heaps_live", "mapped_bytes", "in_use_bytes", "huge_blocks",
                "remote_frees_pushed", "remote_frees_drained", "errors_reported"):
        need(isinstance(s.get(key), int) and s[key] >= 0, f"statistics.{key}")
    need(all(isinstance(v, int) and v >= 0 for v in s.values()), "a statistic is not a count")
    # A program that never allocates (/bin/true) creates no heap.
    need((s["heaps_created"] >= 1) == (len(heaps) >= 1), "heaps listed iff heaps created")
    with_heaps += s["heaps_created"] >= 1
    need(s["errors_reported"] == 0, "errors reported")
    for i, h in enumerate(heaps):
        need(h.get("index") == i and isinstance(h.get("live"), bool), f"heaps[{i}] index/live")
        for key in ("in_use_bytes", "small_segments", "medium_segments", "huge_blocks",
                    "remote_frees_pushed", "remote_frees_drained"):
            need(isinstance(h.get(key), int), f"heaps[{i}].{key}")
    need(sum(h["in_use_bytes"] for h in heaps) == s["in_use_bytes"], "heaps' in_use_bytes do not add up")
    need(sum(h["huge_blocks"] for h in heaps) == s["huge_blocks"], "heaps' huge_blocks do not add up")
assert with_heaps >= 2, f"{with_heaps} summaries with heaps, want sort's and python's at least"
print(f"stats_json: {len(lines)} summaries parsed")
EOF
expect_equal "sort's output lines" 400000 "$(wc -l <"$tmp/sorted.txt")"
expect_equal "python's output" 20000 "$(cat "$tmp/python.out")"

# On stderr: one line, parsed; and a malformed value.
env LD_PRELOAD="$HPCALLOC_LIBRARY" HPCALLOC_STATS=json /bin/true 2>"$tmp/stderr.json"
"$python" -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["initialized"] and "heaps_created" in o["statistics"]' \
  "$tmp/stderr.json" || fail "HPCALLOC_STATS=json on stderr: $(head -c 300 "$tmp/stderr.json")"
env LD_PRELOAD="$HPCALLOC_LIBRARY" HPCALLOC_STATS=yaml /bin/true 2>"$tmp/stderr.bad"
expect_equal "the warning for HPCALLOC_STATS=yaml" \
  "hpcalloc: ignoring HPCALLOC_STATS=yaml (expected 0, 1, text or json; default 0)" \
  "$(cat "$tmp/stderr.bad")"

# preload_done's check wants a text summary of a run that allocated.
preloaded ls "$tmp" >/dev/null
preload_done
