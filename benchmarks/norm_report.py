"""The tables of benchmarks/norm.py, written into docs/results.md (``norm.py --report``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from _record import versions, write_block


def _load(runs: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs.glob(pattern))]


def _norm_of(rec: dict) -> str:
    cmd = rec["command"].split()
    if "--norm" in cmd:
        return cmd[cmd.index("--norm") + 1]
    recipe = cmd[cmd.index("--recipe") + 1] if "--recipe" in cmd else "reference"
    return {"lm-bn": "batch", "ardakani": "batch", "hou": "weight"}.get(recipe, "none")


def _gap_line(recs: list[dict], unit: str) -> str:
    """The fold's measured effect: golden minus training forward over the normalized runs."""
    normed = [r for r in recs if _norm_of(r) != "none"]
    if not normed:
        return ""
    gaps = [abs(r["golden"] - r["train_forward"]) for r in normed]
    plain = [abs(r["golden"] - r["train_forward"]) for r in recs if _norm_of(r) == "none"]
    line = (f"Folding: |golden - training forward| (the normalized forward in evaluation, "
            f"unrounded factors, against the integer model with the folded 8-bit row "
            f"multipliers) at most {max(gaps):.4f} {unit} (mean {sum(gaps) / len(gaps):.4f}) "
            f"over {len(normed)} normalized runs")
    if plain:
        line += (f"; unnormalized runs, where nothing is folded: at most {max(plain):.4f} "
                 f"(mean {sum(plain) / len(plain):.4f}) over {len(plain)}")
    return line + "."


def _rel(command: str) -> str:
    """``command`` with the checkout's path left out (runs/norm/... as in a fresh checkout),
    whichever checkout (a worktree's) made the run."""
    return re.sub(r"(?<=\s)\S*/(?=runs/)", "", command)


def _curve_rows(recs: list[dict], label) -> list[str]:
    rows = []
    for r in recs:
        hist = r.get("history") or []
        if not hist:
            continue
        # f: a validation with float weights (the first part of a --quant-delay run)
        pts = ", ".join(f"{h['chars'] / 1e6:.2f}M: {h['valid']:.3f}"
                        + ("f" if h.get("float_weights") else "") for h in hist)
        rows.append(f"| {label(r)} | {pts} |")
    return rows


