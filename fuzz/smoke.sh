#!/bin/sh
# CTest's fuzz_smoke: builds every libFuzzer target (fuzz/build.sh) into DIR and runs each for a
# few seconds (BV_FUZZ_SECONDS, default 5) on its committed seeds, so a target that no longer
# compiles or links, or an input the seeds or a short run reach that crashes, fails the suite.
# Exits 77 (CTest: skipped, with the reason) when clang cannot link a libFuzzer program; Debian's
# clang and libclang-rt-dev provide it and scripts/install-deps installs them.
#   fuzz/smoke.sh DIR
set -eu
cd "$(dirname "$0")/.."
out=${1:?usage: fuzz/smoke.sh DIR}
secs=${BV_FUZZ_SECONDS:-5}
CC=${CC:-clang}
mkdir -p "$out"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"$out/probe.c"
if ! command -v "$CC" >/dev/null 2>&1 ||
   ! "$CC" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" >"$out/probe.log" 2>&1; then
  echo "fuzz_smoke: SKIPPED: '$CC' cannot link a libFuzzer program (Debian: clang and libclang-rt-dev;"
  echo "scripts/install-deps installs them):"
  cat "$out/probe.log" 2>/dev/null || true
  exit 77
fi
OUT=$out fuzz/build.sh
fail=0
for t in safetensors example tfrecord tokenizer config recipe serve; do
  dict=
  [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
  rm -rf "$out/corpus_$t"
  mkdir -p "$out/corpus_$t"
  echo "== fuzz_$t: $secs s on fuzz/corpus/$t"
  # shellcheck disable=SC2086 # $dict is empty or one flag
  if "$out/fuzz_$t" $dict -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$out/crash_$t-" "$out/corpus_$t" "fuzz/corpus/$t" >"$out/fuzz_$t.log" 2>&1; then
    grep -E '^(Done|stat::(number_of_executed_units|peak_rss_mb))' "$out/fuzz_$t.log" || true
  else
    tail -n 60 "$out/fuzz_$t.log"
    echo "fuzz_smoke: fuzz_$t FAILED; the input is saved as $out/crash_$t-*"
    fail=1
  fi
done
exit $fail
