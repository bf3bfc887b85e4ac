"""Instrumented first steps of a long PTB run (issue 26: why ternary GRU-256 lm-bn diverges).

Trains the first ``--steps`` optimizer steps of exactly the schedule ``hwgen train`` uses for the
given budget (same seed, same data order, same cosine rate), and every ``--every`` steps logs:
the training loss, the gradient norm before clipping (all parameters, the weight matrices, the
learned log-scales, the batch-norm gammas), each matrix's W0, its fraction of zero ternary codes
and of shadow weights at the clip limit, the batch-norm running variances and gammas, and the
hidden state's saturation (fraction of |h| above 0.95) on the step's batch. A valid evaluation
(first 50,000 characters) every ``--valid-every`` steps. One JSON line per log to ``--out``.

Knobs for one-change experiments (the default is the recipe as ``hwgen train`` runs it): the
training settings are `resolve_settings` of ``--recipe`` / ``--quant`` with ``--lr`` and any
``--set key=value`` (a `TrainConfig` field, e.g. ``scale_lr=0.1``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from hwgen.train.datasets import load_dataset  # noqa: E402
from hwgen.train.tquant import shadow_limit  # noqa: E402
from hwgen.train.trainer import TrainConfig, _Run, lr_factor, resolve_settings, torch_metric  # noqa: E402,E501


def _parse_set(items: list[str]) -> dict:
    types = {f.name: f.type for f in fields(TrainConfig)}
    out = {}
    for it in items:
        k, v = it.split("=", 1)
        if k not in types:
            raise SystemExit(f"--set {k}: not a TrainConfig field")
        t = str(types[k])
        if v == "None":
            out[k] = None
        elif "float" in t:
            out[k] = float(v)
        elif "bool" in t:
            out[k] = v in ("1", "true", "True")
        elif "int" in t:
            out[k] = int(v)
        else:
            out[k] = v
    return out


def _stats(model, grads: dict, total_norm: float) -> dict:
    """The logged quantities of the model after a backward pass (``grads``: per-parameter norms)."""
    out = {"grad_norm": total_norm}
    g = {"weights": 0.0, "scales": 0.0, "gammas": 0.0, "other": 0.0}
    for n, v in grads.items():
        key = ("weights" if n.startswith(("weight_", "head.weight")) else
               "scales" if n.startswith("scale_") else
               "gammas" if n.startswith("norm_") else "other")
        g[key] += v * v
    out.update({f"grad_{k}": math.sqrt(v) for k, v in g.items()})
    scales = model.learned_scales() or {}
    was = model.training
    model.eval()
    with torch.no_grad():
        for name in model._fans:
            w = model.get_parameter(name).detach()
            q = model.quantized_weight(name)
            d = {"zero": float((q == 0).double().mean())}
            lim = shadow_limit(model._quants[name], *model._fans[name], scales.get(name))
            if lim is not None:
                d["w0"] = lim
                d["at_clip"] = float((w.abs() >= lim * (1 - 1e-6)).double().mean())
            d["shadow_absmean"] = float(w.abs().mean())
            out[name] = d
        if model.norm == "batch":
            for k in range(model.num_layers):
                for a in ("ih", "hh"):
                    var = model.get_buffer(f"norm_var_{a}_l{k}")
                    gam = model.get_parameter(f"norm_gamma_{a}_l{k}")
                    out[f"bn_{a}_l{k}"] = {
                        "var_min": float(var.min()), "var_med": float(var.median()),
                        "var_max": float(var.max()),
                        "gamma_absmean": float(gam.abs().mean()),
                        "gamma_max": float(gam.abs().max())}
    model.train(was)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quant", default="ternary")
    ap.add_argument("--recipe", default="lm-bn")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--budget", type=int, default=15_000_000)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--valid-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    given = dict(lr=args.lr, lr_schedule=None, weight_scale=None, input_quant=None,
                 head_quant=None, norm=None, stochastic=None)
    settings = resolve_settings(args.recipe, args.quant, **given)
    settings.update(_parse_set(args.set))
    cfg = TrainConfig(dataset="ptb", cell="gru", hidden=args.hidden, quant=args.quant,
                      batch=32, seq_len=100, embed=16, budget_chars=args.budget, seed=args.seed,
                      **settings)
    cfg.check()
    ds = load_dataset("ptb")
    run = _Run(cfg, ds, None, None, None)
    model = run.model
    model.train()
    stream = torch.from_numpy(ds.train.stream)
    per_step = cfg.batch * cfg.seq_len
    total = max(1, cfg.budget_chars // per_step)
    offsets = torch.arange(cfg.seq_len + 1)
    saturation = []
    orig_layer = model._layer

    def layer(k, v):
        h = orig_layer(k, v)
        saturation.append(float((h.detach().abs() > 0.95).double().mean()))
        return h

    model._layer = layer
    out = open(args.out, "w")
    print(json.dumps({"config": {f.name: getattr(cfg, f.name) for f in fields(cfg)},
                      "total_steps": total, "argv": sys.argv[1:]}), file=out, flush=True)
    t0, losses = time.monotonic(), []
    for i in range(args.steps):
        start = torch.randint(0, len(stream) - cfg.seq_len - 1, (cfg.batch,),
                              generator=run.data_gen)
        w = stream[start[:, None] + offsets]
        saturation.clear()
        z = model(w[:, :-1])
        loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), w[:, 1:].reshape(-1))
        f = lr_factor(cfg.lr_schedule, i, total)
        for g, base in zip(run.opt.param_groups, run.base_lrs, strict=True):
            g["lr"] = base * f
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = {n: float(p.grad.norm()) for n, p in model.named_parameters()
                 if p.grad is not None}
        tn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))  # as _Run.step
        run.opt.step()
        model.clip_shadow()
        losses.append(float(loss.detach()) / math.log(2.0))
        if (i + 1) % args.every == 0:
            rec = {"step": i + 1, "chars": (i + 1) * per_step, "lr": run.opt.param_groups[0]["lr"],
                   "train_bpc": sum(losses) / len(losses), "sat": saturation[-1],
                   "s": time.monotonic() - t0}
            losses.clear()
            rec.update(_stats(model, grads, tn))
            if (i + 1) % args.valid_every == 0:
                rec["valid"] = torch_metric(model, ds, "valid", max_chars=50_000)
            print(json.dumps(rec), file=out, flush=True)
            short = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()
                     if not isinstance(v, dict)}
            print(short, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
