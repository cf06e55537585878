#!/bin/sh
# Builds the libFuzzer targets (fuzz_safetensors, fuzz_example, fuzz_tfrecord; ASan + UBSan) from the
# few sources each needs. Not part of the CMake build. Needs clang with libclang-rt (Debian: apt-get install -y clang libclang-rt-14-dev,
# or the libclang-rt that matches your clang), OpenBLAS (common.c calls it) and jansson.
#   fuzz/build.sh                 # -> build-fuzz/fuzz_safetensors
#   build-fuzz/fuzz_safetensors -dict=fuzz/safetensors.dict -max_total_time=180 \
#       build-fuzz/corpus fuzz/corpus/safetensors
# (the first directory receives new inputs; the committed seeds in the second stay untouched)
#   build-fuzz/fuzz_example -dict=fuzz/example.dict -max_total_time=180 build-fuzz/corpus_example fuzz/corpus/example
#   build-fuzz/fuzz_tfrecord -max_total_time=60 build-fuzz/corpus_tfrecord fuzz/corpus/tfrecord
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT" "$OUT/corpus" "$OUT/corpus_example" "$OUT/corpus_tfrecord"
arch=$(uname -m)
BLAS_INC=/usr/include/$arch-linux-gnu/openblas-openmp
BLAS_LIB=/usr/lib/$arch-linux-gnu/openblas-openmp
# Compiled without -fopenmp: nothing here is parallel and clang may lack libomp.
$CC -g -O1 -std=gnu11 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I. -Isrc -I"$BLAS_INC" $(pkg-config --cflags jansson) \
    fuzz/fuzz_safetensors.c src/safetensors.c src/dtype.c src/tensor.c src/arena.c src/common.c \
    -o "$OUT/fuzz_safetensors" \
    $(pkg-config --libs jansson) -L"$BLAS_LIB" -Wl,-rpath,"$BLAS_LIB" -lopenblas -lm
for t in example tfrecord; do
  $CC -g -O1 -std=gnu11 -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -I. -Isrc -I"$BLAS_INC" \
      fuzz/fuzz_$t.c data/example.c data/tfrecord.c data/atomic.c src/common.c \
      -o "$OUT/fuzz_$t" -L"$BLAS_LIB" -Wl,-rpath,"$BLAS_LIB" -lopenblas -lpthread -lm
done
echo "built $OUT/fuzz_safetensors $OUT/fuzz_example $OUT/fuzz_tfrecord"
