#!/usr/bin/env bash
# libgomp with hpcalloc: programs/openmp_team.c runs 60 parallel regions of
# 4 threads, each thread opening a nested region of 2, every thread
# allocating blocks of mixed sizes and freeing its neighbour's (frees from
# another thread), and checks every block. Started through the launcher
# (hpcalloc --stats=json). Checked: the program's own result, that hpcalloc
# served it with no misuse, and that heaps are reused: fewer than 30 heaps,
# where a runtime starting new teams for every region would start 420
# threads (3 workers and 4 nested threads a region); libgomp's pool and
# hpcalloc's pooled heaps make it 8 to 12 on an idle machine.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup openmp

program=${HPCALLOC_BUILD_DIR:?}/src/preload_program_openmp_team
launcher=$HPCALLOC_BUILD_DIR/bin/hpcalloc
[[ -x "$program" ]] || fail "$program was not built (OpenMP was not found when the build was configured)"

plain "$program" >"$tmp/plain.txt"
bounded_run "$preload_log" preloaded \
  "$launcher" --library="$HPCALLOC_LIBRARY" --stats=json --stats-file="$tmp/stats.jsonl" \
  "$program" >"$tmp/out.txt"
preloaded_runs=$((preloaded_runs + 1))
expect_same_file "the outputs with and without hpcalloc" "$tmp/plain.txt" "$tmp/out.txt"
grep -q "^openmp_team: OK" "$tmp/out.txt" || fail "the program failed: $(cat "$tmp/out.txt")"
/usr/bin/python3 - "$tmp/stats.jsonl" <<'PYEOF' || fail "the statistics (see above)"
import json, sys
[o] = [json.loads(line) for line in open(sys.argv[1]).read().splitlines()]
s = o["statistics"]
assert o["initialized"] and s["errors_reported"] == 0, s
assert 1 <= s["heaps_created"] < 30, f"{s['heaps_created']} heaps for 60 regions: not reused"
assert s["remote_frees_pushed"] > 0, "no free from another thread"
print(f"openmp: {s['heaps_created']} heaps ({s['heaps_pooled']} pooled) served 60 regions; "
      f"{s['remote_frees_pushed']} frees from other threads")
PYEOF
preloaded "$program" >/dev/null
preload_done
