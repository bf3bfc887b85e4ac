"""``hwgen sim``: run generated Verilog in Icarus or Verilator against the golden model."""

from __future__ import annotations

import sys

import numpy as np

from ..cosim import SimPlan, cosim, load_manifest
from ..modelfile import load_model
from ..spec import HwgenError, Model, TokenInput
from ..toolenv import SIMULATORS
from ._common import load_npy, nonnegative_int, positive_int, probability


def register(sub) -> None:
    p = sub.add_parser(
        "sim",
        help="simulate generated Verilog against the golden model",
        description="Simulate the accelerator in RTL_DIR (from 'hwgen generate') with cocotb and "
        "compare every output with the golden model by exact equality. Exit 0 with a one-line "
        "summary when all outputs match, 1 with the first mismatch otherwise.",
    )
    p.add_argument("rtl_dir", metavar="RTL_DIR", help="folder written by 'hwgen generate'")
    p.add_argument(
        "--simulator", choices=SIMULATORS, default="icarus", help="(default: %(default)s)"
    )
    p.add_argument(
        "--model",
        metavar="MODEL",
        help="reference model (default: the model.hwgm generated with the RTL)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--inputs",
        metavar="X.npy",
        help="float features (N, T, F), quantized by the model's input format, or token ids (N, T)",
    )
    src.add_argument(
        "--dataset",
        metavar="NAME",
        help="the test split of a dataset (digits, vowels, ptb, or a .npz/.txt path)",
    )
    p.add_argument(
        "--sequences",
        type=positive_int,
        metavar="N",
        help="at most N sequences (default: all given, or 8 random ones)",
    )
    p.add_argument(
        "--length",
        type=positive_int,
        metavar="T",
        help="random sequences of exactly T timesteps (default: 1..16), or windows "
        "of T characters for a character dataset (default: 100)",
    )
    p.add_argument(
        "--stall-in",
        type=probability,
        default=0.0,
        metavar="P",
        help="probability of idle cycles before an input (default: %(default)s)",
    )
    p.add_argument(
        "--stall-out",
        type=probability,
        default=0.0,
        metavar="P",
        help="probability of withholding output ready (default: %(default)s)",
    )
    p.add_argument(
        "--resets",
        action="store_true",
        help="also reset between sequences and in the middle of one",
    )
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, metavar="S", help="(default: %(default)s)"
    )
    p.add_argument("--waves", metavar="FILE.vcd", help="write a VCD waveform")
    p.add_argument(
        "--fast",
        action="store_true",
        help="bulk check: a compiled Verilator harness, no Python per cycle, same plan "
        "(hwgen/fastsim; --simulator and --waves do not apply)",
    )
    p.set_defaults(func=run)


def _random_sequences(model: Model, n: int, length: int | None, rng) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        T = length or int(rng.integers(1, 17))
        if isinstance(model.input, TokenInput):
            out.append(rng.integers(0, model.input.vocab, T))
        else:
            fmt = model.formats.input
            out.append(rng.integers(fmt.min_code, fmt.max_code + 1, (T, model.input.features)))
    return out


def _quantized(model: Model, x: np.ndarray, what: str) -> np.ndarray:
    if isinstance(model.input, TokenInput):
        if not np.issubdtype(x.dtype, np.integer):
            raise HwgenError(f"{what}: a token model needs integer token ids, not {x.dtype}")
        return x.astype(np.int64)
    codes, saturated = model.formats.input.quantize(x)
    if saturated:
        print(
            f"hwgen: warning: {what}: {saturated} input values saturated to the input format "
            f"{model.formats.input.describe()}",
            file=sys.stderr,
        )
    return codes


def _dataset_sequences(model: Model, name: str, length: int | None) -> list[np.ndarray]:
    from ..train.datasets import char_windows, load_dataset

    ds = load_dataset(name)
    test = ds.test
    if ds.kind == "charlm":
        x, _ = char_windows(test.stream, length or 100)
        return list(_quantized(model, x, name))
    X = _quantized(model, test.X, name)
    return [X[i, : int(test.lengths[i])] for i in range(len(X))]


def run(args) -> int:
    manifest = load_manifest(args.rtl_dir)
    model = load_model(args.model) if args.model else None
    ref = model or load_model(f"{args.rtl_dir}/{manifest['model_file']}")
    rng = np.random.default_rng(args.seed)
    if args.inputs:
        x = _quantized(ref, load_npy(args.inputs), args.inputs)
        if x.ndim < 2:
            raise HwgenError(f"{args.inputs}: needs a batch of sequences, not shape {x.shape}")
        seqs = list(x)
    elif args.dataset:
        seqs = _dataset_sequences(ref, args.dataset, args.length)
    else:
        seqs = _random_sequences(ref, args.sequences or 8, args.length, rng)
    seqs = seqs[: args.sequences] if args.sequences else seqs
    if not seqs:
        raise HwgenError("no sequences to simulate")
    plan = SimPlan(seqs, in_stall=args.stall_in, out_stall=args.stall_out, seed=args.seed)
    if args.resets and len(seqs) > 1:
        plan.reset_before = set(range(1, len(seqs), 3))
        plan.abort = {n: max(1, len(seqs[n]) // 2) for n in range(0, len(seqs), 4)}
    if args.fast:
        if args.waves:
            raise HwgenError("--waves needs the cocotb path; drop --fast")
        from ..fastsim import fastsim

        report = fastsim(args.rtl_dir, plan, model=model)
    else:
        report = cosim(args.rtl_dir, plan, simulator=args.simulator, model=model, waves=args.waves)
    print(report.summary())
    return 0 if report.ok else 1
