"""Fixture generator for tests/test_attention.c: HF rotary embedding and scaled-dot-product
attention computed with PyTorch in fp32, forward and gradients.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_attention.py
Writes tests/fixtures/attention.safetensors. Seeded, so reruns give the same file.

Formulas, written the way HF transformers and PyTorch write them:
  rope (modeling_llama / modeling_bitnet, rotate-halves):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = (inv_freq[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)
    emb = cat(freqs, freqs); out = x * cos(emb) + rotate_half(x) * sin(emb), rotate_half(x) = cat(-x2, x1)
  sdpa: softmax(q @ k^T * scale + mask) @ v per head, k and v repeat_interleave'd over the
    H / Hkv query heads of a group (GQA); mask is -inf at padded keys and, if causal, at keys
    s > t + (S - T).
Cases rope_bt, rope_t and sdpa_* follow the project convention (inputs float32, out and gradients
float64, see record()); rope_hf holds HF's fp32 results, which the fast rope kernel matches.
"""
import functools
import os

import torch

import common
import stio

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "attention.safetensors")


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def hf_rope(x, pos, theta, dt=torch.float32):
    """x (B, T, H, hd); pos (B, T) or (T) int64. dt float32 is HF's arithmetic; float64 the same
    formula in double (the reference for the double-precision kernels)."""
    B, T, H, hd = x.shape
    if pos.dim() == 1:
        pos = pos[None, :].expand(B, T)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).to(dt) / hd))
    inv_freq_expanded = inv_freq[None, :, None].to(dt).expand(B, -1, 1)
    freqs = (inv_freq_expanded @ pos[:, None, :].to(dt)).transpose(1, 2)  # (B, T, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().unsqueeze(2), emb.sin().unsqueeze(2)  # unsqueeze_dim=2 for (B, T, H, hd)
    return x * cos + rotate_half(x) * sin


def torch_sdpa(q, k, v, causal, key_padding, scale):
    """q (B, T, H, hd), k v (B, S, Hkv, hd), key_padding (B, S) bool (True = real) -> (B, T, H, hd)."""
    B, T, H, hd = q.shape
    S, Hkv = k.shape[1], k.shape[2]
    G = H // Hkv
    kk = k.repeat_interleave(G, dim=2).transpose(1, 2)  # (B, H, S, hd)
    vv = v.repeat_interleave(G, dim=2).transpose(1, 2)
    qq = q.transpose(1, 2)
    if scale == 0:
        scale = 1.0 / hd ** 0.5
    visible = key_padding[:, None, None, :].expand(B, 1, T, S).clone()
    if causal:
        t = torch.arange(T)[:, None]
        s = torch.arange(S)[None, :]
        visible &= (s <= t + (S - T))[None, None]
    mask = torch.zeros(B, 1, T, S).masked_fill(~visible, float("-inf"))
    p = torch.softmax(qq @ kk.transpose(-1, -2) * scale + mask, dim=-1)
    return (p @ vv).transpose(1, 2)


t = {}
# the project convention (tests/gen/common.py); `extra` holds the non-differentiable arguments
record = functools.partial(common.record, t)


def rope_case(name, B, T, H, hd, pos, theta):
    record(name, lambda x: hf_rope(x, pos, theta, torch.float64), [torch.randn(B, T, H, hd)],
           extra={"pos": pos, "theta": torch.tensor([theta], dtype=torch.float64)})


def rope_hf_fp32(name, B, T, H, hd, pos, theta):
    """HF's own fp32 arithmetic (inv_freq, angle, cos, sin all fp32), which the fast kernel follows:
    at large positions the fp32 angle differs from the exact one, so this is checked separately."""
    x = torch.randn(B, T, H, hd, requires_grad=True)
    y = hf_rope(x, pos, theta)
    dy = torch.randn_like(y)
    y.backward(dy)
    t.update({f"{name}.x": x, f"{name}.pos": pos, f"{name}.theta": torch.tensor([theta], dtype=torch.float64),
              f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": x.grad})


# BitNet: theta 500000, hd 128, positions up to ~1000 (large fp32 angles), one row of positions (T)
rope_hf_fp32("rope_hf", 1, 12, 1, 128, torch.randint(0, 1000, (12,)), 500000.0)
# double-precision references: per-sequence positions (B, T), and a shared row (T)
rope_case("rope_bt", 2, 5, 3, 16, torch.randint(0, 64, (2, 5)), 10000.0)
rope_case("rope_t", 1, 6, 2, 12, torch.randint(0, 600, (6,)), 500000.0)


def sdpa_case(name, B, T, S, H, Hkv, hd, causal, key_padding, scale):
    """A fully masked query row would be NaN in PyTorch (record() refuses it): none here."""
    q, k, v = torch.randn(B, T, H, hd), torch.randn(B, S, Hkv, hd), torch.randn(B, S, Hkv, hd)
    record(name, lambda q, k, v: torch_sdpa(q, k, v, causal, key_padding, scale), [q, k, v],
           extra={"mask": key_padding.to(torch.uint8),
                  "cfg": torch.tensor([float(causal), scale], dtype=torch.float64)})


# SigLIP-like: no GQA, bidirectional, no padding, default scale
sdpa_case("sdpa_mha", 1, 19, 19, 3, 3, 8, False, torch.ones(1, 19, dtype=torch.bool), 0.0)
# BitNet-like: GQA 4:2, causal with T < S (queries are the last T positions), padding, default scale
pad = torch.ones(2, 33, dtype=torch.bool)
pad[1, 28:] = False
pad[1, 3] = False
sdpa_case("sdpa_gqa_causal", 2, 20, 33, 4, 2, 8, True, pad, 0.0)
# bidirectional with padding, GQA 3:1, explicit scale, odd head dim
pad = torch.ones(2, 50, dtype=torch.bool)
pad[0, 40:] = False
pad[1, 10:20] = False
sdpa_case("sdpa_padded", 2, 50, 50, 3, 1, 5, False, pad, 0.3)

stio.save(OUT, t, {"generator": "tests/gen/gen_attention.py", "torch": torch.__version__})
print("wrote", OUT, os.path.getsize(OUT), "bytes")
