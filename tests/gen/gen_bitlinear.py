"""Fixture for tests/test_bitlinear.c: PyTorch values of the BitLinear quantizers and of a
BitLinear layer's forward and straight-through gradients (spec section 2; the formulas of
bench/peer/torch_peer.py and bitvla-repo, evaluated by PyTorch itself).

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_bitlinear.py
Writes tests/fixtures/bitlinear.safetensors (about 115 KB).

Layout:
  wq.CASE.w (F32), .scale (F32, s), .codes (I8), .wq (F32)      weight quantizer cases
      s = 1 / clamp(mean|W|, 1e-5) with mean|W| = w.abs().double().mean().float() (the C code's
      definition: fp32 rounding of the double-accumulated mean), then PyTorch's fp32 ops.
      Cases named exact*: |W| sums exactly in fp32, and the values come from PyTorch's own fp32
      w.abs().mean() (the generator asserts that both definitions agree on them).
  aq.CASE.x (F32, (N, C)), .scale (F32, (N)), .codes (I8), .xq (F32)   activation quantizer cases
  bl.x, bl.w, bl.b, bl.dout (F32)                                 BitLinear layer inputs
  bl.wWaAbB.f32.{out,grad0,grad1,grad2} (F64)  W = weight bits (1, 32), A = act bits (8, 32),
      B = bias (0, 1): PyTorch's fp32 quantization of the inputs, then the linear layer and the STE
      gradients of sum(out * dout) in float64 (what the fast fp32 path computes, up to sgemm's
      rounding).
  bl.wWaAbB.f64.{out,grad0,grad1,grad2} (F64)  the same formulas evaluated by PyTorch entirely in
      float64 (what the double reference path computes).
"""
import math
import os

import torch
import torch.nn.functional as F

import stio

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "bitlinear.safetensors")
torch.manual_seed(1234)
t = {}


# ---- the reference formulas, exactly as torch_peer.py / bitvla-repo write them ----
def weight_quant_parts(w, mean=None):
    m = w.abs().mean() if mean is None else mean
    s = 1.0 / m.clamp(min=1e-5)  # PyTorch: m.reciprocal() * 1.0
    codes = (w * s).round().clamp(-1, 1)
    return s, codes, codes / s


def act_quant_parts(x):
    s = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)  # reciprocal() * 127.0
    codes = (x * s).round().clamp(-128, 127)
    return s, codes, codes / s


def same_bits(a, b):
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


# ---- weights ----
def add_weight(name, w, exact=False):
    w = w.float().contiguous()
    if exact:
        m32 = w.abs().mean()                      # PyTorch's own fp32 mean
        m = w.abs().double().mean().float()       # our definition
        assert same_bits(m32, m), f"{name}: fp32 mean {m32.item()!r} != double mean {m.item()!r}"
        s, codes, wq = weight_quant_parts(w)      # straight torch_peer formula on fp32
    else:
        s, codes, wq = weight_quant_parts(w, w.abs().double().mean().float())
    # the division codes / s is a true fp32 division, equal to codes * (1/s) for ternary codes
    assert same_bits(wq, codes * (1.0 / s.double()).float()), name
    t[f"wq.{name}.w"] = w
    t[f"wq.{name}.scale"] = s.reshape(1)
    t[f"wq.{name}.codes"] = codes.to(torch.int8)
    t[f"wq.{name}.wq"] = wq


