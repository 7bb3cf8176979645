#!/usr/bin/env bash
# git under the preload: init, add and commit 3000 small files in nested
# folders, a second commit that changes, deletes and adds files, a repack
# with two delta-search threads, fsck, log --stat, ls-files and archive.
# With a fixed author, committer and dates, every object is the same in any
# correct run: checked, the commit hashes and every output equal those of a
# run without the preload, fsck passes and the file counts are right.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup git
command -v git >/dev/null || fail "git is not installed (scripts/deps.sh installs it)"

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$tmp"
export GIT_AUTHOR_NAME="Preload Test" GIT_AUTHOR_EMAIL="preload@hpcalloc.invalid"
export GIT_COMMITTER_NAME="Preload Test" GIT_COMMITTER_EMAIL="preload@hpcalloc.invalid"
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"

# 30 folders x 10 subfolders x 10 files, 1 to 40 lines each.
mkdir -p "$tmp/tree"/d{00..29}/s{0..9}
awk -v root="$tmp/tree" 'BEGIN {
  for (d = 0; d < 30; d++) for (s = 0; s < 10; s++) for (f = 0; f < 10; f++) {
    path = sprintf("%s/d%02d/s%d/file%d.txt", root, d, s, f)
    n = (d * 100 + s * 10 + f) % 40 + 1
    for (l = 0; l < n; l++) printf "line %d of d%02d/s%d/file%d: %d\n", l, d, s, f, (l * 7919 + d * 31 + f) % 10007 > path
    close(path)
  }
}'

# The second commit: append to every 7th file, delete every 31st, add 50.
change_tree() {
  local dir=$1
  (cd "$dir" && find . -path ./.git -prune -o -type f -print) | LC_ALL=C sort |
    awk -v dir="$dir" '{
      path = dir "/" $0
      if (NR % 31 == 0) { system("rm -f \"" path "\"") }
      else if (NR % 7 == 0) { print "appended to " $0 >> path; close(path) }
    }
    END { for (i = 0; i < 50; i++) { p = sprintf("%s/d%02d/new%d.txt", dir, i % 30, i); print "new file " i > p; close(p) } }'
}

# Runs the whole session with $1 (preloaded or plain) in front of each git.
git_session() {
  local run=$1 dir=$2
  cp -r "$tmp/tree" "$dir"
  "$run" git -C "$dir" init -q -b main
  "$run" git -C "$dir" add -A
  "$run" git -C "$dir" commit -q -m "3000 files"
  change_tree "$dir"
  "$run" git -C "$dir" add -A
  "$run" git -C "$dir" commit -q -m "change, delete and add files"
  "$run" git -C "$dir" repack -q -a -d -f --threads=2
  "$run" git -C "$dir" fsck --full --strict --no-progress
  "$run" git -C "$dir" rev-parse HEAD HEAD~1
  echo "files: $("$run" git -C "$dir" ls-files | wc -l) $("$run" git -C "$dir" ls-tree -r --name-only HEAD~1 | wc -l)"
  echo "objects: $("$run" git -C "$dir" cat-file --batch-check --batch-all-objects | wc -l)"
  "$run" git -C "$dir" log --stat
  "$run" git -C "$dir" diff --stat HEAD~1 HEAD | tail -n 1
  echo "archive: $("$run" git -C "$dir" archive --format=tar HEAD | sha256sum)"
}
git_session preloaded "$tmp/preloaded" >"$tmp/preloaded.out"
git_session plain "$tmp/plain" >"$tmp/plain.out"

# 3000 - 3000/31 deleted + 50 new; the first commit has all 3000.
expect_equal "files in the two commits" "files: 2954 3000" "$(grep '^files:' "$tmp/preloaded.out")"
expect_same_file "outputs with and without the preload (hashes, log, archive)" "$tmp/plain.out" "$tmp/preloaded.out"
preload_done