def screen_report(runs: Path) -> str:
    recs = _load(runs, "screen-*.json")
    if not recs:
        return "(no screen runs yet)"
    from norm import SCREEN

    recs.sort(key=lambda r: list(SCREEN).index(r["variant"]) if r["variant"] in SCREEN else 99)
    floats = {(_norm_of(r), r["seed"]): r["golden"] for r in recs if "--quant float" in
              r["command"] and r["variant"].startswith("float")}
    lines = [
        "Written by `benchmarks/norm.py --report` from the stored screen runs. Setup: Penn "
        "Treebank characters, GRU, 1 layer, 128 hidden, embedding 16, formats "
        "`Formats.standard(8)`, batch 32 x 100 characters, 1,500,000 training characters, 10 "
        "validations on the first 50,000 valid characters (the best kept), seed 0. **BPC = golden "
        "(integer) model on the first 100,000 test characters.** \"vs float\" / \"vs float-bn\": "
        "minus the golden BPC of the float run without / with batch normalization (+ is "
        "worse).",
        "",
        f"Environment: {versions('torch')}; 1 torch thread per run, `nice -n 10` through the "
        "shared heavy slot on a 2-core machine shared with synthesis and simulation jobs.",
        "",
        "| variant | norm | options | BPC golden | float forward | training forward | vs float "
        "| vs float-bn | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        opts = r["command"].split("--embed 16 --hidden 128 ")[-1].split(" --budget-chars")[0]
        vs = ["" if f is None or r["variant"].startswith("float") else f"{r['golden'] - f:+.4f}"
              for f in (floats.get((n, r["seed"])) for n in ("none", "batch"))]
        lines.append(f"| {r['variant']} | {_norm_of(r)} | `{opts}` | {r['golden']:.4f} | "
                     f"{r['float_forward']:.4f} | {r['train_forward']:.4f} | {vs[0]} | {vs[1]} | "
                     f"{r['wall_seconds']:.0f} |")
    lines += ["", _gap_line(recs, "bits per character"), "",
              "Learning curves: valid BPC (training forward, first 50,000 valid characters) "
              "after the given training characters:", "", "| variant | valid BPC |", "|---|---|"]
    lines += _curve_rows(recs, lambda r: r["variant"])
    lines += ["", "Each run's command is in its JSON; for example:", "", "```",
              _rel(recs[0]["command"]), "```"]
    return "\n".join(lines)


def small_report(runs: Path) -> str:
    import numpy as np

    recs = _load(runs, "small-*.json")
    if not recs:
        return "(no small-dataset runs yet)"
    lines = [
        "Written by `benchmarks/norm.py --report`. GRU, 32 hidden, deterministic ternary, 40 "
        "epochs, batch 16 (vowels) / 32 (digits), Adam 0.002 (the defaults), the best valid epoch "
        "kept; golden (integer) accuracy on the whole test split (370 utterances / 359 digits); "
        "\"vs defaults\": mean minus the mean of the unnormalized runs of the same seeds.",
        "",
        f"Environment: {versions('torch')}.",
        "",
        "| dataset | variant | golden accuracy (mean ± sd) | per seed | vs defaults | "
        "training forward (mean) | wall s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    for ds in ("vowels", "digits"):
        base = None
        for v in ("ternary", "ternary-bn", "ternary-wn"):
            rs = sorted((r for r in recs if r["dataset"] == ds and r["variant"] == v),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            a = np.array([r["golden"] for r in rs])
            base = a.mean() if v == "ternary" else base
            sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
            vs = "" if v == "ternary" or base is None else f"{a.mean() - base:+.4f}"
            lines.append(
                f"| {ds} | {v} | {a.mean():.4f} ± {sd:.4f} | "
                + ", ".join(f"{x:.4f}" for x in a)
                + f" (seeds {', '.join(str(r['seed']) for r in rs)}) | {vs} | "
                f"{np.mean([r['train_forward'] for r in rs]):.4f} | "
                f"{np.mean([r['wall_seconds'] for r in rs]):.0f} |")
    lines += ["", _gap_line(recs, "accuracy")]
    return "\n".join(lines)


def _progress(runs: Path, args) -> list[dict]:
    """Every long run: its JSON when done, else what its checkpoint holds."""
    from argparse import Namespace

    from norm import LONG, _history, _long_argvs

    # the runs to make, and any other long variant that was started
    every = _long_argvs(Namespace(**{**vars(args), "long_variants": ",".join(LONG)}), runs)
    wanted = set(args.long_variants.split(","))
    out = []
    for v, seed, argv in every:
        model = Path(argv[-1])
        js = model.with_suffix(".json")
        if js.exists():
            out.append({**json.loads(js.read_text()), "done": True})
            continue
        if v not in wanted and not Path(str(model) + ".ckpt").exists():
            continue
        out.append({"variant": v, "seed": seed, "done": False, "budget": args.long_budget,
                    "history": _history(Path(str(model) + ".ckpt")),
                    "command": "hwgen train " + " ".join(argv)})
    return out


def long_report(runs: Path, args) -> str:
    recs = _progress(runs, args)
    if not recs:
        return "No run of this budget yet."
    lines = [
        "Written by `benchmarks/norm.py --report`. Penn Treebank characters, GRU, 1 layer, 256 "
        "hidden, embedding 16, formats `Formats.standard(8)`, batch 32 x 100 characters, "
        "`--recipe lm-bn` for every weight quantizer (the lm recipe with batch normalization "
        "of every matrix product, folded at freeze: int8 input and head matrices, the "
        "recurrent matrix in the given encoding; cosine decay; the fixed Glorot W0 for binary "
        "/ ternary: rows `-glorotw0` and `-rl*`; the rate 0.013, except the rows `ternary` / "
        "`binary` with the recipe's 0.03 for binary / ternary; rows `-rlF`: the recurrent "
        "matrix at F times the rate, `--recurrent-lr F`). **The rows `ternary`, "
        "`ternary-lr0.013` (and `binary`, `binary-lr0.013`) were made before issue 26's fix, "
        "when lm-bn learned W0** (now `--weight-scale learned`; their commands below are as "
        "they were run): they diverged (see the diagnosis below). Rows `-fitted`: "
        "`--weight-scale fitted`; rows `-qdF`: `--quant-delay F` (validations with float "
        "weights marked f in the curves, never kept as the best). "
        f"{args.long_budget:,} training "
        "characters, 30 validations on the first 50,000 valid characters (the best kept). "
        "**BPC = golden (integer) model on the whole test split** (449,944 predictions).",
        "",
        f"Environment: {versions('torch')}; 1 torch thread, trained in chunks of at most 20 "
        "minutes (`--time-limit`, `--resume`) through the shared heavy slot.",
        "",
        "| variant | seed | status | best valid BPC | BPC golden, whole test | float forward | "
        "training forward | vs float |",
        "|---|---|---|---|---|---|---|---|",
    ]
    floats = {r["seed"]: r["golden"] for r in recs if r["done"] and r["variant"] == "float"}
    for r in recs:
        hist = r.get("history") or []
        at = f"at {hist[-1]['chars']:,} of {r['budget']:,} characters" if hist else "not started"
        if r["done"]:
            f = floats.get(r["seed"])
            vs = "" if f is None or r["variant"] == "float" else f"{r['golden'] - f:+.4f}"
            lines.append(f"| {r['variant']} | {r['seed']} | done | {r['best_valid']:.4f} | "
                         f"**{r['golden']:.4f}** | {r['float_forward']:.4f} | "
                         f"{r['train_forward']:.4f} | {vs} |")
        else:
            best = min((h["valid"] for h in hist if not h.get("float_weights")), default=None)
            lines.append(f"| {r['variant']} | {r['seed']} | {at} | "
                         f"{'' if best is None else f'{best:.4f}'} |  |  |  |  |")
    lines += ["", "Learning curves (valid BPC, training forward, first 50,000 valid characters, "
              "after the given training characters):", "", "| run | valid BPC |", "|---|---|"]
    lines += _curve_rows(recs, lambda r: f"{r['variant']} seed {r['seed']}")
    lines += ["", "Commands (the benchmark adds `--resume --time-limit SECONDS`):", "", "```"]
    lines += [_rel(r["command"]) for r in recs if r["seed"] == 0] + ["```"]
    return "\n".join(lines)


def _diag_rows(path: Path, every: int) -> list[str]:
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    cfg = recs[0]["config"]
    label = f"{cfg['weight_scale']} W0, lr {cfg['lr']:g}"
    rows = []
    for r in recs[1:]:
        if "valid" not in r or r["step"] % every:
            continue
        hh, bn = r["weight_hh_l0"], r.get("bn_hh_l0", {})
        # the first runs logged W0 and the clip fraction only for a learned W0
        w0 = f"{hh['w0']:.4f}" if "w0" in hh else "(Glorot)"
        clip = f"{hh['at_clip']:.2f}" if "at_clip" in hh else ""
        rows.append(f"| {label} | {r['step']} | {r['chars'] / 1e6:.2f}M | {r['valid']:.3f} | "
                    f"{r['train_bpc']:.3f} | {w0} | {hh['zero']:.3f} | "
                    f"{clip} | {r['grad_norm']:.2f} | "
                    f"{bn.get('var_med', float('nan')):.4f} | "
                    f"{bn.get('gamma_absmean', float('nan')):.2f} | {r['sat']:.4f} |")
    return rows


def diag_report(runs: Path) -> str:
    """The instrumented first steps of the long ternary run (benchmarks/norm_diag.py)."""
    def order(p):  # the learned W0 first, then the higher rate
        cfg = json.loads(p.read_text().splitlines()[0])["config"]
        return cfg["weight_scale"] != "learned", -cfg["lr"], p.name

    paths = sorted((runs / "diag").glob("*.jsonl"), key=order)
    if not paths:
        return "(no diagnostic runs yet)"
    lines = [
        "Written by `benchmarks/norm.py --report` from `benchmarks/norm_diag.py` runs: the first "
        "steps of the long ternary run (GRU-256, `--recipe lm-bn`, seed 0, the 15M-character "
        "cosine schedule and data order), the recurrent matrix W_h logged every 50 steps after "
        "the optimizer step: W0 (its clip limit), the fraction of zero ternary codes (the "
        "deterministic rule), the fraction of shadow weights at +-W0 (0.00 where W0 grew in "
        "that step: the weights clipped before sit just inside), the gradient norm before "
        "the clip at 1, the median running variance of W_h h and the mean |gamma| of its batch "
        "normalization, and the fraction of |h| > 0.95 on the step's batch. Valid BPC on the "
        "first 50,000 valid characters.",
        "",
        f"Environment: {versions('torch')}; 1 torch thread.",
        "",
        "| run | step | chars | valid BPC | train BPC | W0 of W_h | zero codes | at +-W0 | "
        "grad norm | BN var W_h h | gamma (mean abs) | h beyond +-0.95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in paths:
        lines += _diag_rows(p, 50)
    return "\n".join(lines)


def report(runs: Path, args) -> None:
    write_block("results.md", "norm_diag", diag_report(runs))
    write_block("results.md", "norm_screen", screen_report(runs))
    write_block("results.md", "norm_small", small_report(runs))
    write_block("results.md", "norm_long", long_report(runs, args))
    if args.long_budget == 15_000_000:  # the longer budget (issue 26), its own block
        from argparse import Namespace

        longer = Namespace(**{**vars(args), "long_budget": 30_000_000,
                              "long_variants": "float,ternary-glorotw0", "long_seeds": 1})
        write_block("results.md", "norm_long30", long_report(runs, longer))
