"""Writes tests/fixtures/dtype.safetensors: f32 inputs and PyTorch's f32 -> bf16 and f32 -> f16
conversions of them (raw 16-bit patterns), for tests/test_dtype.c. The inputs stress round to
nearest even: exact ties of both halves (normal and subnormal), one f32 ulp above and below each
tie, subnormals of both halves, overflow to inf, +-0, +-inf, quiet and signalling NaNs, and random
values over the whole f32 exponent range.
Run with Debian's /usr/bin/python3 (torch):  /usr/bin/python3 tests/gen/gen_dtype.py
"""
import os

import numpy as np
import torch

import stio

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "dtype.safetensors")


def f32_bits_of(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def with_neighbours(bits):
    """Each f32 pattern and the patterns one ulp below and above it (same sign)."""
    bits = np.asarray(bits, dtype=np.int64)
    return np.concatenate([bits, bits - 1, bits + 1])


def main():
    rng = np.random.default_rng(1234)
    parts = []
    # random values over the whole exponent range, both signs (positive finite f32 patterns)
    parts.append(rng.integers(0, 0x7F800000, 2000))
    # values of ordinary size (where the models live)
    parts.append(f32_bits_of(rng.standard_normal(1000) * 10.0 ** rng.integers(-6, 6, 1000)))
    # bf16 ties: a bf16 pattern followed by a half ulp (0x8000), normal and f32-subnormal
    hi = rng.integers(0x0080, 0x7F7F, 600)
    parts.append(with_neighbours((hi << 16) | 0x8000))
    hi_sub = rng.integers(0, 0x0080, 150)
    parts.append(with_neighbours((hi_sub << 16) | 0x8000))
    # f16 ties in the normal range: an f16 value plus half an f16 ulp (= 2^12 f32 ulps)
    h = rng.integers(0x0400, 0x7BFF, 600).astype(np.uint16)
    hb = f32_bits_of(h.view(np.float16).astype(np.float32)).astype(np.int64)
    parts.append(with_neighbours(hb + (1 << 12)))
    # f16 subnormals k * 2^-24 and ties (k + 1/2) * 2^-24, including 2^-25 (ties to 0)
    parts.append(f32_bits_of(np.arange(0, 1025, 2, dtype=np.float64) * 2.0 ** -24))
    k = np.concatenate([[0, 1, 2, 1022, 1023], rng.integers(0, 1024, 400)]).astype(np.float64)
    parts.append(with_neighbours(f32_bits_of((k + 0.5) * 2.0 ** -24)))
    parts.append(with_neighbours(f32_bits_of([2.0 ** -25, 2.0 ** -26, 2.0 ** -14, 2.0 ** -15])))
    # f32 subnormals (bf16 subnormals) and random tiny values
    parts.append(rng.integers(1, 0x00800000, 300))
    # overflow: around f16 max 65504 and its rounding boundary 65520, around bf16 max and f32 max
    parts.append(with_neighbours(f32_bits_of([65504.0, 65520.0, 65536.0, 65519.0, 1e5, 1e30])))
    parts.append(with_neighbours([0x7F7F0000, 0x7F7F8000, 0x7F7FFFFF - 1, 0x7F7EFFFF, 0x7F7F7FFF + 1]))
    # specials: zeros, infinities, NaNs (quiet, signalling with payloads only in the low 16 bits)
    parts.append([0x00000000, 0x7F800000, 0x7FC00000, 0x7F800001, 0x7F80FFFF, 0x7FBFFFFF, 0x7FFFFFFF,
                  0x7FC00001, 0x00000001, 0x7F7FFFFF, 0x00800000, 0x007FFFFF])
    pos = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
    pos = pos[(pos >= 0) & (pos <= 0x7FFFFFFF)]
    bits = np.concatenate([pos, pos | 0x80000000]).astype(np.uint32)  # both signs
    x = torch.from_numpy(bits.view(np.float32).copy())
    bf16 = x.to(torch.bfloat16)
    f16 = x.to(torch.float16)
    stio.save(OUT, {"x": x, "bf16": bf16, "f16": f16}, metadata={"generator": "gen_dtype.py",
                                                                 "torch": torch.__version__})
    print(OUT, x.numel(), "values,", os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
