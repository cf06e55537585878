"""Fixture for tests/test_tensorops.c: PyTorch reference values of the indexing and shape ops.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_tensorops.py
Writes tests/fixtures/tensorops.safetensors. Inputs are float32 (what the C F32 path sees);
expected outputs and gradients are computed in float64 from those same float32 values and stored
as F64, so the C test can hold the F64 path to ~1e-12 and the F32 path to float rounding.
Backward values are the gradients of sum(out * dout) for a stored random `dout`.

Ops: F.embedding (repeated ids), Conv2d(kernel=stride=p) in SigLIP's layout
(conv -> flatten(2) -> transpose(1, 2)), torch.cat, Tensor.narrow, index_select (repeats),
masked_scatter (x.masked_scatter(mask[..., None], src)), permute.
"""
import os

import torch
import torch.nn.functional as F

import common
import stio
from common import f32

torch.manual_seed(1234)
out = {}


def grads(fn, inputs, name):
    """common.grads, storing NAME.out and NAME.dout (the inputs and gradients keep this file's
    own names); returns the gradients."""
    y, dout, gs = common.grads(fn, inputs)
    out[name + ".out"], out[name + ".dout"] = y, dout
    return gs


# embedding: ids with repeats (and an id used three times), table (V, D)
V, D = 11, 6
table = f32(V, D)
ids = torch.tensor([[3, 0, 3, 10, 7], [7, 3, 1, 0, 5]], dtype=torch.int64)
(dt,) = grads(lambda t: F.embedding(ids, t), [table], "embedding")
out.update({"embedding.table": table, "embedding.ids": ids, "embedding.dtable": dt})

# SigLIP patch embedding: Conv2d(C -> OC, kernel = stride = p) then flatten(2).transpose(1, 2)
B, C, H, W, p, OC = 2, 3, 28, 42, 14, 4
img, w, b = f32(B, C, H, W), f32(OC, C, p, p), f32(OC)
dimg, dw, db = grads(lambda i, ww, bb: F.conv2d(i, ww, bb, stride=p).flatten(2).transpose(1, 2),
                     [img, w, b], "conv")
out.update({"conv.img": img, "conv.w": w, "conv.b": b, "conv.p": torch.tensor([p]),
            "conv.dimg": dimg, "conv.dw": dw, "conv.db": db})

# cat along dim 1
a, bb_, c = f32(2, 3, 4), f32(2, 1, 4), f32(2, 2, 4)
da, dbb, dc = grads(lambda x, y, z: torch.cat([x, y, z], dim=1), [a, bb_, c], "cat")
out.update({"cat.a": a, "cat.b": bb_, "cat.c": c, "cat.da": da, "cat.db": dbb, "cat.dc": dc})

# narrow
x = f32(3, 7, 2)
(dx,) = grads(lambda t: t.narrow(1, 2, 4), [x], "narrow")
out.update({"narrow.x": x, "narrow.dx": dx, "narrow.args": torch.tensor([1, 2, 4])})

# index_select along dim 1 with repeats
x = f32(4, 5, 3)
idx = torch.tensor([4, 0, 4, 2, 1, 0], dtype=torch.int64)
(dx,) = grads(lambda t: t.index_select(1, idx), [x], "index_select")
out.update({"index_select.x": x, "index_select.idx": idx, "index_select.dx": dx})

# masked_scatter on rows
x = f32(2, 5, 4)
mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], dtype=torch.bool)
src = f32(int(mask.sum()), 4)
dx, dsrc = grads(lambda t, s: t.masked_scatter(mask[..., None], s), [x, src], "masked_scatter")
out.update({"masked_scatter.x": x, "masked_scatter.mask": mask.to(torch.uint8), "masked_scatter.src": src,
            "masked_scatter.dx": dx, "masked_scatter.dsrc": dsrc})

# permute
x = f32(2, 3, 4, 5)
perm = [2, 0, 3, 1]
(dx,) = grads(lambda t: t.permute(*perm), [x], "permute")
out.update({"permute.x": x, "permute.perm": torch.tensor(perm), "permute.dx": dx})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tensorops.safetensors")
stio.save(path, out, {"generator": "tests/gen/gen_tensorops.py", "torch": torch.__version__})
print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")
