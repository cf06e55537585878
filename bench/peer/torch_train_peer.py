"""Speed and memory peer of `bitvla bench train`: the same VLA training step in PyTorch (CPU).

Run with Debian's python3-torch:
    /usr/bin/python3 bench/peer/torch_train_peer.py --size tiny|mid [--reps N] [--threads N]
Prints one JSON line per size (scripts/bench train reads them).

The model is bench_train.c's, built from torch_peer.py's blocks (BitLinear with straight-through
ternary weights and int8 activations re-quantized on every forward, SiglipLayer, BitNetLayer with
RoPE and GQA, RMSNorm) and the rest of models/vla.h, structured as tests/gen/gen_models.py's
reference: patch embedding (Conv2d) + position embedding -> SigLIP layers -> connector
(Linear-GELU-Linear); token embedding with the image features and the proprio projector's output
scattered in and the action rows zeroed -> BitNet layers, bidirectional -> final RMSNorm -> the
hidden states one position before each action token -> OFT's MLPResNet action head -> L1 loss.
The untied LM head exists (and is updated by AdamW with a zero gradient, as the C trainer updates
every trainable parameter) but action mode never runs it.
Sizes and batch (as bench/bench_train.c): tiny = the tiny preset, 8 rows, 2 images of 56x56;
mid = 6 SigLIP-so400m layers + 4 BitNet-2B layers, vocab 1024, 1 row, 2 images of 224x224; rows of
BOS, 2 x patches image tokens, proprio, 40 text tokens, 56 action tokens, EOS.
Step = zero_grad + forward + backward + clip_grad_norm_(1.0) + torch.optim.AdamW.step (lr 1e-4,
betas (0.9, 0.999), eps 1e-8, weight decay 0.01 except norms, biases and embeddings), timed like
bitvla: one warm-up step, then the median and best of --reps. Peak RSS: getrusage ru_maxrss of this
process (torch's own import is reported separately as import_rss_bytes). The GEMM share comes from
one extra profiled step (torch.autograd.profiler, self CPU time of mm / addmm / bmm / convolution,
forward and backward; attention's batched products included), not from the timed steps.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_peer import BitNetLayer, RMSNorm, SiglipLayer  # noqa: E402

IMPORT_RSS = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0

TINY = dict(v_d=64, v_mlp=128, v_layers=2, v_heads=4, patch=14, image=56, t_d=64, t_ffn=176, t_layers=2, t_heads=4,
            t_kv=2, vocab=768, theta=500000.0)
MID = dict(v_d=1152, v_mlp=4304, v_layers=6, v_heads=16, patch=14, image=224, t_d=2560, t_ffn=6912, t_layers=4,
           t_heads=20, t_kv=5, vocab=1024, theta=500000.0)
PROPRIO, ADIM, CHUNK, BLOCKS = 8, 7, 8, 2


class MLPResNet(nn.Module):
    """OFT's L1 regression head: LN -> fc1 -> ReLU -> blocks x + relu(linear(ln(x))) -> LN -> fc2."""

    def __init__(self, i, d, o, blocks):
        super().__init__()
        self.layer_norm1, self.fc1 = nn.LayerNorm(i), nn.Linear(i, d)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d)) for _ in range(blocks))
        self.layer_norm2, self.fc2 = nn.LayerNorm(d), nn.Linear(d, o)

    def forward(self, x):
        x = F.relu(self.fc1(self.layer_norm1(x)))
        for b in self.blocks:
            x = x + F.relu(b(x))
        return self.fc2(self.layer_norm2(x))


class VLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        P = (c["image"] // c["patch"]) ** 2
        D = c["t_d"]
        self.patch_embedding = nn.Conv2d(3, c["v_d"], c["patch"], stride=c["patch"])
        self.position_embedding = nn.Parameter(0.02 * torch.randn(P, c["v_d"]))
        self.vision_layers = nn.ModuleList(SiglipLayer(c["v_d"], c["v_mlp"], c["v_heads"], quant=True)
                                           for _ in range(c["v_layers"]))
        self.connector = nn.Sequential(nn.Linear(c["v_d"], D), nn.GELU(), nn.Linear(D, D))
        self.embed_tokens = nn.Embedding(c["vocab"], D)
        self.llm_layers = nn.ModuleList(BitNetLayer(D, c["t_ffn"], c["t_heads"], c["t_kv"], theta=c["theta"])
                                        for _ in range(c["t_layers"]))
        self.norm = RMSNorm(D)
        self.lm_head = nn.Linear(D, c["vocab"], bias=False)  # untied, unused in action mode
        self.proprio_projector = nn.Sequential(nn.Linear(PROPRIO, D), nn.GELU(), nn.Linear(D, D))
        self.action_head = MLPResNet(ADIM * D, D, ADIM, BLOCKS)

    def forward(self, b):
        B = b["ids"].shape[0]
        D = self.c["t_d"]
        x = self.patch_embedding(b["pix"].flatten(0, 1)).flatten(2).transpose(1, 2) + self.position_embedding
        for L in self.vision_layers:
            x = L(x)
        feats = self.connector(x).reshape(-1, D)
        h = self.embed_tokens(b["ids"])
        h = h.masked_scatter(b["img"][..., None], feats)
        h = h.masked_scatter(b["prop_mask"][..., None], self.proprio_projector(b["proprio"]))
        h = h * (~b["amask"])[..., None].to(h.dtype)
        for L in self.llm_layers:
            h = L(h)
        h = self.norm(h)
        pred = self.action_head(h[b["read"]].reshape(B, CHUNK, ADIM * D))
        return (pred - b["actions"]).abs().mean()


def make_batch(c, B, text, n_img=2):
    """bench_train.c's layout: BOS, image tokens, proprio, text, action tokens, EOS."""
    P = (c["image"] // c["patch"]) ** 2
    V, A = c["vocab"], CHUNK * ADIM
    img_id, prop_id, n_text = V - 258, V - 257, V - 258
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(B):
        t = torch.randint(0, n_text, (text,), generator=g)
        rows.append(torch.cat([torch.tensor([1]), torch.full((n_img * P,), img_id), torch.tensor([prop_id]), t,
                               V - 256 + torch.arange(A) % 256, torch.tensor([2])]))
    ids = torch.stack(rows)
    T = ids.shape[1]
    amask = torch.zeros(B, T, dtype=torch.bool)
    amask[:, T - 1 - A:T - 1] = True
    read = torch.zeros_like(amask)
    read[:, :-1] = amask[:, 1:]
    S = c["image"]
    return dict(ids=ids, img=ids == img_id, prop_mask=ids == prop_id, amask=amask, read=read,
                pix=torch.rand(B, n_img, 3, S, S, generator=g) * 2 - 1,
                proprio=torch.rand(B, PROPRIO, generator=g) * 2 - 1,
                actions=torch.rand(B, CHUNK, ADIM, generator=g) * 2 - 1)


def optimizer(model):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or any(s in n for s in ("norm", "bias", "embed")) else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=1e-4, betas=(0.9, 0.999), eps=1e-8)


def step(model, opt, params, b):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    t1 = time.perf_counter()
    loss = model(b)
    t2 = time.perf_counter()
    loss.backward()
    t3 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    t4 = time.perf_counter()
    return dict(fwd=t2 - t1, bwd=t3 - t2, opt=(t1 - t0) + (t4 - t3), step=t4 - t0)


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::mkldnn_convolution", "aten::convolution_backward")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=("tiny", "mid"), required=True)
    ap.add_argument("--reps", type=int, default=0, help="timed steps (default 20 tiny, 3 mid)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0, help="rows (default 8 tiny, 1 mid)")
    ap.add_argument("--text", type=int, default=40)
    ap.add_argument("--vocab", type=int, default=1024, help="mid only")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiled step (GEMM share)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = dict(TINY if a.size == "tiny" else MID)
    if a.size == "mid":
        c["vocab"] = a.vocab
    B = a.batch or (8 if a.size == "tiny" else 1)
    reps = a.reps or (20 if a.size == "tiny" else 3)
    model = VLA(c)
    params = list(model.parameters())
    for p in params:  # every parameter has a gradient buffer and is updated, as in the C trainer
        p.grad = torch.zeros_like(p)
    opt = optimizer(model)
    b = make_batch(c, B, a.text)
    step(model, opt, params, b)  # warm-up
    ts = [step(model, opt, params, b) for _ in range(reps)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0
    steps = [t["step"] for t in ts]
    mean = lambda k: sum(t[k] for t in ts) / reps * 1e3  # noqa: E731
    gemm = None
    if not a.no_profile:
        with torch.autograd.profiler.profile() as prof:
            prof_t = step(model, opt, params, b)["step"]
        self_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in GEMM_OPS)
        gemm = dict(gemm_ms_profiled=self_us / 1e3, step_ms_profiled=prof_t * 1e3)
    out = {"peer": "torch", "bench": "train", "size": a.size, "torch": torch.__version__, "threads": a.threads,
           "reps": reps, "batch": B, "tokens": int(b["ids"].shape[1]), "vocab": c["vocab"],
           "params": sum(p.numel() for p in params), "step_ms_median": statistics.median(steps) * 1e3,
           "step_ms_best": min(steps) * 1e3, "forward_ms": mean("fwd"), "backward_ms": mean("bwd"),
           "optimizer_ms": mean("opt"), "peak_rss_bytes": rss, "import_rss_bytes": IMPORT_RSS}
    if gemm:
        out.update(gemm)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
