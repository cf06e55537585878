"""Fixture for tests/test_ternary_pack.c: the packed ternary weight formats as the tools that read
them define them (docs/formats.md).

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/gen/gen_ternary_pack.py
Writes tests/fixtures/ternary_pack.safetensors.

1. HF BitNet "offline" packing. A re-implementation (not a copy) of transformers'
   src/transformers/integrations/bitnet.py: pack_weights, unpack_weights, ActQuant and the forward
   of AutoBitLinear(online_quant=False) and of BitLinear. A float weight W is quantized as our
   BitLinear does (spec section 2: codes = clamp(round(W / mean|W|), -1, 1)), packed, unpacked and
   run through both HF forwards; this script asserts which weight_scale convention reproduces our
   layer output (AutoBitLinear: multiply by mean|W|; BitLinear: divide by 1/mean|W|) and that the
   other one does not. Stored: codes, packed bytes, weight_scale, the activation's int8 codes and
   scale, bias, and the three outputs, so the C test can check its bytes and recompute the outputs
   from its own unpacked codes.
2. bitnet.cpp I2_S. A re-implementation of quantize_i2_s (microsoft/BitNet src/ggml-bitnet-mad.cpp,
   x86 path) applied to dequantized weights codes * mean|W| (what bitnet.cpp's converter feeds it),
   the bytes including the fp32 scale trailer, and a matrix product done the way its kernel does it
   (sum of (field) * x_int8, minus the activation sum, / act_scale * weight scale).
3. TQ5 (this project's format) packed straight from its definition, for shapes with every tail
   length (cols % 5 = 0..4) and an empty one.
"""
import os
import struct

import torch
import torch.nn.functional as F

import stio

torch.manual_seed(20240611)
out = {}
meta = {"generator": "tests/gen/gen_ternary_pack.py"}


# ---- our BitLinear quantizers (spec section 2) ----

def weight_codes(w):
    """Per-tensor absmean: codes in {-1, 0, 1} and the multiplicative scale mean|W|."""
    m = w.abs().mean().clamp(min=1e-5)
    s = 1.0 / m
    return (w * s).round().clamp(-1, 1).to(torch.int8), m, s


def act_quant_codes(x):
    """Per-token absmax to int8: codes and the scale s (x ~ codes / s)."""
    s = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127), s


# ---- transformers integrations/bitnet.py, re-implemented ----

PER_BYTE = 4


