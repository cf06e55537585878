#!/bin/sh
# Builds the libFuzzer targets (ASan + UBSan) from the few sources each needs; not part of the
# CMake build, but CTest's fuzz_smoke (fuzz/smoke.sh) builds and runs them all, so a target that
# stops compiling or linking fails the suite. Needs clang with its runtime libraries (Debian:
# clang and libclang-rt-dev, which scripts/install-deps installs), OpenBLAS (src/common.c calls
# it), jansson and PCRE2.
#   fuzz/build.sh                     # -> build-fuzz/fuzz_<target>  (OUT=dir to build elsewhere)
# Targets and how to run them (the first directory receives new inputs; the committed seeds in
# the second stay untouched):
#   build-fuzz/fuzz_safetensors -dict=fuzz/safetensors.dict -max_total_time=180 build-fuzz/corpus_safetensors fuzz/corpus/safetensors
#   build-fuzz/fuzz_example -dict=fuzz/example.dict -max_total_time=180 build-fuzz/corpus_example fuzz/corpus/example
#   build-fuzz/fuzz_tfrecord -max_total_time=60 build-fuzz/corpus_tfrecord fuzz/corpus/tfrecord
#   build-fuzz/fuzz_tokenizer -dict=fuzz/tokenizer.dict -max_total_time=120 build-fuzz/corpus_tokenizer fuzz/corpus/tokenizer
#   build-fuzz/fuzz_config -dict=fuzz/config.dict -max_total_time=120 build-fuzz/corpus_config fuzz/corpus/config
#   build-fuzz/fuzz_recipe -dict=fuzz/recipe.dict -max_total_time=120 build-fuzz/corpus_recipe fuzz/corpus/recipe
#   build-fuzz/fuzz_serve -max_total_time=120 build-fuzz/corpus_serve fuzz/corpus/serve
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT"
arch=$(uname -m)
BLAS_INC=/usr/include/$arch-linux-gnu/openblas-openmp
BLAS_LIB=/usr/lib/$arch-linux-gnu/openblas-openmp
# Includes are written from the repository root (-I.). Compiled without -fopenmp: nothing here is
# parallel and clang may lack libomp.
CFLAGS="-g -O1 -std=gnu11 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -I. -I$BLAS_INC $(pkg-config --cflags jansson libpcre2-8 libmicrohttpd)"
BLAS="-L$BLAS_LIB -Wl,-rpath,$BLAS_LIB -lopenblas"
JSON=$(pkg-config --libs jansson)
PCRE=$(pkg-config --libs libpcre2-8)
# target, then its sources and libraries (src/common.c and src/atomic_file.c: every target)
build() {
  t=$1
  shift
  # shellcheck disable=SC2086 # the flag lists are meant to split
  $CC $CFLAGS "fuzz/fuzz_$t.c" src/common.c src/atomic_file.c "$@" $BLAS -lpthread -lm -o "$OUT/fuzz_$t"
}
build safetensors src/safetensors.c src/dtype.c src/tensor.c src/arena.c $JSON
build example data/example.c
build tfrecord data/tfrecord.c data/example.c src/crc32c.c
build tokenizer src/tokenizer.c $JSON $PCRE
build config models/config.c $JSON
build recipe recipes/recipe.c data/synth_env.c data/render.c $JSON
build serve eval/serve.c $JSON $(pkg-config --libs libmicrohttpd)
echo "built $OUT/fuzz_safetensors $OUT/fuzz_example $OUT/fuzz_tfrecord $OUT/fuzz_tokenizer $OUT/fuzz_config $OUT/fuzz_recipe $OUT/fuzz_serve"
