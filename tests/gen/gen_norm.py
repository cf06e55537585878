"""Fixture for tests/test_norm.c and tests/test_loss.c: PyTorch reference values of softmax,
LayerNorm, RMSNorm (HF Llama/BitNet formula), cross-entropy (ignore_index -100), L1 and MSE,
forward and gradients.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_norm.py
Writes tests/fixtures/norm.safetensors. Inputs are float32 (what the C tests feed to both the F32
and the F64 paths); expected values are computed by torch in float64 from those float32 inputs, so
one file checks the fast kernels (float tolerance) and the reference kernels (tight tolerance).
Upstream gradients of the non-scalar ops are the stored `*.gy`; losses are seeded with 1.
"""
import os

import torch
import torch.nn.functional as F

import stio

torch.manual_seed(20240611)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "norm.safetensors")
LN_EPS = 1e-5
RMS_EPS = 1e-5
IGNORE = -100

t = {}


def leaf(x):
    """float32 input -> float64 leaf that requires grad (same values)."""
    return x.to(torch.float64).requires_grad_(True)


# ---- softmax (last dim); row 1 has logits up to ~+-90 (overflows exp without the max shift) ----
x = torch.randn(5, 37)
x[1] *= 40.0
gy = torch.randn(5, 37)
xd = leaf(x)
y = torch.softmax(xd, dim=-1)
y.backward(gy.double())
t.update({"sm.x": x, "sm.gy": gy, "sm.y": y.detach(), "sm.dx": xd.grad})

# ---- layernorm: row 2 has variance ~1e-6 (eps dominates: checks eps inside the sqrt),
# row 3 a mean of 50 (checks the centring) ----
x = torch.randn(6, 45)
x[2] *= 1e-3
x[3] += 50.0
w = 1.0 + 0.3 * torch.randn(45)
b = 0.2 * torch.randn(45)
gy = torch.randn(6, 45)
xd, wd, bd = leaf(x), leaf(w), leaf(b)
y = F.layer_norm(xd, (45,), wd, bd, eps=LN_EPS)
y.backward(gy.double())
t.update({"ln.x": x, "ln.w": w, "ln.b": b, "ln.gy": gy, "ln.y": y.detach(), "ln.dx": xd.grad, "ln.dw": wd.grad,
          "ln.db": bd.grad})
xd, wd = leaf(x), leaf(w)
y = F.layer_norm(xd, (45,), wd, None, eps=LN_EPS)
y.backward(gy.double())
t.update({"ln.y_nobias": y.detach(), "ln.dx_nobias": xd.grad, "ln.dw_nobias": wd.grad})

# ---- rmsnorm, HF LlamaRMSNorm / BitNetRMSNorm: w * (x * rsqrt(mean(x^2) + eps)) ----
x = torch.randn(6, 45)
x[4] *= 2e-3
w = 1.0 + 0.3 * torch.randn(45)
gy = torch.randn(6, 45)
xd, wd = leaf(x), leaf(w)
variance = xd.pow(2).mean(-1, keepdim=True)
y = wd * (xd * torch.rsqrt(variance + RMS_EPS))
y.backward(gy.double())
t.update({"rms.x": x, "rms.w": w, "rms.gy": gy, "rms.y": y.detach(), "rms.dx": xd.grad, "rms.dw": wd.grad})

# ---- cross-entropy, mean over non-ignored targets; rows 2 and 5 ignored, row 4 scaled x30 ----
logits = torch.randn(7, 131)
logits[4] *= 30.0
targets = torch.randint(0, 131, (7,))
targets[2] = IGNORE
targets[5] = IGNORE
ld = leaf(logits)
loss = F.cross_entropy(ld, targets, ignore_index=IGNORE)
loss.backward()
t.update({"ce.logits": logits, "ce.targets": targets, "ce.loss": loss.detach(), "ce.dlogits": ld.grad})

# ---- l1 / mse on an (8, 7) action chunk; some elements equal (L1 gradient 0 there, like torch) ----
p = torch.randn(8, 7)
tg = torch.randn(8, 7)
tg[0, :3] = p[0, :3]
tg[5, 6] = p[5, 6]
for name, fn in (("l1", F.l1_loss), ("mse", F.mse_loss)):
    pd, td = leaf(p), leaf(tg)
    loss = fn(pd, td)
    loss.backward()
    t.update({name + ".loss": loss.detach(), name + ".dp": pd.grad, name + ".dt": td.grad})
t.update({"loss.p": p, "loss.t": tg})

stio.save(OUT, t, metadata={"ln_eps": LN_EPS, "rms_eps": RMS_EPS, "ignore_index": IGNORE,
                            "generator": "tests/gen/gen_norm.py", "torch": torch.__version__})
print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")
