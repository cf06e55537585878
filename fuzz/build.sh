#!/bin/sh
# Builds fuzz/fuzz_safetensors (libFuzzer + ASan + UBSan) from the few sources it needs. Not part of
# the CMake build. Needs clang with libclang-rt (Debian: apt-get install -y clang libclang-rt-14-dev,
# or the libclang-rt that matches your clang), OpenBLAS (common.c calls it) and jansson.
#   fuzz/build.sh                 # -> build-fuzz/fuzz_safetensors
#   build-fuzz/fuzz_safetensors -dict=fuzz/safetensors.dict -max_total_time=180 \
#       build-fuzz/corpus fuzz/corpus/safetensors
# (the first directory receives new inputs; the committed seeds in the second stay untouched)
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT" "$OUT/corpus"
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
echo "built $OUT/fuzz_safetensors"