def hf_pack_weights(q):
    """Code rows i*R .. i*R + R-1 (R = ceil(OC/4)) go to bits 2i..2i+1 of packed rows 0..R-1; field = w + 1."""
    oc = q.shape[0]
    r = (oc + PER_BYTE - 1) // PER_BYTE
    fields = (q.to(torch.int16) + 1).to(torch.uint8)
    packed = torch.zeros((r,) + tuple(q.shape[1:]), dtype=torch.uint8)
    for i in range(min(PER_BYTE, oc // r + 1)):
        lo, hi = i * r, min(i * r + r, oc)
        packed[: hi - lo] |= fields[lo:hi] << (2 * i)
    return packed


def hf_unpack_weights(packed, dtype):
    """Always returns 4 * R rows: row i*R + r = field i of packed row r, minus 1."""
    r = packed.shape[0]
    rows = torch.zeros((PER_BYTE * r,) + tuple(packed.shape[1:]), dtype=torch.uint8)
    for i in range(PER_BYTE):
        rows[i * r:(i + 1) * r] = (packed & (3 << (2 * i))) >> (2 * i)
    return rows.to(dtype) - 1


def hf_act_quant(x):
    """ActQuant.forward: fake-quantized activations (int8 grid, returned in x's dtype)."""
    s = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


def hf_autobitlinear_offline(x, packed, weight_scale, bias):
    """AutoBitLinear(online_quant=False): the load hook unpacks the uint8 weight to the layer dtype;
    forward = F.linear(ActQuant(x), weight, bias) * weight_scale (the bias is scaled too)."""
    w = hf_unpack_weights(packed, x.dtype)
    return F.linear(hf_act_quant(x), w, bias) * weight_scale


def hf_bitlinear(x, packed, weight_scale, bias):
    """BitLinear: int8 activations, y = F.linear(x_int8, w) / (input_scale * weight_scale) + bias."""
    w = hf_unpack_weights(packed, x.dtype)
    xs = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    xq = (x * xs).round().clamp(-128, 127)
    y = F.linear(xq, w) / (xs * weight_scale)
    return y + bias


def rel_err(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def hf_case(name, oc, c, n, with_bias):
    w = torch.randn(oc, c) * 0.02
    x = torch.randn(n, c)
    bias = torch.randn(oc) * 0.1 if with_bias else torch.zeros(oc)
    codes, m, s = weight_codes(w)
    # our BitLinear forward (fp32): xq @ Wq^T + bias
    y_ours = F.linear(hf_act_quant(x), codes.float() / s, bias)
    packed = hf_pack_weights(codes.clone())
    assert packed.shape == (oc // 4, c)
    assert torch.equal(hf_unpack_weights(packed, torch.float32), codes.float()), "HF unpack(pack(codes)) != codes"
    ws = m.reshape(1)  # weight_scale, multiplicative
    # AutoBitLinear scales the bias by weight_scale too, so the bias is stored divided by it
    y_auto = hf_autobitlinear_offline(x, packed, ws, bias / ws)
    y_bitlinear = hf_bitlinear(x, packed, (1.0 / m).reshape(1), bias)
    # the numerical check of the weight_scale convention (spec section 7 asks for it)
    e_auto, e_bl = rel_err(y_auto, y_ours), rel_err(y_bitlinear, y_ours)
    e_auto_div = rel_err(hf_autobitlinear_offline(x, packed, (1.0 / m).reshape(1), bias * m), y_ours)
    e_bl_mul = rel_err(hf_bitlinear(x, packed, ws, bias), y_ours)
    print(f"{name}: mean|W| = {m.item():.6g}; rel err vs our BitLinear: AutoBitLinear(weight_scale=mean|W|) "
          f"{e_auto:.2e}, BitLinear(weight_scale=1/mean|W|) {e_bl:.2e}; wrong conventions: "
          f"AutoBitLinear(1/mean|W|) {e_auto_div:.2e}, BitLinear(mean|W|) {e_bl_mul:.2e}")
    assert e_auto < 1e-5 and e_bl < 1e-5 and e_auto_div > 0.5 and e_bl_mul > 0.5
    xq, xs = act_quant_codes(x)
    out.update({
        f"{name}.codes": codes, f"{name}.packed": packed, f"{name}.weight_scale": ws.float(),
        f"{name}.x_codes": xq.to(torch.int8), f"{name}.x_scale": xs.float(), f"{name}.bias": bias,
        f"{name}.y_ours": y_ours, f"{name}.y_auto": y_auto, f"{name}.y_bitlinear": y_bitlinear,
    })


hf_case("hf0", 12, 20, 3, True)
hf_case("hf1", 64, 37, 2, False)

# ---- bitnet.cpp I2_S (x86), re-implemented from quantize_i2_s ----

QK_I2 = 128


def i2s_quantize(src):
    """src: float weights (dequantized ternary). Returns the bytes bitnet.cpp writes: n/4 code bytes, the
    fp32 scale max|src| at byte n/4, then zero padding to n/4 + 32 bytes (ggml_nbytes of I2_S)."""
    flat = src.reshape(-1).double()
    n = flat.numel()
    scale = flat.abs().max()
    q = torch.where(flat.abs() < 1e-6, torch.ones_like(flat),
                    torch.where(flat * scale > 0, torch.full_like(flat, 2), torch.zeros_like(flat))).to(torch.uint8)
    codes_bytes = torch.zeros(n // 4, dtype=torch.uint8)
    for i in range(n // QK_I2):
        for j in range(QK_I2):
            codes_bytes[i * 32 + j % 32] |= int(q[i * QK_I2 + j]) << (6 - 2 * (j // 32))
    trailer = struct.pack("<f", float(scale)) + bytes(28)
    return torch.cat([codes_bytes, torch.frombuffer(bytearray(trailer), dtype=torch.uint8)]), float(scale)


def i2s_case(name, rows, cols, n):
    w = torch.randn(rows, cols) * 0.02
    codes, m, _ = weight_codes(w)
    blob, scale = i2s_quantize(codes.float() * m)
    assert abs(scale - m.item()) <= 1e-7 * m.item() or not codes.abs().any()
    # the matrix product as bitnet.cpp's kernel does it: fields (0..2) times int8 activations, minus the
    # activation sum, divided by the activation scale, times the weight scale
    x = torch.randn(n, cols)
    xq, xs = act_quant_codes(x)
    fields = (codes.double() + 1)
    y = ((xq.double() @ fields.T) - xq.double().sum(-1, keepdim=True)) / xs.double() * scale
    out.update({f"{name}.codes": codes, f"{name}.bytes": blob, f"{name}.scale": torch.tensor([scale]),
                f"{name}.x_codes": xq.to(torch.int8), f"{name}.x_scale": xs.float(), f"{name}.y": y})


i2s_case("i2s0", 3, 256, 2)
i2s_case("i2s1", 2, 128, 1)

# ---- TQ5, from the definition ----


def tq5_pack(codes, scale):
    rows, cols = codes.shape
    head = b"BVT5" + struct.pack("<IQQfI", 1, rows, cols, scale, 0)
    body = bytearray()
    for r in range(rows):
        for g in range((cols + 4) // 5):
            v = 0
            for k in range(5):
                c = 5 * g + k
                t = int(codes[r, c]) + 1 if c < cols else 1  # padding: weight 0
                v += t * 3 ** k
            assert v <= 242
            body.append(v)
    return torch.frombuffer(bytearray(head + bytes(body)), dtype=torch.uint8)


for i, (rows, cols) in enumerate([(3, 7), (1, 5), (2, 1), (4, 13), (2, 9), (3, 0), (5, 28)]):
    codes = torch.randint(-1, 2, (rows, cols), dtype=torch.int8)
    scale = float(torch.rand(()).item() * 0.1)
    scale = struct.unpack("<f", struct.pack("<f", scale))[0]
    out[f"tq5_{i}.codes"] = codes
    out[f"tq5_{i}.bytes"] = tq5_pack(codes, scale)
    out[f"tq5_{i}.scale"] = torch.tensor([scale])
meta["tq5_cases"] = "7"

stio.save(os.path.join(os.path.dirname(__file__), "..", "fixtures", "ternary_pack.safetensors"), out, meta)
