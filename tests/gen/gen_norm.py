"""Fixture for tests/test_norm.c and tests/test_loss.c: PyTorch forward values and gradients of
softmax, LayerNorm, RMSNorm (HF Llama/BitNet formula), cross-entropy (ignore_index -100), L1 and
MSE.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_norm.py
Writes tests/fixtures/norm.safetensors (about 40 KB).

Layout: the convention of bv_fx_check_op (tests/gen/common.py) for each op, with the dout
given here, plus cross_entropy.targets (int64, with ignored rows) and metadata ln_eps, rms_eps,
ignore_index.
"""
import functools
import os

import torch
import torch.nn.functional as F

import common
import stio

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "norm.safetensors")
LN_EPS = 1e-5
RMS_EPS = 1e-5
IGNORE = -100

t = {}
record = functools.partial(common.record, t)  # record(name, fn, inputs, dout)


def hf_rmsnorm(x, w):
    """transformers LlamaRMSNorm / BitNetRMSNorm.forward (fp32 input, so no dtype casts)."""
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + RMS_EPS))


def main():
    torch.manual_seed(20240611)

    # softmax (last dim); row 1 has logits up to ~+-90 (overflows exp without the max shift)
    x = torch.randn(5, 37)
    x[1] *= 40.0
    record("softmax", lambda a: torch.softmax(a, dim=-1), [x], torch.randn(5, 37))

    # layernorm: row 2 has variance ~1e-6 (eps dominates: eps must be inside the sqrt), row 3 a mean
    # of 50 (centring)
    x = torch.randn(6, 45)
    x[2] *= 1e-3
    x[3] += 50.0
    w = 1.0 + 0.3 * torch.randn(45)
    b = 0.2 * torch.randn(45)
    gy = torch.randn(6, 45)
    record("layernorm", lambda a, ww, bb: F.layer_norm(a, (45,), ww, bb, eps=LN_EPS), [x, w, b], gy)
    record("layernorm_nobias", lambda a, ww: F.layer_norm(a, (45,), ww, None, eps=LN_EPS), [x, w], gy)

    # rmsnorm; row 4 has mean square ~4e-6 (eps matters)
    x = torch.randn(6, 45)
    x[4] *= 2e-3
    record("rmsnorm", hf_rmsnorm, [x, 1.0 + 0.3 * torch.randn(45)], torch.randn(6, 45))

    # cross-entropy, mean over non-ignored targets; rows 2 and 5 ignored, row 4 scaled x30;
    # dout 0.7 so the seed's scaling is checked too
    logits = torch.randn(7, 131)
    logits[4] *= 30.0
    targets = torch.randint(0, 131, (7,))
    targets[2] = IGNORE
    targets[5] = IGNORE
    targets[0] = 0
    targets[6] = 130
    record("cross_entropy", lambda a: F.cross_entropy(a, targets, ignore_index=IGNORE), [logits],
           torch.tensor(0.7))
    t["cross_entropy.targets"] = targets

    # l1 / mse on an (8, 7) action chunk; some elements equal (L1 gradient 0 there, like torch)
    p = torch.randn(8, 7)
    tg = torch.randn(8, 7)
    tg[0, :3] = p[0, :3]
    tg[5, 6] = p[5, 6]
    record("l1_loss", F.l1_loss, [p, tg], torch.tensor(1.3))
    record("mse_loss", F.mse_loss, [p, tg], torch.tensor(1.3))
    assert t["l1_loss.grad0"][0, :3].abs().max() == 0  # torch: sign(0) = 0

    stio.save(OUT, t, metadata={"ln_eps": LN_EPS, "rms_eps": RMS_EPS, "ignore_index": IGNORE,
                                "generator": "tests/gen/gen_norm.py", "torch": torch.__version__})
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
