#!/usr/bin/env bash
# GNU sort under the preload on ~50 MB of lines with a 20 MB buffer, so it
# sorts in chunks, writes them to temporary files and merges them, with two
# threads and a two-key comparison. Checked: the output is byte-identical
# (sha256) to that of the same sort without the preload, has every input
# line, and `sort -c` (not preloaded) finds it in order.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup sort

lines=1600000
# A Lehmer generator (exact in awk's doubles) picks numbers and words.
awk -v n=$lines 'BEGIN {
  split("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima", w, " ")
  x = 12345
  for (i = 0; i < n; i++) {
    x = (x * 48271) % 2147483647
    printf "%d %s-%d %s\n", x, w[x % 12 + 1], x % 1000, substr("0123456789abcdefghij", 1, i % 21)
  }
}' >"$tmp/input.txt"
size=$(stat -c %s "$tmp/input.txt")
[[ $size -gt 45000000 ]] || fail "the generated input has only $size bytes"

mkdir "$tmp/spill-preloaded" "$tmp/spill-plain"
export LC_ALL=C
keys=('-k2,2' '-k1,1n')
preloaded sort -S 20M --parallel=2 -T "$tmp/spill-preloaded" "${keys[@]}" "$tmp/input.txt" -o "$tmp/preloaded.txt"
plain sort -S 20M --parallel=2 -T "$tmp/spill-plain" "${keys[@]}" "$tmp/input.txt" -o "$tmp/plain.txt"

sort -c "${keys[@]}" "$tmp/preloaded.txt" 2>>"$plain_log" || fail "the preloaded sort's output is out of order"
expect_equal "lines in the preloaded sort's output" "$lines" "$(wc -l <"$tmp/preloaded.txt")"
expect_equal "sha256 of the outputs with and without the preload" \
  "$(sha256sum <"$tmp/plain.txt")" "$(sha256sum <"$tmp/preloaded.txt")"
preload_done
