# shellcheck shell=bash
# Shared by the preload scripts (src/api/preload_test/*.sh); sourced, never
# run (it sits in a subfolder so CMake's glob does not make it a test).
#
# Each script runs a real program twice: once with the library under test
# preloaded and once without, and compares what they produce. Only the
# program under test gets LD_PRELOAD: the generators and checkers (awk,
# sha256sum, cmp, ...) run on the system malloc, so a wrong answer is the
# preloaded program's. Every preloaded run (but preloaded_without_stats)
# also has HPCALLOC_STATS=1, and its stderr is kept: when the library is
# hpcalloc, the summary it prints at exit proves that hpcalloc, not glibc,
# served the program.
#
#   preload_setup NAME       checks the environment, makes $tmp (removed at exit)
#   preloaded CMD ARGS...    runs CMD preloaded, bounded in time; stderr goes to $preload_log
#   preloaded_without_stats CMD ARGS...
#                            the same with HPCALLOC_STATS=0, for a program whose
#                            children's stderr it parses (cmake reads uname's)
#   plain CMD ARGS...        the same run without the preload (stderr to $plain_log)
#   fail MESSAGE             prints "NAME: FAIL: MESSAGE" and the end of the logs, exits 1
#   expect_equal WHAT EXPECTED ACTUAL
#   expect_same_file WHAT FILE_A FILE_B
#   preload_done             checks the preloaded runs were served, prints "NAME: OK (N s)"
#
# Environment: HPCALLOC_LIBRARY (required), HPCALLOC_SOURCE_DIR (the repo
# root, for the scripts that need it), PRELOAD_TEST_TIMEOUT (seconds allowed
# to one run, default 120).

# What the library prints at exit with HPCALLOC_STATS=1 (print_stats).
readonly HPCALLOC_STATS_PATTERN='^hpcalloc: stats: heaps created [1-9]'

preload_setup() {
  test_name=$1
  SECONDS=0
  # Whatever ran us, nothing but the programs under test is preloaded.
  unset LD_PRELOAD HPCALLOC_STATS
  if [[ -z "${HPCALLOC_LIBRARY:-}" || ! -f "$HPCALLOC_LIBRARY" ]]; then
    echo "$test_name: FAIL: HPCALLOC_LIBRARY must name the library to preload" >&2
    exit 1
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcalloc-$test_name.XXXXXX")
  # shellcheck disable=SC2064  # expand $tmp now: it is fixed from here on
  trap "rm -rf '$tmp'" EXIT
  preload_log="$tmp/preloaded.stderr"
  plain_log="$tmp/plain.stderr"
  : >"$preload_log"
  : >"$plain_log"
  preloaded_runs=0
}

fail() {
  echo "$test_name: FAIL: $*" >&2
  local log
  for log in "$preload_log" "$plain_log"; do
    if [[ -s "$log" ]]; then
      echo "--- last lines of $(basename "$log") ---" >&2
      tail -n 20 "$log" >&2
    fi
  done
  exit 1
}

# Runs "$@" under `timeout`; a hang or a crash fails the test with a message
# naming the command (a status above 128 is a signal: SIGSEGV is 139).
bounded_run() {
  local log=$1 what=$2 status=0
  shift 2
  timeout --kill-after=5 "${PRELOAD_TEST_TIMEOUT:-120}" "$@" 2>>"$log" || status=$?
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    fail "$what run of '$*' timed out after ${PRELOAD_TEST_TIMEOUT:-120} s (hang?)"
  elif [[ $status -ne 0 ]]; then
    fail "$what run of '$*' exited with status $status"
  fi
}

# `env` sets the variables and execs the program, so the program (and the
# processes it starts, which inherit the environment) is all that runs
# preloaded.
preloaded() {
  preloaded_runs=$((preloaded_runs + 1))
  bounded_run "$preload_log" preloaded \
    env LD_PRELOAD="$HPCALLOC_LIBRARY" HPCALLOC_STATS=1 "$@"
}

preloaded_without_stats() {
  bounded_run "$preload_log" preloaded \
    env LD_PRELOAD="$HPCALLOC_LIBRARY" HPCALLOC_STATS=0 "$@"
}

plain() {
  bounded_run "$plain_log" plain "$@"
}

expect_equal() {
  local what=$1 expected=$2 actual=$3
  [[ "$expected" == "$actual" ]] || fail "$what: expected '$expected', got '$actual'"
}

expect_same_file() {
  local what=$1 a=$2 b=$3
  if ! cmp -s "$a" "$b"; then
    diff -u "$a" "$b" 2>/dev/null | head -n 20 >&2 || true
    fail "$what differ ($(basename "$a") vs $(basename "$b"))"
  fi
}

# True when the preloaded library is hpcalloc (it exports the prefixed API);
# under another malloc (jemalloc, tcmalloc: to check the scripts themselves)
# the statistics check is skipped.
library_is_hpcalloc() {
  local symbols # not piped into grep -q: nm would die of SIGPIPE and fail the pipeline
  symbols=$(nm -D --defined-only "$HPCALLOC_LIBRARY" 2>/dev/null) || true
  [[ "$symbols" =~ [[:space:]]hpc_version($|[[:space:]]) ]]
}

preload_done() {
  if grep -q "cannot be preloaded" "$preload_log"; then
    fail "the dynamic loader did not preload $HPCALLOC_LIBRARY"
  fi
  if library_is_hpcalloc; then
    local summaries
    summaries=$(grep -c -E "$HPCALLOC_STATS_PATTERN" "$preload_log" || true)
    if [[ $summaries -lt 1 ]]; then
      fail "no hpcalloc statistics summary on stderr in $preloaded_runs preloaded runs: was hpcalloc serving the program?"
    fi
    echo "$test_name: $summaries hpcalloc statistics summaries in $preloaded_runs preloaded runs"
  else
    echo "$test_name: $(basename "$HPCALLOC_LIBRARY") is not hpcalloc: statistics check skipped"
  fi
  echo "$test_name: OK (${SECONDS} s)"
}
