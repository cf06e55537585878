#!/usr/bin/env bash
# `bitvla plot RUN_DIR` on a copy of tests/fixtures/metrics_run: writes RUN_DIR/plots/training.png
# (a PNG of the expected size, no temporary left), names the four panels, and leaves metrics.jsonl
# as it was; `--out DIR` writes DIR/training.png instead, creating DIR.
#   Usage: tests/cli/plot.sh path/to/bitvla path/to/tests/fixtures/metrics_run
set -euo pipefail
bin=$1 fixture=$2
tmp=$(mktemp -d /tmp/bv_plot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "plot.sh: $*" >&2; exit 1; }
cp -r "$fixture" "$tmp/run"
out=$("$bin" plot "$tmp/run")
echo "$out"
[[ $out == "bitvla plot: wrote $tmp/run/plots/training.png (64 records, 6 series in 4 panels: loss lr grad_norm samples_per_s)" ]] ||
  fail "unexpected report"
png=$tmp/run/plots/training.png
[[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$png is not a PNG"
# IHDR: width and height, big-endian, at bytes 16..23: two columns of 640, a title and two rows of 400
[[ $(od -An -tu1 -j16 -N8 "$png" | tr -s ' ') == " 0 0 5 0 0 0 3 68" ]] || fail "$png is not 1280 x 836"
cmp -s "$fixture/metrics.jsonl" "$tmp/run/metrics.jsonl" || fail "metrics.jsonl changed"
[[ -z $(find "$tmp" -name '*.tmp.*') ]] || fail "a temporary file was left behind"
"$bin" plot "$tmp/run" --out "$tmp/elsewhere/figs" >/dev/null
[[ -s $tmp/elsewhere/figs/training.png ]] || fail "--out: no $tmp/elsewhere/figs/training.png"
echo "plot.sh: ok"
