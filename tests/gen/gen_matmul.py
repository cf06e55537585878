"""Fixture for tests/test_matmul.c and tests/test_reduce.c: PyTorch values of F.linear, batched
matmul with every transpose combination (and a shared rank-2 right operand), sum and mean.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_matmul.py
Inputs float32; expected outputs and gradients of sum(out * dout) computed in float64 from them.
"""
import functools
import os

import torch
import torch.nn.functional as F

import common
import stio
from common import f32

torch.manual_seed(7)
out = {}
record = functools.partial(common.record, out)


record("linear", lambda x, w, b: F.linear(x, w, b), [f32(2, 5, 7), f32(3, 7), f32(3)])
for shared in (0, 1):
    for ta in (0, 1):
        for tb in (0, 1):
            M, K, N = 4, 6, 5
            a = f32(3, K, M) if ta else f32(3, M, K)
            bshape = (N, K) if tb else (K, N)
            b = f32(*bshape) if shared else f32(3, *bshape)

            def mm(x, y, ta=ta, tb=tb):
                x = x.transpose(-1, -2) if ta else x
                y = y.transpose(-1, -2) if tb else y
                return x @ y

            record(f"matmul_s{shared}_a{ta}_b{tb}", mm, [a, b])
record("sum", lambda x: x.sum(), [f32(3, 4, 5)])
record("mean", lambda x: x.mean(), [f32(3, 4, 5)])
record("sum_dim1", lambda x: x.sum(dim=1), [f32(3, 4, 5)])
record("mean_dim2", lambda x: x.mean(dim=2), [f32(3, 4, 5)])

stio.save(os.path.join(os.path.dirname(__file__), "..", "fixtures", "matmul.safetensors"), out)
