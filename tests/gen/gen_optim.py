"""Fixture for tests/test_optim.c: torch.optim.AdamW (foreach=False) with parameter groups, under a
LambdaLR of each schedule kind, with clip_grad_norm_ before every step and, in one run, stage II's
switch of weight decay to 0; plus the LR factors of HF transformers' schedules.

Run with Debian's python (torch 1.13, CPU):  /usr/bin/python3 tests/gen/gen_optim.py
Writes tests/fixtures/optim.safetensors (about 125 KB; reruns write the same bytes).

The C test expects the parameters bit for bit, so the fixture must come from torch's vectorized CPU
kernels (CPU capability AVX2 or AVX512, the default on x86-64): their moment updates are fused
multiply-adds, while ATEN_CPU_CAPABILITY=default rounds the product first and differs in the last
bit. The generator refuses to run without them.

The C test builds the same store with bv_params and the same groups with bv_adamw rules:
  rule "vision" (prefix "vision_tower.") lr_scale 0.5, weight decay 0.05
  rule "head"   (prefixes "action_head.", "proprio_projector.") lr_scale 2, the optimizer's decay
  default group lr_scale 1, weight decay WD; no-decay substrings norm/bias/embed and 1-d params
torch needs one param group per (group, decays or not): six groups here. The LR scales are powers of
two so base * scale * factor is the same double in either order (bitvla multiplies the scale last).

Layout (F32 unless noted):
  config                    F64 [BASE_LR, BETA1, BETA2, EPS, WD, MAX_NORM, N_STEPS]: the C test
                            checks its constants against it
  param.NAME                initial values
  grad.T.NAME               the gradient of step T (before clipping; the same for every run)
  norm                      [N_STEPS] clip_grad_norm_'s total norm of each step (float32, torch's)
  RUN.lr                    F64 [N_STEPS] the default group's LR torch used at each step
  RUN.factor                F64 the LambdaLR factors of steps 0, 1, ... (HF's formulas)
  RUN.stepT.NAME            the values after step T
  RUN.m.NAME, RUN.v.NAME    the moments after the last step
  sched.KIND_long           F64 HF's factors over a longer schedule (no optimizer)
RUN is cosine (warmup 2, total 6, weight decay 0 from step 3), poly (warmup 1, total 4, power 2,
min ratio 0.1: steps 4 and 5 at or past the end) and const (warmup 3).
"""
import math
import os
import re

import torch

import stio

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "optim.safetensors")

BASE_LR, BETA1, BETA2, EPS, WD, MAX_NORM, N_STEPS = 1e-2, 0.9, 0.999, 1e-8, 0.01, 30.0, 6
NO_DECAY = ("norm", "bias", "embed")
# (name, shape, rule): rule None is the default group; "frozen.*" is not trained (C store only)
PARAMS = [
    ("vision_tower.blocks.0.attn.weight", (12, 20), "vision"),
    ("vision_tower.blocks.0.norm.weight", (20,), "vision"),
    ("language_model.embed_tokens.weight", (16, 12), None),
    ("vision_tower.blocks.0.attn.bias", (12,), "vision"),
    ("language_model.layers.0.mlp.weight", (9, 17), None),
    ("language_model.layers.0.post_norm.weight", (17,), None),
    ("action_head.fc.weight", (5, 11), "head"),
    ("action_head.fc.bias", (5,), "head"),
]
RULES = {"vision": (0.5, 0.05), "head": (2.0, WD), None: (1.0, WD)}
GRAD_SCALE = [1.5, 0.5, 2.0, 0.7, 3.0, 0.6]  # total norms ~ 40, 13, 53, 18, 79, 16: clips steps 0, 2, 4


# ---- HF transformers' schedule lambdas (transformers/optimization.py), verbatim but for names ----
def hf_constant_with_warmup(step, warmup):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def hf_cosine_with_min_lr(step, warmup, total, min_lr_rate, num_cycles=0.5):
    # get_cosine_schedule_with_warmup is this with min_lr_rate 0 (factor * 1 + 0: the same value)
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


def hf_polynomial(step, warmup, total, lr_end, power, lr_init):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    elif step > total:
        return lr_end / lr_init  # as LambdaLR multiplies by lr_init
    else:
        lr_range = lr_init - lr_end
        decay_steps = total - warmup
        pct_remaining = 1 - (step - warmup) / decay_steps
        decay = lr_range * pct_remaining**power + lr_end
        return decay / lr_init  # as LambdaLR multiplies by lr_init


