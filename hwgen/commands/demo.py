"""``hwgen demo``: the main job end to end on a real dataset (the README's tour).

Step 1: train a small ternary GRU on scikit-learn digits quantization-aware, report float forward
and golden (integer) accuracy, save the model under rtl_out/demo/. Step 2: generate its Verilog
accelerator there (hwgen.export.generate). Later steps (simulation against the golden model,
synthesis) are appended at the marked place below.
"""

from __future__ import annotations

from pathlib import Path

from ._common import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train a small ternary GRU on digits and build it (about a minute)",
        description="Train a ternary GRU on scikit-learn digits (8 rows = 8 timesteps), report "
        "the test accuracy of the float forward and of the bit-exact golden model, and save the "
        "model file under OUT (then generate and check the hardware where that is available).",
    )
    p.add_argument("--out", default="rtl_out/demo", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--hidden", type=positive_int, default=32, metavar="H",
                   help="(default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=40, metavar="E",
                   help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="(default: %(default)s)")
    p.add_argument("--lanes", type=positive_int, default=8, metavar="P",
                   help="accelerator lanes (weights per cycle) (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train import require_torch

    require_torch()
    from ..train.datasets import load_dataset
    from ..train.trainer import TrainConfig, set_threads, train
    from .train import report

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.hwgm"
    ds = load_dataset("digits")
    cfg = TrainConfig(dataset="digits", cell="gru", hidden=args.hidden, quant="ternary",
                      epochs=args.epochs, seed=args.seed, lr=3e-3)
    set_threads(1)
    print(f"[1/2] training a ternary GRU ({args.hidden} hidden) on {ds.describe()}")
    r = train(cfg, ds, quiet=args.quiet, output=model_path)
    report(r, model_path)
    # ---- step 2: Verilog generation (hwgen.export.generate) ----------------------------------
    from ..export import generate

    lanes = min(args.lanes, max(r.model.input.width, r.model.hidden))
    manifest = generate(r.model, out, lanes=lanes)
    t = manifest["timing"]
    print(f"[2/2] wrote {out}/{manifest['verilog'][0]}, manifest.json: {manifest['lanes']} "
          f"lanes, {t['cycles_per_timestep']} cycles per timestep")
    # ---- later demo steps (simulation against the golden model, synthesis) go below -----------
    return 0
