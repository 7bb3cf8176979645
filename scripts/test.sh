#!/usr/bin/env bash
# The default test suite: install what is missing, then configure, build and
# test each preset in turn (release: unit, model, prop, preload; asan: unit and
# prop under ASan+UBSan; tsan: tsan/; fuzz: short libFuzzer runs). Ends with
# one "N passed, N failed" line over all of them; exits non-zero on any
# failure.
#   scripts/test.sh                # every preset below
#   scripts/test.sh release tsan   # just these
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/deps.sh || exit 1

presets=("$@")
[[ ${#presets[@]} -eq 0 ]] && presets=(release asan tsan fuzz)

passed=0
failed=0
status=0
for preset in "${presets[@]}"; do
  echo "=== $preset: configure and build"
  if ! cmake --preset "$preset" >"build-$preset.log" 2>&1 ||
     ! cmake --build --preset "$preset" >>"build-$preset.log" 2>&1; then
    tail -n 60 "build-$preset.log"
    echo "=== $preset: BUILD FAILED (log: build-$preset.log)"
    status=1
    failed=$((failed + 1))
    continue
  fi
  rm -f "build-$preset.log"
  count=$(ctest --preset "$preset" -N 2>/dev/null | sed -n 's/^Total Tests: //p')
  if [[ "${count:-0}" -eq 0 ]]; then
    echo "=== $preset: no tests in this tree yet"
    continue
  fi
  echo "=== $preset: $count tests"
  log=$(mktemp)
  ctest --preset "$preset" 2>&1 | tee "$log"
  [[ ${PIPESTATUS[0]} -ne 0 ]] && status=1
  summary=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$log")
  rm -f "$log"
  if [[ -n "$summary" ]]; then
    read -r f total <<<"$summary"
    passed=$((passed + total - f))
    failed=$((failed + f))
  else
    status=1
  fi
done

echo "hpcalloc tests (${presets[*]}): $passed passed, $failed failed"
exit $status
