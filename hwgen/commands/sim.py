"""``hwgen sim``: run generated Verilog in Icarus or Verilator against the golden model."""

from __future__ import annotations

import sys

from .. import api
from ..api import _random_sequences  # noqa: F401 - tests draw sequences the way sim does
from ..toolenv import SIMULATORS
from ._common import (
    add_options,
    command,
    emit,
    load_npy,
    positive_float,
    positive_int,
    probability,
    progress_for,
)


def register(sub) -> None:
    p = command(sub, "sim", "simulate generated Verilog against the golden model",
                "Simulate the accelerator in RTL_DIR (from 'hwgen generate') with cocotb and "
                "compare every output with the golden model by exact equality. Exit 0 with a "
                "one-line summary when all outputs match, 1 with the first mismatch otherwise. "
                "Progress lines (sequences done, time left) go to stderr.", run,
                "rtl_dir", "no_normalize", "seed", "quiet")
    p.add_argument("--simulator", choices=SIMULATORS, default="icarus",
                   help="(default: %(default)s)")
    p.add_argument("--model", metavar="MODEL",
                   help="reference model (default: the model.hwgm generated with the RTL)")
    add_options(p.add_mutually_exclusive_group(), "inputs", "dataset",
                inputs=dict(required=False), dataset=dict(
                    required=False, help="the test split of a dataset (digits, vowels, ptb, or "
                    "a .npz/.txt path)"))
    p.add_argument("--sequences", type=positive_int, metavar="N",
                   help="at most N sequences (default: all given, or 8 random ones)")
    p.add_argument("--length", type=positive_int, metavar="T",
                   help="random sequences of exactly T timesteps (default: 1..16), or windows "
                   "of T characters for a character dataset (default: 100)")
    p.add_argument("--stall-in", type=probability, default=0.0, metavar="P",
                   help="probability of idle cycles before an input (default: %(default)s)")
    p.add_argument("--stall-out", type=probability, default=0.0, metavar="P",
                   help="probability of withholding output ready (default: %(default)s)")
    p.add_argument("--resets", action="store_true",
                   help="also reset between sequences and in the middle of one")
    p.add_argument("--waves", metavar="FILE.vcd", help="write a VCD waveform")
    p.add_argument("--time-limit", type=positive_float, default=3600.0, metavar="S",
                   help="give up after S seconds of wall clock (default: %(default)s)")
    p.add_argument("--fast", action="store_true",
                   help="bulk check: a compiled Verilator harness, no Python per cycle, same plan "
                   "(hwgen/fastsim; --simulator and --waves do not apply)")
    p.add_argument("--labels", metavar="y.npy",
                   help="with --inputs: class labels (N,); the summary adds the hardware's "
                   "accuracy at each sequence's last timestep (with --dataset: its labels)")


def _warn(line: str) -> None:
    print(f"hwgen: warning: {line}", file=sys.stderr)


def _reference(args):
    """The reference model, checked against the RTL's manifest (issue 25: a --model of another
    shape failed like a hardware bug): another shape is an error, other weights a warning
    (a ROM core holds the weights it was generated with)."""
    from ..manifest import check_model_file, load_manifest
    from ..modelfile import model_hash
    from ..spec import HwgenError

    manifest = load_manifest(args.rtl_dir)
    if args.model is None:
        return api.load_model(check_model_file(args.rtl_dir, manifest))
    ref = api.load_model(args.model)
    want = manifest["model"]
    got = {"cell": ref.cell.value, "hidden": ref.hidden, "layers": ref.num_layers,
           "outputs": ref.outputs, "argmax": ref.head.argmax}
    diff = [f"{k} {got[k]}, not {want.get(k)}" for k in got if k in want and got[k] != want[k]]
    inp = want.get("input", {})
    if inp.get("features") not in (None, getattr(ref.input, "features", None)):
        diff.append(f"{getattr(ref.input, 'features', 'token')} input features, not "
                    f"{inp['features']}")
    if diff:
        raise HwgenError(f"--model {args.model} does not match {args.rtl_dir}: the RTL was "
                         f"generated for another model ({'; '.join(diff)}); pass the model it "
                         "was generated from, or regenerate with 'hwgen generate'")
    if "load" not in manifest and model_hash(ref) != manifest["model_sha256"]:
        _warn(f"--model {args.model} is not the model {args.rtl_dir} was generated from (its "
              "sha256 differs from the manifest's): the Verilog holds that model's weights, so "
              "a mismatch below means the models differ, not that the hardware is wrong")
    return ref


def _labels(args, ref, features):
    """(classes the hardware answers at each sequence's last timestep, labels), or None: from
    --labels with --inputs, or the dataset's test split (classification datasets)."""
    import numpy as np

    from ..spec import HwgenError

    if args.labels:
        if features is None:
            raise HwgenError("--labels goes with --inputs (a --dataset brings its own labels)")
        y = load_npy(args.labels)
        if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(features):
            raise HwgenError(f"--labels {args.labels}: expected {len(features)} integer class "
                             f"labels (N,), not {y.dtype} {y.shape}")
        g = api.golden(ref, features=features, normalize=not args.no_normalize)
        return g.classes[:, -1], y
    if args.dataset:
        ds = api.load_dataset(args.dataset)
        if ds.kind != "classify":
            return None
        t = ds.test
        codes = api.quantize(ref, t.X, normalize=False).codes  # dataset features: normalized
        g = api.golden(ref, codes=codes)
        return g.classes[np.arange(len(t.y)), np.asarray(t.lengths) - 1], np.asarray(t.y)
    return None


def run(args) -> int:
    features = load_npy(args.inputs) if args.inputs else None
    ref = _reference(args)
    labelled = _labels(args, ref, features)
    report = api.simulate(
        args.rtl_dir, features, dataset=args.dataset, sequences=args.sequences,
        length=args.length, simulator=args.simulator, model=ref,
        normalize=not args.no_normalize, stall_in=args.stall_in, stall_out=args.stall_out,
        resets=args.resets, seed=args.seed, waves=args.waves, time_limit=args.time_limit,
        fast=args.fast, progress=progress_for(args), warn=_warn,
    )
    data = {
        "ok": report.ok, "simulator": report.simulator, "sequences": report.sequences,
        "timesteps": report.timesteps, "cycles": report.cycles,
        "cycles_per_timestep": report.cycles_per_timestep,
        "manifest_cycles_per_timestep": report.manifest_cycles_per_timestep,
        "wall_s": report.wall_s,
        "mismatch": None if report.ok else str(report.mismatch),
    }
    if report.delta is not None:  # a delta core (issue 23): measured cycles, columns
        data["delta"] = report.delta.to_json()
    text = report.summary()
    if labelled is not None and report.ok:  # the hardware's classes are the golden model's
        n = report.sequences
        classes, y = labelled
        data["accuracy"] = float((classes[:n] == y[:n]).mean())
        text += f"; hardware accuracy {data['accuracy']:.4f} on {n} labelled sequences"
    emit(args, data, text,
         next_=[f"hwgen synth {args.rtl_dir} --target ice40-up5k"] if report.ok else None)
    return 0 if report.ok else 1
