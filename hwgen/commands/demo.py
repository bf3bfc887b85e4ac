"""``hwgen demo``: the main job end to end on a real dataset (the README's tour).

1. train a small ternary GRU on scikit-learn digits quantization-aware, report float forward and
   golden (integer) accuracy, save the model under rtl_out/demo/;
2. generate its Verilog accelerator there (hwgen.export.generate);
3. simulate that Verilog (cocotb, Verilator by default) on the digits test split and compare every
   output with the golden model, exactly;
4. print the hardware summary: cycles per timestep and the resource estimate on an iCE40 UP5K and
   an ECP5-25k (``hwgen synth`` runs the real tools).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..spec import HwgenError
from ._common import command, emit, positive_int


def register(sub) -> None:
    p = command(sub, "demo", "train a small ternary GRU on digits and build it (about a minute)",
                "Train a ternary GRU on scikit-learn digits (8 rows = 8 timesteps), report the "
                "test accuracy of the float forward and of the bit-exact golden model, and save "
                "the model file under OUT (then generate and check the hardware where that is "
                "available).", run, "lanes", "seed", "quiet",
                lanes=dict(default=8, help="accelerator lanes (weights per cycle) (default: "
                           "%(default)s)"))
    p.add_argument("--out", default="rtl_out/demo", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--hidden", type=positive_int, default=32, metavar="H",
                   help="(default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=40, metavar="E",
                   help="(default: %(default)s)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                   help="(default: %(default)s)")
    p.add_argument("--sim-sequences", type=positive_int, metavar="N",
                   help="simulate only the first N test sequences (default: all 359)")


def run(args) -> int:
    from ..train import require_torch

    require_torch()
    from ..progress import Progress
    from ..train.datasets import load_dataset
    from ..train.trainer import TrainConfig, set_threads, train
    from .train import report_text

    def say(line: str) -> None:  # the steps: stdout, or stderr when stdout is the JSON
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    out = Path(args.out)
    model_path = out / "model.hwgm"
    ds = load_dataset("digits")
    most = max(int(ds.train.X.shape[-1]), args.hidden)  # schedule.max_lanes, before training
    if args.lanes > most:  # issue 25: was silently cut to the widest row
        raise HwgenError(f"--lanes {args.lanes} exceeds the widest matrix row of the demo model "
                         f"({most} weights: {args.hidden} hidden, 8 features); use at most {most}")
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(dataset="digits", cell="gru", hidden=args.hidden, quant="ternary",
                      epochs=args.epochs, seed=args.seed, lr=3e-3)
    set_threads(1)
    say(f"[1/4] training a ternary GRU ({args.hidden} hidden) on {ds.describe()}")
    r = train(cfg, ds, quiet=args.quiet, output=model_path)
    say(report_text(r, model_path))
    # ---- step 2: Verilog generation (hwgen.export.generate) ----------------------------------
    from ..export import generate

    manifest = generate(r.model, out, lanes=args.lanes)
    t = manifest["timing"]
    say(f"[2/4] wrote {out}/{manifest['verilog'][0]}, manifest.json: {manifest['lanes']} "
          f"lanes, {t['cycles_per_timestep']} cycles per timestep")
    # ---- step 3: the Verilog in a simulator, every output against the golden model ----------
    import numpy as np

    from ..cosim import SimPlan, cosim
    from ..inputs import features_to_codes

    test = ds.test
    codes = features_to_codes(r.model, test.X, normalize=False).codes  # dataset: normalized
    n = min(args.sim_sequences or len(codes), len(codes))
    seqs = [codes[i, : int(test.lengths[i])] for i in range(n)]
    say(f"[3/4] simulating the Verilog ({args.simulator}) on {n} test sequences")
    rep = cosim(out, SimPlan(seqs), simulator=args.simulator,
                progress=None if args.quiet else Progress())
    say("      " + rep.summary())
    if not rep.ok:
        emit(args, {"ok": False, "model": model_path, "rtl": out, "mismatch": str(rep.mismatch)},
             None)
        return 1
    # hardware accuracy: the class the hardware outputs at the last timestep
    from ..golden import GoldenModel

    g = GoldenModel(r.model).run(codes[:n])
    hw_acc = float(np.mean(g.classes[np.arange(n), test.lengths[:n] - 1] == test.y[:n]))
    say(f"      hardware test accuracy {hw_acc:.4f} on {n} sequences (outputs equal the golden "
          "model's)")
    # ---- step 4: hardware summary (estimates; 'hwgen synth' runs Yosys / nextpnr) ------------
    from ..estimate import estimate

    say(f"[4/4] hardware: {manifest['lanes']} lanes, {t['cycles_per_timestep']} cycles per "
          f"timestep ({t['macs_per_timestep']} weights), {r.model.weight_memory_bits} weight bits")
    estimates = {}
    for target in ("ice40-up5k", "ecp5-25k"):
        e = estimate(r.model, manifest["lanes"], target)
        estimates[target] = {"luts": e.luts, "ffs": e.ffs, "bram_blocks": e.bram_blocks,
                             "dsp": e.dsp}
        say(f"      {target:<11} estimate: {e.luts} LUT4, {e.ffs} FF, "
              f"{e.bram_blocks} RAM blocks, {e.dsp} DSP")
    emit(args, {"ok": True, "model": model_path, "rtl": out,
                "float_test": r.torch_test, "golden_test": r.metrics.golden_value,
                "hardware_test_accuracy": hw_acc, "sequences": n, "lanes": manifest["lanes"],
                "cycles_per_timestep": t["cycles_per_timestep"],
                "weight_bits": r.model.weight_memory_bits, "estimates": estimates},
         None, next_=[f"hwgen synth {out} --target ice40-up5k",
                      f"hwgen estimate {model_path} --board icebreaker"])
    return 0
