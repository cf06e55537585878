"""Helpers shared by the fixture generators tests/gen/gen_*.py (run with Debian's /usr/bin/python3).

The fixture convention that bv_fx_check_op (tests/util/testutil.h) reads, for an op NAME:
  NAME.in0, NAME.in1, ...   float32 inputs (what the C fast path sees)
  NAME.dout                 float32 upstream gradient: the gradients are of sum(out * dout)
  NAME.out, NAME.grad0, ... float64, computed by PyTorch in float64 from the float32 inputs
so one file checks the fast kernels (float tolerance) and the reference kernels (1e-12).

Random values come from torch's global generator: a generator seeds it once and then draws in
a fixed order, so reruns write the same bytes.
"""
import torch


def f32(*shape):
    """A float32 tensor of standard normals of the given shape (f32() is a scalar)."""
    return torch.randn(shape, dtype=torch.float32)


def grads(fn, inputs, dout=None):
    """fn applied to float64 copies of the float32 `inputs`. Returns (out, dout, [gradient of
    each input]) with the gradients of sum(out * dout), all float64 but dout; dout (float32) is
    drawn with f32 after fn has run when not given."""
    xs = [x.double().requires_grad_(True) for x in inputs]
    y = fn(*xs)
    if dout is None:
        dout = f32(*y.shape)
    y.backward(dout.double())
    return y.detach(), dout, [x.grad for x in xs]


def record(t, name, fn, inputs, dout=None, extra=None):
    """grads(fn, inputs, dout), stored into the dict t in the convention above; `extra` holds
    the non-differentiable arguments ({key: tensor}, stored as NAME.key)."""
    y, dout, gs = grads(fn, inputs, dout)
    assert torch.isfinite(y).all(), f"{name}: PyTorch gives a non-finite output; keep such cases out"
    t[f"{name}.out"] = y
    t[f"{name}.dout"] = dout
    for i, (x, g) in enumerate(zip(inputs, gs)):
        t[f"{name}.in{i}"] = x
        t[f"{name}.grad{i}"] = g
    for k, v in (extra or {}).items():
        t[f"{name}.{k}"] = v
