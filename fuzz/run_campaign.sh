#!/usr/bin/env bash
# A fuzzing campaign on this machine: builds the `fuzz` preset, runs each
# harness for DURATION with libFuzzer's fork mode over a persistent corpus
# kept outside the repository, merges (minimises) that corpus at the end, and
# prints wall and CPU seconds, total executions, executions per second and the
# coverage the corpus reaches (libFuzzer's cov = edges, ft = features) per
# harness.
#
#   fuzz/run_campaign.sh DURATION [HARNESS...]
#     DURATION   per harness: 90, 90s, 30m, 2h
#     HARNESS    c_api_fuzz, medium_free_lists_fuzz, ... (default: all)
#
# Environment:
#   JOBS                 parallel fuzzing processes (-fork=JOBS); default nproc
#   FUZZ_CORPUS_ROOT     persistent corpora, one folder per harness;
#                        default build/fuzz-corpus
#   FUZZ_ARTIFACT_ROOT   crashing inputs; default build/fuzz-artifacts
#   FUZZ_BUILD_DIR       the fuzz preset's tree; default build/fuzz
#   FUZZ_RSS_LIMIT_MB    per process; default 2048
#   FUZZ_SKIP_BUILD=1    use the harnesses already built
#   HPCALLOC_ON_ERROR    default warn: c_api_fuzz's misuse opcodes run (each
#                        misuse must be reported once); abort skips them
#
# The seed corpus (fuzz/corpus/<harness>/) and kept regression inputs
# (fuzz/regressions/<harness>/) are read, never written. A crash stops that
# harness's run; its input is in FUZZ_ARTIFACT_ROOT/<harness>/: minimise it
# with `<harness> -minimize_crash=1 -runs=10000 <input>`, fix the bug, then
# keep the minimised input in fuzz/regressions/<harness>/. The exit status is
# 1 if any harness crashed.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

# Everything runs from one function, read whole before it starts: a campaign
# lasts hours, and bash reads a script as it goes, so editing this file under
# a running campaign would otherwise make it run whatever now sits at the
# offset it had reached.
main() {
  [[ $# -ge 1 ]] || usage
  duration=$1
  shift
  case $duration in
    *h) seconds=$((${duration%h} * 3600)) ;;
    *m) seconds=$((${duration%m} * 60)) ;;
    *s) seconds=${duration%s} ;;
    *) seconds=$duration ;;
  esac
  [[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || usage

  root=$(cd "$(dirname "$0")/.." && pwd)
  cd "$root"
  jobs=${JOBS:-$(nproc)}
  corpus_root=${FUZZ_CORPUS_ROOT:-$root/build/fuzz-corpus}
  artifact_root=${FUZZ_ARTIFACT_ROOT:-$root/build/fuzz-artifacts}
  build_dir=${FUZZ_BUILD_DIR:-$root/build/fuzz}
  rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}
  export HPCALLOC_ON_ERROR=${HPCALLOC_ON_ERROR:-warn}

  if [[ ${FUZZ_SKIP_BUILD:-0} != 1 ]]; then
    cmake --preset fuzz >/dev/null
    cmake --build --preset fuzz
  fi

  harnesses=("$@")
  if [[ ${#harnesses[@]} -eq 0 ]]; then
    for source in fuzz/*_fuzz.cpp; do
      name=$(basename "$source" .cpp)
      harnesses+=("$name")
    done
  fi

  # The last libFuzzer status line ("#N ... cov: C ft: F ...") of a log.
  field() {  # field LOG NAME
    grep -E '^#[0-9]+' "$1" | tail -n 1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"
  }

  status=0
  summary=()
  for name in "${harnesses[@]}"; do
    binary=$build_dir/fuzz/$name
    [[ -x $binary ]] || { echo "no harness $binary" >&2; exit 2; }
    corpus=$corpus_root/$name
    artifacts=$artifact_root/$name
    mkdir -p "$corpus" "$artifacts"
    extra=()
    for dir in fuzz/corpus/$name fuzz/regressions/$name; do
      [[ -d $dir ]] && extra+=("$root/$dir")
    done
    options=(-rss_limit_mb="$rss_limit" -timeout=60 -artifact_prefix="$artifacts/")
    dict=fuzz/${name%_fuzz}.dict
    [[ -f $dict ]] && options+=(-dict="$root/$dict")
    log=$artifacts/campaign.log

    echo "=== $name: ${seconds}s, -fork=$jobs, corpus $corpus"
    start=$(date +%s)
    rc=0
    # bash's `time` reports the CPU seconds of the fuzzing processes (fork
    # mode's jobs are waited for, so they count): the campaign's goal is CPU
    # time, which wall time overstates on a busy machine.
    TIMEFORMAT='%U %S'
    { time "$binary" "${options[@]}" -fork="$jobs" -max_total_time="$seconds" \
        "$corpus" "${extra[@]}" >"$log" 2>&1 || rc=$?; } 2>"$artifacts/cpu.txt"
    elapsed=$(($(date +%s) - start))
    cpu=$(awk '{ printf "%d", $1 + $2 }' "$artifacts/cpu.txt")
    execs=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/^#\([0-9]*\).*/\1/p')
    execs=${execs:-0}
    crashes=$(find "$artifacts" -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' | wc -l)
    if [[ $rc -ne 0 ]]; then
      status=1
      echo "=== $name: FAILED (exit $rc); last lines of $log:"
      tail -n 30 "$log"
    fi

    # Merge: keep a minimal corpus with the same coverage, seeds included.
    merged=$corpus.merging
    rm -rf "$merged"
    mkdir -p "$merged"
    "$binary" "${options[@]}" -merge=1 "$merged" "$corpus" "${extra[@]}" >"$log.merge" 2>&1
    rm -rf "$corpus"
    mv "$merged" "$corpus"
    # The coverage the corpus reaches, measured by replaying it once.
    "$binary" "${options[@]}" -runs=0 "$corpus" >"$log.replay" 2>&1
    cov=$(field "$log.replay" cov)
    ft=$(field "$log.replay" ft)
    files=$(find "$corpus" -type f | wc -l)
    rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    summary+=("$(printf '%-24s %6ss %6ss %12s %9s %7s %7s %7s %7s' "$name" "$elapsed" "${cpu:-?}" \
      "$execs" "$rate" "${cov:-?}" "${ft:-?}" "$files" "$crashes")")
  done

  echo
  printf '%-24s %7s %7s %12s %9s %7s %7s %7s %7s\n' harness time cpu execs exec/s cov ft corpus \
    findings
  for line in "${summary[@]}"; do echo "$line"; done
  return $status
}

main "$@"
exit $?
