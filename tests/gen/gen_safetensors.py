"""Writes tests/fixtures/st_python.safetensors with tests/gen/stio.py (the writer every fixture
generator uses), so tests/test_safetensors.c checks that the C reader parses what the Python side
writes. Values are simple closed forms the C test recomputes: element i of each tensor is listed
next to it. Run with Debian's /usr/bin/python3 (torch):  /usr/bin/python3 tests/gen/gen_safetensors.py
"""
import os

import torch

import stio

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "st_python.safetensors")


def main():
    t = {
        # i * 0.25 - 1                     (exact in every float dtype)
        "f32": (torch.arange(6, dtype=torch.float64) * 0.25 - 1).to(torch.float32).reshape(2, 3),
        "f64": (torch.arange(4, dtype=torch.float64) / 3.0).reshape(4),
        "bf16": (torch.arange(5, dtype=torch.float64) * 0.25 - 1).to(torch.bfloat16).reshape(5),
        "f16": (torch.arange(8, dtype=torch.float64) * 0.25 - 1).to(torch.float16).reshape(2, 2, 2),
        # i - 3 / i * 7 % 256 / i * 1000 - 2000 / i * 2^40
        "i8": (torch.arange(7) - 3).to(torch.int8),
        "u8": ((torch.arange(9) * 7) % 256).to(torch.uint8).reshape(3, 3),
        "i32": (torch.arange(3) * 1000 - 2000).to(torch.int32).reshape(1, 3),
        "i64": (torch.arange(2) * (1 << 40)).to(torch.int64),
        "scalar": torch.tensor(2.5, dtype=torch.float32),  # rank 0
        "empty": torch.zeros(0, 3, dtype=torch.float32),  # no data
        "rank5": (torch.arange(8, dtype=torch.float64) * 0.25 - 1).to(torch.float32).reshape(1, 2, 1, 2, 2),
        "mask": torch.tensor([True, False, True]),  # bool is written as U8
    }
    stio.save(OUT, t, metadata={"format": "pt", "generator": "gen_safetensors.py"})
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
