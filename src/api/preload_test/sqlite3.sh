#!/usr/bin/env bash
# The sqlite3 shell under the preload: 100k INSERT statements parsed one by
# one in a transaction (rows of varying length), then aggregates, GROUP BY,
# an index and a query through it, an UPDATE that grows rows, a DELETE, a
# VACUUM and an integrity check, on a small page cache so pages are
# allocated and dropped all the time. Checked: the aggregates equal values
# awk computes from the same rows, and the whole output equals a run without
# the preload.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup sqlite3
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (scripts/deps.sh installs it)"

rows=100000
# Row i: grp = i % 7, val = i * 7919 % 10007, pad = i % 61 copies of a letter.
awk -v n=$rows 'BEGIN {
  print "PRAGMA cache_size = -1024;"
  print "CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, val INTEGER, name TEXT, pad TEXT);"
  print "BEGIN;"
  for (i = 1; i <= n; i++) {
    pad = sprintf("%*s", i % 61, ""); gsub(/ /, substr("abcdefghij", i % 10 + 1, 1), pad)
    printf "INSERT INTO t VALUES (%d, %d, %d, '\''name-%d'\'', '\''%s'\'');\n", i, i % 7, i * 7919 % 10007, i, pad
  }
  print "COMMIT;"
}' >"$tmp/load.sql"

cat >"$tmp/query.sql" <<'EOF'
SELECT 'totals', count(*), sum(id), sum(val), sum(length(pad)) FROM t;
SELECT 'group', grp, count(*), sum(val) FROM t GROUP BY grp ORDER BY grp;
CREATE INDEX t_val ON t (val);
SELECT 'range', count(*), sum(id) FROM t WHERE val BETWEEN 100 AND 199;
EXPLAIN QUERY PLAN SELECT id FROM t WHERE val = 5;
UPDATE t SET pad = pad || pad || name WHERE id % 3 = 0;
DELETE FROM t WHERE grp = 6;
VACUUM;
SELECT 'after', count(*), sum(length(pad)) FROM t;
SELECT 'top', id, name FROM t ORDER BY length(pad) DESC, id LIMIT 3;
PRAGMA integrity_check;
EOF

run_sqlite() {
  local db=$1
  shift
  "$@" sqlite3 -batch -bail "$db" <"$tmp/load.sql" >/dev/null
  "$@" sqlite3 -batch -bail "$db" <"$tmp/query.sql"
}
run_sqlite "$tmp/preloaded.db" preloaded >"$tmp/preloaded.out"
run_sqlite "$tmp/plain.db" plain >"$tmp/plain.out"

# The same figures, computed by awk from the rows' definition.
awk -v n=$rows 'BEGIN {
  for (i = 1; i <= n; i++) {
    g = i % 7; v = i * 7919 % 10007; p = i % 61
    ids += i; vals += v; pads += p; count[g]++; gval[g] += v
    if (v >= 100 && v <= 199) { rc++; rid += i }
    if (g != 6) { left++; lpad += (i % 3 == 0) ? 2 * p + length("name-" i) : p }
  }
  printf "totals|%d|%.0f|%.0f|%d\n", n, ids, vals, pads
  for (g = 0; g < 7; g++) printf "group|%d|%d|%d\n", g, count[g], gval[g]
  printf "range|%d|%.0f\nafter|%d|%d\n", rc, rid, left, lpad
}' >"$tmp/expected.out"

grep -E '^(totals|group|range|after)\|' "$tmp/preloaded.out" >"$tmp/preloaded.figures" || true
expect_same_file "figures computed by sqlite3 (preloaded) and by awk" "$tmp/expected.out" "$tmp/preloaded.figures"
grep -q 'USING .*INDEX t_val' "$tmp/preloaded.out" || fail "the query on val did not use the index t_val"
expect_equal "integrity check" ok "$(tail -n 1 "$tmp/preloaded.out")"
expect_same_file "outputs with and without the preload" "$tmp/plain.out" "$tmp/preloaded.out"
preload_done
