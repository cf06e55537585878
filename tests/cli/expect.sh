#!/usr/bin/env bash
# A CLI check for CTest: runs a command and passes only when both its exit status and its output
# are as expected (CTest's WILL_FAIL and PASS_REGULAR_EXPRESSION cannot be combined).
#   Usage: tests/cli/expect.sh STATUS REGEX [--absent REGEX2] COMMAND [ARGS...]
#     STATUS  the exit status wanted: a number, or "fail" for any non-zero one
#     REGEX   an extended regular expression that stdout + stderr must match
#     REGEX2  one they must not match (e.g. a line printed only after work that must not start)
set -uo pipefail
if [[ $# -lt 3 ]]; then
  echo "expect.sh: usage: expect.sh STATUS REGEX [--absent REGEX2] COMMAND [ARGS...]" >&2
  exit 2
fi
want=$1 re=$2 absent=
shift 2
if [[ ${1:-} == --absent ]]; then
  absent=$2
  shift 2
fi
start=$(date +%s)
out=$("$@" 2>&1)
rc=$?
secs=$(( $(date +%s) - start ))
printf '%s\n' "$out"
echo "-- exit status $rc after ${secs} s"
if [[ $want == fail ]]; then
  [[ $rc -ne 0 ]] || { echo "expect.sh: expected a failure (non-zero exit status), got 0" >&2; exit 1; }
elif [[ $rc -ne $want ]]; then
  echo "expect.sh: expected exit status $want, got $rc" >&2
  exit 1
fi
if ! grep -Eq -- "$re" <<<"$out"; then
  echo "expect.sh: the output does not match /$re/" >&2
  exit 1
fi
if [[ -n $absent ]] && grep -Eq -- "$absent" <<<"$out"; then
  echo "expect.sh: the output matches /$absent/, which it must not" >&2
  exit 1
fi
exit 0
