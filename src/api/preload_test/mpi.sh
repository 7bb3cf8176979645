#!/usr/bin/env bash
# Open MPI with hpcalloc in every rank, started as HPC users start jobs:
#   mpirun -np 4 --oversubscribe hpcalloc [options] ./mpi_exchange
# (the launcher preloads hpcalloc into each rank, not into mpirun). The
# program (programs/mpi_exchange.c) checks every value it receives through
# MPI_Alltoall and MPI_Allreduce over rounds of small, medium and huge
# malloc'd buffers, reallocated between rounds; Open MPI's memory hooks and
# shared-memory transport run on top of hpcalloc. Checked: every rank says
# OK, and every rank wrote hpcalloc's JSON summary (so hpcalloc served it)
# with no misuse reported.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup mpi

program=${HPCALLOC_BUILD_DIR:?}/src/preload_program_mpi_exchange
launcher=$HPCALLOC_BUILD_DIR/bin/hpcalloc
command -v mpirun >/dev/null || fail "mpirun is not installed (scripts/deps.sh installs Open MPI)"
[[ -x "$program" ]] || fail "$program was not built (Open MPI was not found when the build was configured)"
ranks=4
as_root=()
[[ "$(id -u)" -eq 0 ]] && as_root=(--allow-run-as-root)

bounded_run "$preload_log" preloaded \
  mpirun "${as_root[@]}" -np $ranks --oversubscribe \
  "$launcher" --library="$HPCALLOC_LIBRARY" --stats=json --stats-file="$tmp/stats.jsonl" \
  "$program" >"$tmp/out.txt"
preloaded_runs=$((preloaded_runs + 1))

expect_equal "ranks that said OK" $ranks "$(grep -c "^mpi_exchange: rank [0-9] of $ranks: OK$" "$tmp/out.txt")"
/usr/bin/python3 - "$tmp/stats.jsonl" $ranks <<'PYEOF' || fail "hpcalloc did not serve every rank (see above)"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
objects = [json.loads(line) for line in lines]
ranks = int(sys.argv[2])
# The ranks only: mpirun and its daemons are not preloaded.
assert len(objects) == ranks, f"{len(objects)} summaries for {ranks} ranks"
assert len({o["pid"] for o in objects}) == ranks, "summaries of the same process"
for o in objects:
    s = o["statistics"]
    assert o["initialized"] and s["heaps_created"] >= 1, o
    assert s["os_reserves"] >= 1 and s["errors_reported"] == 0, s
print(f"mpi: {ranks} ranks served by hpcalloc ({sum(o['statistics']['os_reserves'] for o in objects)} mappings)")
PYEOF
# Again with Open MPI's registration cache on (mpi_leave_pinned), which
# relies on its memory hooks (the patcher over munmap, mremap and madvise,
# which hpcalloc calls) to drop stale registrations when memory goes back.
bounded_run "$preload_log" preloaded \
  mpirun "${as_root[@]}" -np $ranks --oversubscribe --mca mpi_leave_pinned 1 \
  "$launcher" --library="$HPCALLOC_LIBRARY" "$program" >"$tmp/pinned.txt"
expect_equal "ranks that said OK with leave_pinned" $ranks \
  "$(grep -c "^mpi_exchange: rank [0-9] of $ranks: OK$" "$tmp/pinned.txt")"

# And mpirun itself on hpcalloc (preloaded: its daemons and the rank inherit
# it), one rank; this run also gives preload_done its text summaries.
preloaded mpirun "${as_root[@]}" -np 1 "$program" >"$tmp/one.txt"
grep -q "^mpi_exchange: rank 0 of 1: OK$" "$tmp/one.txt" || fail "one rank under a preloaded mpirun"

preload_done
