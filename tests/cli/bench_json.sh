#!/usr/bin/env bash
# `bitvla bench encoder --json FILE` appends its figures to FILE as JSON lines and keeps what FILE
# held; the smallest real run there is (--reps 1: two warm-up steps and one timed, a few seconds).
#   Usage: tests/cli/bench_json.sh path/to/bitvla
set -euo pipefail
bin=$1
tmp=$(mktemp -d /tmp/bv_bench_json.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/figures.jsonl
echo '{"bench": "earlier run"}' >"$out"
"$bin" bench encoder --reps 1 --threads 1 --json "$out"
echo "-- $out:"
cat "$out"
fail() { echo "bench_json.sh: $*" >&2; exit 1; }
[[ $(head -1 "$out") == '{"bench": "earlier run"}' ]] || fail "the line already in the file was not kept first"
n=$(grep -c '^{"bench": "encoder", "case": "siglip-so400m layer B=2 T=256 quant=False", "threads": 1, "reps": 1, "ms": [0-9.]*, ' "$out" || true)
[[ $n -eq 1 ]] || fail "expected one encoder line with threads 1 and reps 1, found $n"
[[ $(wc -l <"$out") -eq 2 ]] || fail "expected 2 lines in all"
[[ -z $(find "$tmp" -name '*.tmp.*') ]] || fail "a temporary file was left behind"
echo "bench_json.sh: ok"
