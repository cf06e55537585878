"""Fixture for tests/test_elementwise.c: PyTorch forward and gradients of the element-wise ops.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_elementwise.py
Writes tests/fixtures/elementwise.safetensors (a few KB).

Inputs are float32 (what the C fast path sees). Expected values are computed by PyTorch in float64
from those same float32 inputs and then rounded to float32, so they are the exact PyTorch
definitions (gelu approximate='tanh', exact erf gelu, relu, relu(x)**2, silu, broadcasting
add/sub/mul) to within one float32 rounding, independent of PyTorch's own float32 evaluation.
Tensor names:
  x, g                        activation input (N) and upstream gradient (N)
  <act>.y, <act>.dx           for act in gelu_tanh, gelu_erf, relu, relu2, silu
  scale.y, scale.dx           y = SCALE * x
  <op>.a, <op>.b, <op>.g, <op>.y, <op>.da, <op>.db   broadcasting binary ops:
      mul: a (3, 1, 5) * b (4, 1);  sub: a (2, 3, 4) - b (4);  add: a (1) + b (2, 3)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import stio  # noqa: E402

SEED = 1234
SCALE = -0.37
ACTS = {
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "gelu_erf": lambda t: F.gelu(t),
    "relu": F.relu,
    "relu2": lambda t: F.relu(t) ** 2,
    "silu": F.silu,
}
BINARY = {
    "mul": ((3, 1, 5), (4, 1), torch.mul),
    "sub": ((2, 3, 4), (4,), torch.sub),
    "add": ((1,), (2, 3), torch.add),
}


def grads(f, inputs, g):
    """common.grads (f applied in float64 to float32 inputs, seeded with g); returns (y,
    [d input]) rounded to float32."""
    y, _, gs = common.grads(f, inputs, g)
    return y.float(), [d.float() for d in gs]


def main():
    torch.manual_seed(SEED)
    out = {}
    # activation inputs: normals of std 3 plus the tails; none within 1e-2 of relu's kink at 0
    x = torch.cat([torch.randn(251) * 3, torch.tensor([-30.0, -10.0, -5.0, 5.0, 10.0, 30.0])]).float()
    x = torch.where(x.abs() < 1e-2, torch.full_like(x, 0.5), x)
    g = torch.randn(x.numel()).float()
    out["x"], out["g"] = x, g
    for name, f in ACTS.items():
        y, (dx,) = grads(f, [x], g)
        # sanity: PyTorch's own float32 evaluation agrees with the float64 reference
        x32 = x.clone().requires_grad_()
        y32 = f(x32)
        y32.backward(g)
        assert torch.allclose(y32, y, atol=1e-5, rtol=1e-5), name
        assert torch.allclose(x32.grad, dx, atol=1e-5, rtol=1e-5), name
        out[name + ".y"], out[name + ".dx"] = y, dx
    y, (dx,) = grads(lambda t: t * SCALE, [x], g)
    out["scale.y"], out["scale.dx"] = y, dx
    for name, (sa, sb, f) in BINARY.items():
        a, b = torch.randn(sa).float(), torch.randn(sb).float()
        gy = torch.randn(torch.broadcast_shapes(sa, sb)).float()
        y, (da, db) = grads(f, [a, b], gy)
        for k, v in (("a", a), ("b", b), ("g", gy), ("y", y), ("da", da), ("db", db)):
            out[name + "." + k] = v
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "elementwise.safetensors")
    stio.save(path, out, {"generator": "tests/gen/gen_elementwise.py", "torch": torch.__version__,
                          "seed": str(SEED), "scale": repr(SCALE)})
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