RUNS = {
    # name: (lambda, steps whose factor is recorded, weight-decay off step)
    "cosine": (lambda s: hf_cosine_with_min_lr(s, 2, 6, 0.0), 7, 3),
    "poly": (lambda s: hf_polynomial(s, 1, 4, 0.1 * BASE_LR, 2.0, BASE_LR), 9, -1),
    "const": (lambda s: hf_constant_with_warmup(s, 3), 9, -1),
}


def torch_groups(params):
    """One torch param group per (rule, decays): the split bv_adamw_assign makes per parameter."""
    groups = {}
    for (name, shape, rule), p in zip(PARAMS, params):
        decays = len(shape) >= 2 and not any(s in name for s in NO_DECAY)
        scale, wd = RULES[rule]
        key = (rule or "", decays)
        groups.setdefault(key, {"params": [], "lr": BASE_LR * scale, "weight_decay": wd if decays else 0.0})
        groups[key]["params"].append(p)
    return list(groups.values())


def main():
    cap = re.search(r"CPU capability usage: (.+)", torch.__config__.show())
    if not cap or cap.group(1).strip() not in ("AVX2", "AVX512"):
        raise SystemExit(f"gen_optim.py: torch's CPU capability is {cap.group(1) if cap else 'unknown'}, "
                         "the fixture needs AVX2 or AVX512 (unset ATEN_CPU_CAPABILITY)")
    torch.manual_seed(20240617)
    out = {"config": torch.tensor([BASE_LR, BETA1, BETA2, EPS, WD, MAX_NORM, N_STEPS], dtype=torch.float64)}
    init = [torch.randn(shape) for _, shape, _ in PARAMS]
    grads = []
    for t in range(N_STEPS):
        gs = [GRAD_SCALE[t] * torch.randn(shape) for _, shape, _ in PARAMS]
        gs[0].view(-1)[:5] = 0.0  # zero gradients: v stays 0 at first, the denominator is eps
        grads.append(gs)
    for (name, _, _), x in zip(PARAMS, init):
        out[f"param.{name}"] = x.clone()
    for t, gs in enumerate(grads):
        for (name, _, _), g in zip(PARAMS, gs):
            out[f"grad.{t}.{name}"] = g.clone()

    norms = None
    for run, (fn, n_factor, wd_off) in RUNS.items():
        params = [torch.nn.Parameter(x.clone()) for x in init]
        opt = torch.optim.AdamW(torch_groups(params), lr=BASE_LR, betas=(BETA1, BETA2), eps=EPS,
                                weight_decay=WD, foreach=False)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
        lrs, ns = [], []
        for t in range(N_STEPS):
            if t == wd_off:  # stage II: weight decay off from this step on
                for g in opt.param_groups:
                    g["weight_decay"] = 0.0
            for p, g in zip(params, grads[t]):
                p.grad = g.clone()
            ns.append(torch.nn.utils.clip_grad_norm_(params, MAX_NORM).item())
            default = next(g for g in opt.param_groups if any(p is params[2] for p in g["params"]))
            lrs.append(default["lr"])
            opt.step()
            sched.step()
            for (name, _, _), p in zip(PARAMS, params):
                out[f"{run}.step{t}.{name}"] = p.detach().clone()
        for (name, _, _), p in zip(PARAMS, params):
            out[f"{run}.m.{name}"] = opt.state[p]["exp_avg"].clone()
            out[f"{run}.v.{name}"] = opt.state[p]["exp_avg_sq"].clone()
        out[f"{run}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        out[f"{run}.factor"] = torch.tensor([fn(s) for s in range(n_factor)], dtype=torch.float64)
        assert norms is None or ns == norms, "the norms are of the same gradients in every run"
        norms = ns
    clipped = [n + 1e-6 > MAX_NORM for n in norms]
    assert any(clipped) and not all(clipped), f"MAX_NORM should clip some steps, not all: norms {norms}"
    out["norm"] = torch.tensor(norms, dtype=torch.float32)

    out["sched.cosine_long"] = torch.tensor([hf_cosine_with_min_lr(s, 100, 1000, 0.05) for s in range(1001)],
                                            dtype=torch.float64)
    out["sched.poly_long"] = torch.tensor([hf_polynomial(s, 10, 300, 0.02 * 3e-4, 1.5, 3e-4) for s in range(320)],
                                          dtype=torch.float64)
    out["sched.const_long"] = torch.tensor([hf_constant_with_warmup(s, 50) for s in range(80)], dtype=torch.float64)
    stio.save(OUT, out)
    print(f"wrote {OUT}: {len(out)} tensors, {os.path.getsize(OUT)} bytes; norms {norms}")


if __name__ == "__main__":
    main()