def tie_weights(shape, mean):
    """Values in {+-mean/2, +-3mean/2} (equal counts, so mean|W| = mean exactly, s = 1/mean a power
    of two): every w*s is an exact tie +-0.5 or +-1.5; plus +-mean (code +-1) and +-2mean."""
    n = math.prod(shape)
    q = n // 4
    mags = torch.tensor([0.5] * q + [1.5] * q + [1.0] * q + [0.5, 1.5] * ((n - 3 * q) // 2) + [1.0] * ((n - 3 * q) % 2))
    assert mags.numel() == n and abs(mags.mean().item() - 1.0) < 1e-12, mags.mean()
    mags = mags[torch.randperm(n)] * mean
    sign = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    return (mags * sign).reshape(shape)


add_weight("rand", torch.randn(23, 29) * 0.02)
add_weight("rand_unit", torch.randn(9, 40))
add_weight("ties_half", tie_weights((12, 16), 0.5))
add_weight("ties_quarter", tie_weights((7, 24), 2.0 ** -6))
add_weight("zeros", torch.zeros(5, 7))
add_weight("tiny", torch.randn(6, 9) * 1e-30)            # mean < 1e-5: the eps path
add_weight("subnormal", torch.randn(4, 8) * 1e-40)
add_weight("large", torch.randn(9, 11) * 1e30)
mixed = torch.randn(8, 16)
mixed.view(-1)[::13] *= 1e30
mixed.view(-1)[5::17] *= 1e-30
add_weight("mixed", mixed)
add_weight("single", torch.tensor([[0.3]]))
add_weight("single_neg", torch.tensor([[-7.5e-6]]))       # below eps: s = 1e5, code -1
g = torch.Generator().manual_seed(99)
for i, shape in enumerate([(31, 41), (24, 40), (1, 600), (17, 3)]):
    # multiples of 2^-10 with |w| <= 4: every partial sum of |W| is exact in fp32
    w = torch.randint(-4096, 4097, shape, generator=g).float() / 1024
    add_weight(f"exact{i}", w, exact=True)
add_weight("exact_ties", tie_weights((16, 16), 0.25), exact=True)


# ---- activations ----
def add_act(name, x):
    x = x.float().contiguous()
    s, codes, xq = act_quant_parts(x)
    t[f"aq.{name}.x"] = x
    t[f"aq.{name}.scale"] = s.reshape(-1)
    t[f"aq.{name}.codes"] = codes.to(torch.int8)
    t[f"aq.{name}.xq"] = xq


def pow2_scale_max():
    """Row maxima m whose scale fl(fl(1/m) * 127) is a power of two, so (k + 0.5) / s is exact."""
    found = []
    for j in range(-6, 12):
        m = torch.tensor([127.0 * 2.0 ** -j], dtype=torch.float32)
        s = 127.0 / m
        if s.item() == 2.0 ** j:
            found.append((m.item(), s.item()))
    assert len(found) >= 4, found
    return found


def tie_rows(C):
    rows = []
    for m, s in pow2_scale_max()[:5]:
        ks = torch.randint(-127, 127, (C - 1,)).double() + 0.5   # ties k + 0.5 in (-127, 127)
        r = torch.cat([torch.tensor([m * (1 if len(rows) % 2 == 0 else -1)], dtype=torch.float64), ks / s])
        rows.append(r[torch.randperm(C)])
    x = torch.stack(rows).float()
    # check: every element but the max is an exact tie
    s, _, _ = act_quant_parts(x)
    v = x * s
    assert ((v - v.floor()) == 0.5).sum().item() == x.shape[0] * (C - 1)
    return x


add_act("rand", torch.randn(7, 33) * 3)
add_act("ties", tie_rows(29))
zr = torch.randn(4, 8)
zr[1] = 0
zr[3, ::2] = -0.0
add_act("zero_row", zr)
add_act("zeros", torch.zeros(2, 5))
add_act("large", torch.cat([torch.randn(2, 12) * 1e30, torch.randn(1, 12) * 3e38 / 4]))
add_act("small", torch.cat([torch.randn(2, 10) * 1e-30, torch.randn(1, 10) * 1e-40,
                            torch.tensor([[1.0] + [1e-40] * 9]), torch.tensor([[-3e-3, 7e-6, -1e-3] + [0.0] * 7])]))
add_act("single", torch.tensor([[0.3], [-2.0], [0.0], [1e30], [-1e-30], [1e-40], [127.0]]))
nz = torch.randn(3, 16) * 1e-3
nz[:, 0] = torch.tensor([5.0, -4.0, 3.0])   # small negatives round to -0.0
add_act("negzero", nz)
add_act("wide", torch.randn(3, 300))


# ---- a BitLinear layer ----
x = torch.randn(2, 3, 17)
w = torch.randn(11, 17) * 0.2
b = torch.randn(11)
dout = torch.randn(2, 3, 11)
t["bl.x"], t["bl.w"], t["bl.b"], t["bl.dout"] = x, w, b, dout


def bitlinear(x, w, b, wbits, abits, w_mean=None):
    """torch_peer's BitLinear.forward with the switches (STE via detach)."""
    if wbits == 1:
        w = w + (weight_quant_parts(w, w_mean)[2] - w).detach()
    if abits == 8:
        x = x + (act_quant_parts(x)[2] - x).detach()
    return F.linear(x, w, b)


for wbits in (1, 32):
    for abits in (8, 32):
        for has_b in (0, 1):
            name = f"bl.w{wbits}a{abits}b{has_b}"
            # fp32 quantization (as the fast path), then float64 arithmetic on the quantized values
            wq32 = weight_quant_parts(w, w.abs().double().mean().float())[2] if wbits == 1 else w
            xq32 = act_quant_parts(x)[2] if abits == 8 else x
            xs = [x.double().requires_grad_(), w.double().requires_grad_(), b.double().requires_grad_()]
            xe = xs[0] + (xq32.double() - xs[0]).detach()
            we = xs[1] + (wq32.double() - xs[1]).detach()
            y = F.linear(xe, we, xs[2] if has_b else None)
            y.backward(dout.double())
            t[f"{name}.f32.out"] = y.detach()
            for i in range(3 if has_b else 2):
                t[f"{name}.f32.grad{i}"] = xs[i].grad
            # everything in float64
            xs = [x.double().requires_grad_(), w.double().requires_grad_(), b.double().requires_grad_()]
            y = bitlinear(xs[0], xs[1], xs[2] if has_b else None, wbits, abits)
            y.backward(dout.double())
            t[f"{name}.f64.out"] = y.detach()
            for i in range(3 if has_b else 2):
                t[f"{name}.f64.grad{i}"] = xs[i].grad

stio.save(OUT, t, metadata={"generator": "tests/gen/gen_bitlinear.py", "torch": torch.__version__})
print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(t)} tensors)")
