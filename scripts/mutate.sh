#!/usr/bin/env bash
# The mutation campaign (issue 17): every planted bug in scripts/mutations/
# against the test layer it names. Not part of the default test run; see
# scripts/mutate.py for the patch format and README.md for the last table.
#   scripts/mutate.sh [--only REGEX] [--list] [--timeout SECONDS]
exec python3 "$(dirname "$0")/mutate.py" "$@"
