"""The Python API: every stage of the pipeline as one function, the same ones the CLI calls.

::

    import hwgen
    model = hwgen.random_model("gru", inputs=8, hidden=16, outputs=4, quant="ternary")
    result = hwgen.golden(model, features=x)          # x: float (batch, time, features)
    size = hwgen.estimate(model, board="icebreaker")   # lanes chosen, UART link counted
    manifest = hwgen.generate(model, "rtl_out/m", lanes=size.lanes)
    report = hwgen.simulate("rtl_out/m", features=x)  # Verilog vs golden, exact
    assert report.ok

docs/api.md documents each function. Conventions:

- A ``model`` argument is a `hwgen.spec.Model` or the path of a model file (``.hwgm``).
- Real-valued ``features`` (batch, time, features) are normalized by the model's stored input
  normalization (``normalize=False`` turns that off) and quantized by its input format
  (`hwgen.inputs`); ``codes`` are input-format integer codes or token ids, used as they are.
- Every function validates its arguments and any output location before the work starts and
  raises `HwgenError` with the same one-line message the CLI prints; outputs are written
  atomically (a file is complete or absent).
- ``progress``: None, or a callable taking one status line (``hwgen.progress.Progress()`` prints
  them with the elapsed time).
- Heavy dependencies (amaranth, cocotb, PyTorch) are imported only by the functions that need
  them; PyTorch only by `train` (the ``train`` extra).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import (
    atomic_write_files,
    check_distinct_output,
    check_output_dir,
    check_output_file,
    npy_bytes,
)
from .golden import GoldenModel, GoldenResult, check_inputs
from .inputs import QuantizedInputs, features_to_codes
from .modelfile import load_model, save_model
from .spec import (
    LIMITS,
    HwgenError,
    Model,
    Sparsity,
    check_finite,
    check_int,
    check_positive_int,
    forwarded,
)

__all__ = [
    "load_model",
    "save_model",
    "random_model",
    "add_row_scales",
    "from_torch",
    "train",
    "evaluate",
    "quantize",
    "golden",
    "estimate",
    "estimate_table",
    "generate",
    "simulate",
    "synthesize",
    "build",
    "BuildReport",
    "load",
    "LoadResult",
    "run",
    "RunResult",
    "load_dataset",
    "export_dataset",
    "DatasetArrays",
]

Progress = Callable[[str], None] | None


def _model(model) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise HwgenError(f"Model must be a hwgen Model or a model file path, not {model!r}")


# -- models ----------------------------------------------------------------------------------------
def random_model(cell: str, inputs: int, hidden: int, outputs: int, *, layers: int = 1,
                 tokens: int | None = None, quant: str = "ternary", stochastic: bool = False,
                 bits: int = 8, argmax: bool = False, seed: int = 0,
                 sparsity: str | Sparsity | None = None, sparse_head: bool = False,
                 input_quant: str | None = None, head_quant: str | None = None,
                 row_scales: int | None = None) -> Model:
    """A random quantized model (random weights, frozen like a trained one), e.g. to try sizes.

    ``cell``: ``rnn``, ``gru`` or ``lstm``; ``inputs``: features (or embedding dimensions with
    ``tokens`` = vocabulary size); ``quant``: binary, ternary, pow2, exp, expN or intN; ``bits``:
    the precision knob of `hwgen.spec.Formats.standard`. Sizes are checked against
    `hwgen.spec.LIMITS` before anything is allocated. ``sparsity`` (``"N:M"`` or a
    `hwgen.spec.Sparsity`) prunes the recurrent matrices (and with ``sparse_head`` the head) to
    N:M by magnitude before quantizing (`hwgen.freeze.freeze`). ``input_quant`` / ``head_quant``
    quantize layer 0's input matrix / the head otherwise (a mixed-precision model).

    Every encoding's code space is covered at any size (`cover_code_space`): the floats are
    uniform in +-2/sqrt(hidden); exp and intN scale to the matrix's largest weight, binary and
    ternary to the Glorot bound of its shape (41-68% of ternary weights non-zero, measured at 8
    to 256 hidden units); a fixed-scale ``pow2`` matrix is stretched to +-(largest level + 1/2) *
    2**-frac_bits first, so every level is drawn about equally often (without it, 64 hidden
    units round to all zeros). A tiny matrix (a few weights) may still be all zero by chance.

    ``row_scales`` (1..16 bits; issue 26): every matrix also gets random per-row multipliers of
    that many bits (`add_row_scales`), the shape of a model with folded normalization.
    """
    from .freeze import freeze, random_float_params
    from .quant import QuantConfig
    from .spec import CellKind, Formats

    try:
        ck = CellKind(cell)
    except ValueError:
        raise HwgenError(f"Cell must be rnn, gru or lstm, not {cell!r}") from None
    seed = check_int("Seed", seed, minimum=0, maximum=(1 << 63) - 1)
    q = QuantConfig.parse(quant, stochastic)
    params = random_float_params(ck, inputs, hidden, outputs, layers=layers, tokens=tokens,
                                 seed=seed)
    formats = Formats.standard(bits, lstm=ck is CellKind.LSTM)
    iq, hq = QuantConfig.parse_optional(input_quant), QuantConfig.parse_optional(head_quant)
    cover_code_space(params, q, input_quant=iq, head_quant=hq)
    if row_scales is not None:
        row_scales = check_int("Row-scale bits", row_scales, minimum=1, maximum=16)
    model = freeze(params, q, formats, argmax=argmax, rng=seed,
                   meta={"source": f"random-model seed {seed}"},
                   sparsity=_sparsity(sparsity), sparse_head=sparse_head,
                   input_quant=iq, head_quant=hq)
    return model if row_scales is None else add_row_scales(model, row_scales, seed)


def add_row_scales(model: Model, bits: int, seed: int = 0, *,
                   keep_mantissa: bool = False) -> Model:
    """``model`` with random per-row scales (`hwgen.spec.QuantMatrix.row_mult`) on every
    matrix, for tests and cost measurements: row r of a matrix gets the real factor
    ``u_r * scale``, u_r uniform in [0.5, 2), made integer by `hwgen.spec.row_multipliers`
    (``bits`` bits for the largest row, a power-of-two scale: what a folded normalization
    gives; a row may round to 0 at few bits). ``keep_mantissa``: instead draw each multiplier
    uniformly from [2**max(0, bits-2), 2**bits) and keep the matrix's scale mantissa, its
    exponent lowered by ``bits - 1`` (the row multiply and a non-trivial mantissa multiply both
    at work: the widest scaler). Refused with `HwgenError` where an exponent leaves [-128, 127].
    Deterministic in ``seed``."""
    import dataclasses

    from .spec import QuantMatrix, Scale, row_multipliers

    bits = check_int("Row-scale bits", bits, minimum=1, maximum=16)
    rng = np.random.default_rng([int(seed), 26])

    def scaled(m: QuantMatrix) -> QuantMatrix:
        if keep_mantissa:
            mult = rng.integers(1 << max(0, bits - 2), 1 << bits, m.shape[0])
            scale = Scale(m.scale.mantissa, m.scale.exponent - bits + 1)
        else:
            mult, scale = row_multipliers(rng.uniform(0.5, 2.0, m.shape[0]) * m.scale.value,
                                          bits)
        return QuantMatrix(m.codes, m.encoding, scale, m.nm, mult)

    out = model.map_matrices(lambda _, m: scaled(m))
    return dataclasses.replace(out, meta=dict(model.meta, row_scales=bits))


def cover_code_space(params, quant, *, input_quant=None, head_quant=None) -> None:
    """Stretch, in place, the random float matrices of ``params`` (`hwgen.freeze.FloatParams`)
    whose quantizer has a fixed scale (``pow2``: levels ``round(w * 2**frac_bits)``) so that
    each is uniform over +-(largest level + 1/2) * 2**-frac_bits: every level, zero included,
    is drawn about equally often at any layer size. Matrices of the other encodings are left
    as they are (their scales follow the weights or the matrix's shape, `random_model`).
    ``input_quant`` / ``head_quant``: the quantizers of layer 0's input matrix and of the head
    (default ``quant``)."""
    from .spec import EncodingKind, WeightEncoding

    def stretch(w, q):
        if q.kind is not EncodingKind.POW2 or w.size == 0:
            return w
        top = (WeightEncoding.pow2(q.int_bits, q.frac_bits).max_level + 0.5) * 2.0**-q.frac_bits
        peak = float(np.max(np.abs(w)))
        return w if peak == 0.0 else w * (top * (1 - 1e-9) / peak)

    for i, layer in enumerate(params.layers):
        layer.w_ih = stretch(layer.w_ih, (input_quant or quant) if i == 0 else quant)
        layer.w_hh = stretch(layer.w_hh, quant)
    params.head_w = stretch(params.head_w, head_quant or quant)


def from_torch(module_or_state_dict, *, cell: str | None = None, quant: str = "ternary",
               head=None, **options) -> Model:
    """A trained PyTorch ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` (``head``: its ``nn.Linear``
    output layer), a module holding them, or a state dict (tensors or NumPy arrays; give
    ``cell``) as a `Model`, by post-training quantization with ``quant``: no file, the same
    checks and messages as ``hwgen import``. ``options``: ``bits``, ``sparsity``,
    ``sparse_head``, ``input_quant``, ``head_quant``, ``rnn_key``, ``head_key``, ``embed_key``,
    ``row_scales``, ``delta`` (``"THX,THH"``: a delta network, issue 23)
    (`hwgen.train.from_torch.from_torch`)."""
    from .train.from_torch import from_torch as _from_torch

    return _from_torch(module_or_state_dict, cell=cell, quant=quant, head=head, **options)


def _sparsity(value) -> Sparsity | None:
    """None, a `hwgen.spec.Sparsity` or its ``"N:M"`` string, as a Sparsity or None."""
    if value is None or isinstance(value, Sparsity):
        return value
    if isinstance(value, str):
        return Sparsity.parse(value)
    raise HwgenError(f"Sparsity must be an 'N:M' string or a Sparsity, not {value!r}")


def train(dataset, *, hidden: int, cell: str = "gru", quant: str = "ternary",
          epochs: int | None = None, budget_chars: int | None = None, layers: int = 1,
          stochastic: bool | None = None, seed: int = 0, batch: int = 32,
          lr: float | None = None,
          seq_len: int = 100, embed: int = 16, bits: int = 8, fake_quant: bool = True,
          test_chars: int | None = None, threads: int = 1, output=None, checkpoint=None,
          resume: bool = False, quiet: bool = True, sparsity: str | Sparsity | None = None,
          sparse_head: bool = False, weight_scale: str | None = None, shadow_clip: bool = True,
          lr_scale: str = "none", lr_schedule: str | None = None, warm_start=None,
          input_quant: str | None = None, head_quant: str | None = None,
          recipe: str = "reference", delta: str | None = None, progress: Progress = None,
          norm: str | None = None, time_limit: float | None = None, evals: int = 10,
          recurrent_lr: float = 1.0, quant_delay: float = 0.0):
    """Quantization-aware training (PyTorch, the ``train`` extra) on ``dataset`` (a name, a path
    or a loaded `hwgen.train.datasets.Dataset`); returns `hwgen.train.trainer.TrainResult`
    (``.model``, ``.metrics``). ``output``: a model file to write (checked before training
    starts, like ``checkpoint``, default ``output + ".ckpt"``). Without ``epochs`` and
    ``budget_chars``, 10 epochs. The settings are those of ``hwgen train`` (docs/training.md);
    ``sparsity`` (``"N:M"``) trains the recurrent matrices (the head too with ``sparse_head``)
    N:M sparse, and the model file records it. ``weight_scale`` ("glorot", "learned", "fitted"),
    ``shadow_clip``, ``lr_scale`` ("none", "w0", "1/w0"), ``lr_schedule`` ("constant",
    "cosine"), ``warm_start`` (a checkpoint or state dict to start from), ``input_quant`` /
    ``head_quant`` (another quantizer for layer 0's input matrix / the head) and ``recipe``
    (presets, `hwgen.train.trainer.recipe_settings`; a value given here wins) are the options
    of the same names (docs/training.md, "Options for closing the ternary gap").
    ``delta`` (``"THX,THH"``, integer codes) trains a delta network with those thresholds and
    writes them into the model (`hwgen.delta`; docs/training.md, "Delta networks").
    ``progress``: told after each validation ("epoch 3 of 10: valid 0.9417"), as the other long
    calls report their stages. ``norm`` ("none", "batch" or "weight"; default none, or the
    recipe's) normalizes each matrix product in training and folds the normalization into
    per-row multipliers and the biases at freezing (docs/training.md, "Normalization").
    ``time_limit`` (seconds): stop at the first evaluation after it with the checkpoint written
    (`hwgen.train.trainer.TrainPaused`); ``resume=True`` continues. ``evals``: character
    models' validations (and checkpoints) per run. ``recurrent_lr``: ``--recurrent-lr``.
    ``quant_delay``: ``--quant-delay`` (the first fraction of the run with float weights).
    """
    from .train import require_torch

    require_torch()
    from .train.datasets import Dataset, load_dataset
    from .train.trainer import TrainConfig, resolve_settings, set_threads
    from .train.trainer import train as _train

    out, ckpt = _train_outputs(output, checkpoint,
                               None if isinstance(dataset, Dataset) else dataset, warm_start)
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if epochs is None and budget_chars is None:
        epochs = 10
    chosen = resolve_settings(recipe, quant, lr=lr, lr_schedule=lr_schedule,
                              weight_scale=weight_scale, input_quant=input_quant,
                              head_quant=head_quant, norm=norm,
                              stochastic=stochastic or None)
    cfg = TrainConfig(
        dataset=ds.name if isinstance(dataset, Dataset) else os.fspath(dataset), cell=cell,
        hidden=hidden, layers=layers, quant=quant, epochs=epochs,
        **chosen,
        budget_chars=budget_chars if epochs is None else None, seed=seed, batch=batch,
        seq_len=seq_len, embed=embed, bits=bits, fake_quant=fake_quant, test_chars=test_chars,
        sparsity=None if sparsity is None else _sparsity(sparsity).describe(),
        sparse_head=sparse_head, shadow_clip=bool(shadow_clip), lr_scale=lr_scale,
        recurrent_lr=recurrent_lr, quant_delay=quant_delay,
        warm_start=None if warm_start is None else os.fspath(warm_start),
        delta=delta, evals=evals,  # delta: delta networks (issue 23)
    )
    cfg.check()
    set_threads(check_positive_int("Threads", threads, 256))
    init = None
    if warm_start is not None:
        from .spec import CellKind
        from .train.importer import warm_start_params

        init = warm_start_params(warm_start, CellKind(cell))
    return _train(cfg, ds, checkpoint=ckpt, resume=resume, quiet=quiet, output=out, init=init,
                  on_eval=_train_progress(progress, cfg.epochs if ds.kind == "classify"
                                          else cfg.budget_chars), time_limit=time_limit)


def _train_outputs(output, checkpoint, dataset_path, warm_start):
    """(model file, checkpoint) of `train`, checked before training starts: the checkpoint
    defaults to ``output + ".ckpt"``, and the model file is never a file being read."""
    out = None if output is None else check_output_file(output, "model file")
    ckpt = None
    if checkpoint is not None:
        ckpt = check_output_file(checkpoint, "checkpoint")
    elif out is not None:
        ckpt = out.with_name(out.name + ".ckpt")
    if out is not None:  # issue 25: never over a file being read
        check_distinct_output(out, dataset_path, warm_start, what="model file")
    return out, ckpt


def _train_progress(progress: Progress, total: int | None):
    """The trainer's observer that tells ``progress`` of each valid evaluation (None: none)."""
    if progress is None:
        return None

    def on_eval(entry: dict) -> None:
        of = f" of {total:,}" if total else ""
        at = (f"epoch {entry['epoch']}{of}" if "epoch" in entry
              else f"{entry['chars']:,}{of} characters")
        progress(f"{at}: valid {entry['valid']:.4g}")

    return on_eval


def evaluate(model, dataset, split: str = "test", *, max_chars: int | None = None):
    """The metric of ``model`` on a dataset split (accuracy or bits per character), float forward
    and golden model: `hwgen.train.evaluate.Metrics`. Needs NumPy only."""
    from .train.datasets import Dataset, load_dataset
    from .train.evaluate import evaluate as _evaluate

    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    return _evaluate(_model(model), ds, split, max_chars=max_chars)


# -- inference -------------------------------------------------------------------------------------
def quantize(model, features, *, normalize: bool = True) -> QuantizedInputs:
    """Real features (batch, time, features) to input codes: the model's stored normalization
    (unless ``normalize=False``), then its input format (round half up, saturate; ``.saturated``
    counts clipped values). Token models: integer ids (batch, time), checked."""
    return features_to_codes(_model(model), features, normalize=normalize, what="features")


def golden(model, features=None, *, codes=None, normalize: bool = True) -> GoldenResult:
    """The bit-exact integer model on ``features`` (real values, see `quantize`) or ``codes``
    (integers used as they are). Returns `hwgen.golden.GoldenResult`: ``logits`` (B, T, O) int64
    codes with ``formats.output_frac`` fraction bits, ``classes`` (B, T), and ``saturated``."""
    m = _model(model)
    if (features is None) == (codes is None):
        raise HwgenError("give either features (real values) or codes (integers), not both")
    if features is not None:
        q = features_to_codes(m, features, normalize=normalize, what="features")
        result = GoldenModel(m).run(q.codes)
        result.saturated = q.saturated
        return result
    return GoldenModel(m).run(codes)


# -- hardware --------------------------------------------------------------------------------------
def estimate(model, lanes: int | None = None, *, target: str | None = None,
             board: str | None = None, baud: int | None = None, weights: str = "rom",
             sparse: str = "auto", clock="auto", link: str = "uart"):
    """Resources, cycles and fit before any tool runs.

    With ``target`` (a device, e.g. ``ice40-up5k``): the bare accelerator,
    `hwgen.fit.FitResult` (``.fits``, ``.problems``, ``.estimate``); ``lanes`` required.
    With ``board`` (e.g. ``icebreaker``): the board build, UART link counted, lanes chosen like
    ``hwgen build`` when not given, and µs per timestep at the core clock the build uses
    (``clock``: ``auto``, ``board`` or MHz, as `build`; ``baud``: default the board's fastest):
    `hwgen.boardfit.BoardFit`. ``weights``: ``rom``, ``ram`` or ``spram`` (loadable: the
    estimate is of the core built for the model's shape), with ``board`` also ``auto``.
    ``sparse``: zero skipping, ``auto`` (the sparse core when it is faster), ``on`` or ``off``.
    """
    m = _model(model)
    if (target is None) == (board is None):
        raise HwgenError("give either a target device or a board, not both")
    if board is not None:
        from .boardfit import board_fit

        if lanes is not None:
            check_positive_int("Lane count", lanes)
        return board_fit(m, board, lanes, baud, weights, sparse, clock, link)
    from .boardfit import judge_lanes

    if weights == "auto":
        raise HwgenError("weights 'auto' needs a board; with a target give rom, ram or spram")
    return judge_lanes(m, lanes, target, weights, sparse).fit


def estimate_table(model, lanes: int | None = None, *, target: str | None = None,
                   board: str | None = None, baud: int | None = None, weights: str | None = None,
                   sparse: str = "auto", clock="auto", link: str = "uart") -> str:
    """The table ``hwgen estimate`` prints (`estimate` with the same arguments; ``weights``
    default ``auto`` with a board, ``rom`` with a target): memories, logic, cycles, with a board
    its clock and the time per timestep of the core and of the link, and the fit verdict with
    what would fit."""
    from .commands.estimate import estimate_text

    m = _model(model)
    r = estimate(m, lanes, target=target, board=board, baud=baud,
                 weights=weights or ("auto" if board else "rom"), sparse=sparse, clock=clock,
                 link=link)
    return estimate_text(m, r, board=board, target=target, baud=baud, sparse=sparse, clock=clock,
                         link=link)


def generate(model, out_dir, lanes: int = 1, *, top: str = "hwgen_top",
             state: str = "auto", weights: str = "rom", sparse: str = "auto") -> dict:
    """Write ``out_dir/<top>.v``, ``manifest.json`` and ``model.hwgm`` (docs/manifest.md);
    returns the manifest. ``state``: where h (and c) live, ``auto``, ``registers`` or ``ram``
    (docs/architecture.md). ``weights``: ``rom``, or ``ram`` / ``spram`` for a loadable core
    (the manifest's ``load`` section; `simulate` loads the model first). ``sparse``: zero
    skipping (docs/architecture.md), ``auto`` (the sparse core when the model's 2:4 sparse
    matrices make it faster), ``on`` or ``off``. Byte-identical files for the same inputs."""
    from .export import generate as _generate

    return _generate(_model(model), out_dir, lanes=lanes, top=top, state=state,
                     weights=weights, sparse=sparse)


def _input_codes(model: Model, features, codes, normalize: bool, warn) -> np.ndarray:
    """Codes from ``features`` (normalized, quantized; ``warn`` gets a line about saturated
    values) or ``codes`` (checked)."""
    if features is None:
        return check_inputs(model, codes)
    q = features_to_codes(model, features, normalize=normalize, what="features")
    if warn and q.warning(model, "features"):
        warn(q.warning(model, "features"))
    return q.codes


def _dataset_sequences(model: Model, name, length: int | None) -> list[np.ndarray]:
    from .train.datasets import char_windows, load_dataset

    ds = load_dataset(name)
    test = ds.test
    if ds.kind == "charlm":
        x, _ = char_windows(test.stream, length or 100)
        return list(features_to_codes(model, x, what=str(name)).codes)
    # dataset features are already normalized (as the model was trained on them)
    q = features_to_codes(model, test.X, normalize=False, what=str(name))
    return [q.codes[i, : int(test.lengths[i])] for i in range(len(q.codes))]


def _random_sequences(model: Model, n: int, length: int | None, rng) -> list[np.ndarray]:
    from .spec import TokenInput

    out = []
    for _ in range(n):
        T = length or int(rng.integers(1, 17))
        if isinstance(model.input, TokenInput):
            out.append(rng.integers(0, model.input.vocab, T))
        else:
            fmt = model.formats.input
            out.append(rng.integers(fmt.min_code, fmt.max_code + 1, (T, model.input.features)))
    return out


def simulate(rtl_dir, features=None, *, codes=None, dataset=None, sequences: int | None = None,
             length: int | None = None, simulator: str = "icarus", model=None,
             normalize: bool = True, stall_in: float = 0.0, stall_out: float = 0.0,
             resets: bool = False, seed: int = 0, waves=None, time_limit: float | None = None,
             fast: bool = False, progress: Progress = None,
             warn: Callable[[str], None] | None = None):
    """Simulate the generated Verilog in ``rtl_dir`` (cocotb + Icarus or Verilator) and compare
    every output with the golden model, exactly; returns `hwgen.cosim.CosimReport` (``.ok``,
    ``.mismatch``, ``.summary()``). ``fast``: the same plan through a compiled Verilator harness
    without Python per cycle (`hwgen.fastsim`; ``simulator`` and ``waves`` do not apply).

    Inputs: ``features`` (real, see `quantize`), ``codes``, ``dataset`` (its test split, already
    normalized) or, with none of them, random sequences (``length`` timesteps each, default
    1..16). ``sequences`` keeps the first N (8 random ones by default). ``model``: the reference
    (default: the folder's model.hwgm, checked against the manifest's hash). ``time_limit``:
    seconds of wall clock. ``warn``: called with a line about saturated inputs.
    """
    from .cosim import SimPlan, cosim
    from .manifest import check_model_file, load_manifest

    if sum(x is not None for x in (features, codes, dataset)) > 1:
        raise HwgenError("give at most one of features, codes and dataset")
    if sequences is not None:
        check_positive_int("Sequence count", sequences, 1 << 24)
    if length is not None:
        check_positive_int("Sequence length", length, 1 << 24)
    for name, p in (("Input stall probability", stall_in),
                    ("Output stall probability", stall_out)):
        if check_finite(name, p, minimum=0.0) >= 1.0:
            raise HwgenError(f"{name} must be below 1, not {p!r}")
    if time_limit is not None:
        check_finite("Time limit", time_limit, minimum=0.0, strict_min=True)
    seed = check_int("Seed", seed, minimum=0, maximum=(1 << 32) - 1)
    if waves is not None:
        check_output_file(waves, "waveform file")
    manifest = load_manifest(rtl_dir)
    ref = _model(model) if model is not None else load_model(check_model_file(rtl_dir, manifest))
    rng = np.random.default_rng(seed)
    if features is not None or codes is not None:
        x = _input_codes(ref, features, codes, normalize, warn)
        if x.ndim < 2:
            raise HwgenError(f"inputs need a batch of sequences, not shape {x.shape}")
        seqs = list(x[:sequences] if sequences else x)
    elif dataset is not None:
        seqs = _dataset_sequences(ref, dataset, length)
    else:
        seqs = _random_sequences(ref, sequences or 8, length, rng)
    seqs = seqs[:sequences] if sequences else seqs
    if not seqs:
        raise HwgenError("no sequences to simulate")
    plan = SimPlan(seqs, in_stall=stall_in, out_stall=stall_out, seed=seed)
    if resets and len(seqs) > 1:
        plan.reset_before = set(range(1, len(seqs), 3))
        plan.abort = {n: max(1, len(seqs[n]) // 2) for n in range(0, len(seqs), 4)}
    if fast:
        if waves is not None:
            raise HwgenError("--waves needs the cocotb path; drop --fast")
        from .fastsim import fastsim

        return fastsim(rtl_dir, plan, model=ref)
    return cosim(rtl_dir, plan, simulator=simulator, model=ref, waves=waves,
                 time_limit=time_limit, progress=progress)


class _StageTimer:
    """Turns synth.py's stage names into progress lines with the time the step is likely to
    take: a nextpnr seed takes about as long as the one before it."""

    def __init__(self, progress: Progress, seeds: int):
        self.progress, self.seeds = progress, seeds
        self.t_stage = time.monotonic()
        self.stage = ""
        self.seed_times: list[float] = []

    def __call__(self, stage: str) -> None:
        now = time.monotonic()
        if self.stage.startswith("nextpnr"):
            self.seed_times.append(now - self.t_stage)
        self.stage, self.t_stage = stage, now
        note = ""
        if stage.startswith("nextpnr") and self.seed_times:
            from .progress import format_seconds

            done = len(self.seed_times)
            left = (self.seeds - done) * (sum(self.seed_times) / done)
            note = f" (about {format_seconds(left)} left)"
        elif stage == "yosys":
            note = " (the first Yosys run on a machine also compiles it: 30-40 s more)"
        self.progress(f"synth: {stage}{note}")

    def status(self) -> str | None:
        from .progress import format_seconds

        if not self.stage:
            return None
        return f"synth: {self.stage} running for {format_seconds(time.monotonic() - self.t_stage)}"


def _check_delta_fit(model: Model, rtl, t, warn) -> None:
    """The fit check of a generated delta core (`hwgen.delta.resources`, the timing wrapper
    counted): `HwgenError` naming the problems when it cannot fit ``t``."""
    from .delta.resources import delta_resources
    from .design import manifest_options, resolve
    from .fit import judge_estimate
    from .synth import wrapper_cost

    opts = manifest_options(rtl.manifest)  # a loadable core's too (--weights ram)
    design = resolve(model, rtl.lanes, state=opts["state"], weights=opts["weights"])
    e = delta_resources(design.core_model, design.plan, t)
    fit = judge_estimate(e, t, wrapper_cost(rtl.manifest))
    if not fit.fits:
        raise HwgenError(f"the delta core of this model does not fit {t.name} with {rtl.lanes} "
                         f"lanes: {'; '.join(fit.problems)} (hwgen synth --no-fit-check runs "
                         "it anyway)")
    for w in fit.warnings:
        if warn:
            warn(w)


def synthesize(rtl_dir, target: str, *, seeds: int = 3, freq_mhz: float | None = None,
               out_dir=None, top: str | None = None, dsp: bool = False, fit_check: bool = True,
               timeout: float | None = 1800.0, progress: Progress = None,
               warn: Callable[[str], None] | None = None):
    """Yosys + nextpnr on the generated accelerator in ``rtl_dir`` for ``target``, inside a
    registered-I/O timing wrapper (docs/synthesis.md); returns `hwgen.synth.SynthReport` (also
    written to ``out_dir/synth_report.json``, default ``rtl_dir/synth-<target>``). A model that
    cannot fit is refused before any tool runs unless ``fit_check=False``. ``timeout``: seconds
    per tool run (Yosys past it is an error; a nextpnr seed past it is recorded as failed and the
    median is taken over the others)."""
    from .fit import check_fit
    from .progress import Ticker
    from .synth import read_rtl_dir
    from .synth import synthesize as _synthesize
    from .targets import get_target

    t = get_target(target)
    check_positive_int("Seed count", seeds, 50)
    if freq_mhz is not None:
        check_finite("Frequency", freq_mhz, minimum=0.0, strict_min=True)
        check_finite("Frequency", freq_mhz, maximum=2000.0)
    if timeout is not None:
        check_finite("Time limit", timeout, minimum=0.0, strict_min=True)
    rtl = read_rtl_dir(rtl_dir, top)
    out = check_output_dir(out_dir if out_dir is not None else rtl.folder / f"synth-{t.name}")
    if "delta" in rtl.manifest and fit_check and rtl.model_file is not None and rtl.lanes:
        _check_delta_fit(load_model(rtl.model_file), rtl, t, warn)  # delta core (issue 23)
        fit_check = False
    if rtl.model_file is not None and rtl.lanes and fit_check:
        from .design import manifest_options
        from .synth import wrapper_cost

        opts = manifest_options(rtl.manifest)  # the options the hardware was resolved with
        fit = check_fit(load_model(rtl.model_file), rtl.lanes, t, wrapper_cost(rtl.manifest),
                        state=opts["state"], sparse=opts["sparse"], weights=opts["weights"])
        for w in fit.warnings:
            if warn:
                warn(w)
    stages = _StageTimer(progress, seeds) if progress else None
    with Ticker(progress, stages.status if stages else (lambda: None), every=15.0):
        return _synthesize(list(rtl.sources), rtl.top, t, out, seeds=seeds, freq_mhz=freq_mhz,
                           dsp=True if dsp else None,
                           cycles_per_timestep=rtl.cycles_per_timestep, progress=stages,
                           timeout=timeout)


def build(model, board: str, out_dir, *, lanes: int | None = None, baud: int | None = None,
          weights: str = "auto", sparse: str = "auto", seed: int = 1, clock="auto",
          link: str = "uart", timeout: float | None = 3600.0,
          progress: Progress = None, warn: Callable[[str], None] | None = None):
    """A bitstream of the accelerator behind a UART link on ``board`` in ``out_dir`` (never
    programs the board; docs/uart.md). Lanes: the most that fit, when not given. ``weights``:
    ``rom`` (in the bitstream), ``ram`` / ``spram`` (loaded at run time: `load`; any model of
    the same shape runs on it) or ``auto`` (ROMs when they fit). ``sparse``: zero skipping
    (``auto``: the sparse core when it is faster; ``on``, ``off``). A build that cannot fit the
    board's device, UART link counted, is refused before any tool runs, with what would fit.
    Writes ``out_dir/model.hwgm`` too, and for a loadable build ``out_dir/shape.json`` (what
    `load` and `run` check a model against). ``clock``: the core clock (`hwgen.board.build`:
    ``auto``, the fastest PLL frequency the placed design meets; a frequency in MHz; ``board``,
    the oscillator); ``baud``: default the board's fastest (3 Mbaud on the FTDI boards);
    ``link``: ``uart`` or ``spi`` (an SPI target on the board's pins, docs/spi.md).
    ``seed``: nextpnr's placement seed; ``timeout``: seconds for the whole tool run (a router
    that loops on a nearly full device stops with an error). Returns a `BuildReport`."""
    from .design import resolve_board
    from .modelfile import to_bytes
    from .progress import Ticker, format_seconds

    m = _model(model)
    if lanes is not None:
        check_positive_int("Lane count", lanes)
    check_positive_int("Seed", seed)
    if timeout is not None:
        timeout = check_finite("Timeout", timeout, minimum=0.0, strict_min=True)
    out = check_output_dir(out_dir)
    # lanes, weights and zero skipping resolved once, by the fit (hwgen.design)
    design = resolve_board(m, board, lanes, baud=baud, weights=weights, sparse=sparse,
                           clock=clock, link=link)
    fit, shape = design.fit, design.shape
    for w in fit.fit.warnings:
        if warn:
            warn(w)
    from .board.build import build_board
    from .fileio import atomic_write_bytes

    t0 = time.monotonic()
    stage = ["yosys"]

    def status() -> str:
        return f"build: {stage[0]}, {format_seconds(time.monotonic() - t0)} so far"

    if progress:
        where = "weights in ROM" if shape is None else f"weights loaded at run time ({fit.weights})"
        progress(f"build: {fit.board} with {fit.lanes} lanes, {where}, in {out} (a 64-unit GRU "
                 "takes about 3 min on 2 cores)")
    if shape is None:
        extra = {}
    else:
        from .shape import shape_id

        extra = {"shape_id": shape_id(shape)}
    accel = design.accelerator()
    with Ticker(progress, status, every=15.0):
        result = build_board(accel, fit.board, out, baud=fit.baud, seed=seed, clock=clock,
                             timeout=timeout, link=link,
                             progress=lambda st: stage.__setitem__(0, st), **extra)
    atomic_write_bytes(out / "model.hwgm", to_bytes(m))
    if shape is not None:
        from .shape import write_shape

        write_shape(out, shape)
    from .board.build import BUILD_FILE, BUILD_SCHEMA, BUILD_VERSION

    report = BuildReport(result, fit)
    doc = {"schema": BUILD_SCHEMA, "version": BUILD_VERSION, **report.to_json()}
    atomic_write_bytes(out / BUILD_FILE, (json.dumps(doc, indent=2) + "\n").encode())
    return report


@dataclass
class BuildReport:
    """A board build: the tools' `hwgen.board.build.BuildResult` (bitstream, clock, resources,
    Fmax) and
    the estimate it was checked with (`hwgen.boardfit.BoardFit`: lanes, UART link, timing)."""

    result: object
    fit: object

    lanes = forwarded("fit.lanes", "The lanes the build chose.")
    bitstream = forwarded("result.bitstream", "The bitstream file.")
    weights = forwarded("fit.weights", "Where the weights live (never ``auto``).")

    def to_json(self) -> dict:
        return {**self.result.to_json(), "lanes": self.lanes, "weights": self.weights,
                "zero_skipping": bool(self.fit.fit.estimate.zero_skipping),
                "spram_blocks": self.fit.fit.estimate.spram_blocks,
                "cycles_per_timestep": self.fit.fit.estimate.cycles_per_timestep,
                "us_per_timestep": self.us_per_timestep,
                "link_us_per_timestep": self.fit.link_us_per_timestep}

    @property
    def us_per_timestep(self) -> float:
        """Compute time per timestep at the clock the bitstream runs at."""
        return self.fit.fit.estimate.cycles_per_timestep / self.result.clock_mhz


@dataclass
class RunResult:
    """What ``run`` measured on the board: the hardware's logits (B, T, O; None when only
    classes were asked), the golden model's, the first mismatch (sequence, timestep, logit) or
    None, whether the classes agree, and the timesteps per second the board delivered
    (simulated seconds on a simulated board, wall seconds on a real one)."""

    logits: np.ndarray | None
    golden: np.ndarray
    mismatch: tuple[int, int, int] | None
    argmax_ok: bool
    steps_per_second: float | None = None
    answers: str = "logits"

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.argmax_ok

    def __repr__(self) -> str:  # issue 25: the verdict and the rate, not the arrays
        B, T = self.golden.shape[:2]
        verdict = ("exact" if self.ok else f"first mismatch (sequence, timestep, logit) "
                   f"{self.mismatch}" if self.mismatch else "classes differ")
        rate = ("" if self.steps_per_second is None
                else f", {self.steps_per_second:,.0f} timesteps/s")
        return f"RunResult({B} sequences x {T} timesteps, {self.answers}: {verdict}{rate})"


@dataclass
class LoadResult:
    """A load into a board (`load`): ``loaded`` False when the board already held this model
    (its load CRC matched), else the words written, their CRC-32 and the seconds it took."""

    loaded: bool
    words: int
    crc: int
    seconds: float
    shape_id: int


#: The simulated board's clock and UART divisor when no build folder says otherwise.
SIM_CLOCK_HZ, SIM_DIVISOR = 12e6, 4


def _open_device(port: str, baud: int, timeout: float, model: Model, shape: dict | None,
                 sim_lanes: int, info=None, progress: Progress = None):
    """(serial port, reply timeout): a real device, or for ``"sim"`` the board design on
    Verilator (`hwgen.boardsim`): a loadable one of ``shape`` when given, else the ROM core of
    ``model``; with ``info`` (`hwgen.board.build.BuildInfo`) the build's lanes, zero skipping,
    core clock and UART divisor, else ``sim_lanes`` at 12 MHz, divisor 4. Its timeout counts
    simulated seconds."""
    if port != "sim":
        from .host import open_serial

        return open_serial(port, baud), timeout
    if shape is not None:  # a model of another shape: named before the board is simulated
        from .shape import check_fits_shape

        check_fits_shape(shape, model)
    from .boardsim import open_sim_board
    from .gateware.core import Accelerator
    from .shape import shape_is_delta
    from .uart.board import LinkedCore

    clock_hz, divisor = SIM_CLOCK_HZ, SIM_DIVISOR
    lanes, sparse, link = sim_lanes, "auto", "uart"
    if info is not None:
        clock_hz, divisor = info.clock_mhz * 1e6, info.divisor
        lanes, sparse = info.lanes, "on" if info.zero_skipping else "off"
        link = info.link
    if shape is not None and shape_is_delta(shape):  # a loadable delta core (issue 23)
        from .gateware.delta_core import DeltaAccelerator
        from .shape import capacity_plan, shape_core, shape_id

        cap = shape_core(shape, model)[0]  # the shape's thresholds: _load names a mismatch
        core = DeltaAccelerator(cap, shape["lanes"], capacity_plan(shape, model))
        sid = shape_id(shape)
    elif model.delta is not None and shape is None:  # delta networks (issue 23): ROM weights
        from .design import resolve

        core, sid = resolve(model, lanes).accelerator(), 0
    elif shape is None:
        core, sid = Accelerator(model, lanes, "auto", "rom", sparse), 0
    else:
        from .shape import shape_core, shape_id

        cap, sparse = shape_core(shape, model)
        core = Accelerator(cap, shape["lanes"], shape["state"], shape["weights"], sparse)
        sid = shape_id(shape)
    if link == "spi":  # the fastest SCLK the target follows: a quarter of the core clock
        from .boardsim import SpiClock
        from .uart.spi import MIN_CLOCK_RATIO, SpiLinkedCore

        design = SpiLinkedCore(core, clock_hz, clock_hz / MIN_CLOCK_RATIO, shape_id=sid)
        dev = open_sim_board(design, clock_hz=clock_hz, spi=SpiClock(MIN_CLOCK_RATIO // 2),
                             timeout=0.01, progress=progress)
    else:
        dev = open_sim_board(LinkedCore(core, divisor, shape_id=sid), clock_hz=clock_hz,
                             divisor=divisor, timeout=0.01, progress=progress)
    return dev, timeout


def _load(link, m: Model, shape: dict, *, force: bool, progress: Progress) -> LoadResult:
    """Load ``m`` through ``link`` into a device of ``shape`` unless it already holds it."""
    from .shape import load_crc, load_images, shape_id

    info = link.ping()
    if not info.loadable:
        raise HwgenError("the board's bitstream holds its model in ROM: it cannot load another; "
                         "build a loadable one with 'hwgen build --weights spram' (or ram)")
    sid = shape_id(shape)
    if info.shape_id != sid:
        raise HwgenError(f"the board was built for another shape (shape id 0x{info.shape_id:08x},"
                         f" the build folder's 0x{sid:08x}): pass the folder of the bitstream "
                         "that is on the board")
    images = load_images(shape, m)  # names every difference of a model of another shape
    crc = load_crc(images, info.word_bytes)
    words = sum(im.depth for im in images)
    if info.loaded and info.load_crc == crc and not force:
        return LoadResult(False, words, crc, 0.0, sid)
    t0 = time.monotonic()

    def tick(sent, total):
        if progress and (sent == total or sent % max(1, total // 10) < 256):
            progress(f"load: {sent} of {total} words, {time.monotonic() - t0:.1f} s")

    st = link.load(images, info.word_bytes, sid, crc, progress=tick)
    return LoadResult(True, st.words, st.crc, time.monotonic() - t0, sid)


#: What ``run`` can ask the board to answer.
ANSWERS = ("logits", "classes", "step")

#: The baud rate ``run`` and ``load`` use when neither they nor the build folder say: the
#: default of ``build`` on the FTDI boards (`hwgen.board.catalog.Board.max_baud`).
DEFAULT_BAUD = 3_000_000


def _build_folder(build_dir, baud: int | None):
    """(shape or None, `BuildInfo` or None, baud) of a build folder (None: no folder)."""
    if build_dir is None:
        return None, None, check_positive_int("Baud rate", baud or DEFAULT_BAUD, 10_000_000)
    from .board.build import read_build_info
    from .shape import SHAPE_FILE, read_shape

    info = read_build_info(build_dir)
    shape = None
    if info is None or (Path(build_dir) / SHAPE_FILE).is_file():
        shape = read_shape(build_dir)  # a folder with neither file: names what is missing
    baud = baud or (info.baud if info is not None else DEFAULT_BAUD)
    return shape, info, check_positive_int("Baud rate", baud, 10_000_000)


def load(model, port: str, build_dir, *, baud: int | None = None, timeout: float = 2.0,
         force: bool = False, progress: Progress = None) -> LoadResult:
    """Write ``model`` into a board running a loadable bitstream (`build` with ``weights``
    ``ram`` / ``spram``), whose build folder ``build_dir`` holds its ``shape.json``: BEGIN,
    LOAD frames, COMMIT with the CRC-32 the board must confirm (docs/uart.md). A model of another
    shape is refused, naming every difference; a board already holding the model is left as it
    is (unless ``force``)."""
    from .host import Link
    from .shape import read_shape

    m = _model(model)
    shape = read_shape(build_dir)
    if port == "sim":
        raise HwgenError("a simulated board lives only as long as one command: use 'hwgen run "
                         "MODEL --port sim --build DIR', which loads and then runs")
    _, info, baud = _build_folder(build_dir, baud)
    dev, timeout = _open_device(port, baud, timeout, m, shape, 1, info, progress)
    try:
        return _load(Link(dev, timeout=timeout), m, shape, force=force, progress=progress)
    finally:
        dev.close()


def run(model, port: str, features=None, *, codes=None, normalize: bool = True,
        baud: int | None = None, timeout: float = 2.0, sim_lanes: int = 4, build_dir=None,
        answers: str = "logits", progress: Progress = None,
        warn: Callable[[str], None] | None = None) -> RunResult:
    """Stream sequences through the accelerator on a board over UART (``port``: a serial device,
    or ``"sim"`` for the same board design simulated cycle for cycle on Verilator,
    `hwgen.boardsim`) and compare every logit with the golden model. Inputs as in `golden`.
    ``build_dir``: the build folder (`build`): its ``build.json`` gives the baud rate and, with
    ``"sim"``, the lanes, zero skipping, core clock and UART divisor of the simulated board; a
    loadable build's ``shape.json`` makes the model load first unless the board holds it
    already. ``baud``: default the build's, else 3 Mbaud. ``timeout``: seconds per reply
    (simulated seconds with ``"sim"``). ``answers``: what the board sends back (`ANSWERS`):
    ``logits`` (RUN frames, every logit compared), ``classes`` (RUN frames answering classes
    only: the fastest; the classes compared), ``step`` (one STEP frame per timestep, stop and
    wait, every logit compared)."""
    if answers not in ANSWERS:
        raise HwgenError(f"answers must be one of {', '.join(ANSWERS)}, not {answers!r}")
    from .gateware.core import input_layout, output_layout
    from .host import Link, StreamHost, first_mismatch

    m = _model(model)
    if (features is None) == (codes is None):
        raise HwgenError("give either features (real values) or codes (integers)")
    timeout = check_finite("Timeout", timeout, minimum=0.0, strict_min=True)
    timeout = check_finite("Timeout", timeout, maximum=3600.0)
    check_positive_int("Lane count", sim_lanes)
    shape, info, baud = _build_folder(build_dir, baud)
    x = _input_codes(m, features, codes, normalize, warn)
    if x.ndim < 2 or x.shape[0] == 0 or x.shape[1] == 0:  # issue 25: nothing to stream
        raise HwgenError(f"no timesteps to run: inputs of shape {tuple(x.shape)}; give at least "
                         "one sequence of at least one timestep")
    golden_logits = GoldenModel(m).run(x)
    dev, timeout = _open_device(port, baud, timeout, m, shape, sim_lanes, info, progress)
    core = m
    try:
        link = Link(dev, timeout=timeout)
        if shape is not None:
            from .shape import shape_core

            _load(link, m, shape, force=False, progress=progress)
            core = shape_core(shape, m)[0]  # its output layout's widths
        else:
            info = link.ping()
            if info.loadable:
                raise HwgenError("the board runs a loadable bitstream: pass its build folder "
                                 "(--build DIR) so that the model can be checked and loaded")
        host = StreamHost(link, input_layout(core), output_layout(core))
        clock = getattr(dev, "sim_seconds", None)
        now = (lambda: float(dev.sim_seconds)) if clock is not None else time.monotonic
        t0 = now()
        out = host.run(x, mode={"logits": "all"}.get(answers, answers))
        seconds = now() - t0
    finally:
        dev.close()
    rate = x.shape[0] * x.shape[1] / seconds if seconds > 0 else None
    if answers == "classes":
        argmax_ok = first_mismatch(out["argmax"][..., 0], golden_logits.classes) is None
        return RunResult(None, golden_logits.logits, None, argmax_ok, rate, answers)
    logits = out["logits"]
    bad = first_mismatch(logits, golden_logits.logits)
    argmax_ok = ("argmax" not in out
                 or first_mismatch(out["argmax"][..., 0], golden_logits.classes) is None)
    return RunResult(logits, golden_logits.logits, bad, argmax_ok, rate, answers)


# -- data ------------------------------------------------------------------------------------------
def load_dataset(name_or_path):
    """A built-in dataset (digits, vowels, ptb) or a file (.npz arrays, UTF-8 text):
    `hwgen.train.datasets.Dataset`. Needs NumPy only."""
    from .train.datasets import load_dataset as _load

    return _load(name_or_path)


@dataclass
class DatasetArrays:
    """One split as arrays: ``X`` (N, T, F) float features or (N, T) ids, ``y`` labels (N,) (or
    (N, T) next-character targets, -1 past the end), ``lengths`` (N,)."""

    X: np.ndarray
    y: np.ndarray
    lengths: np.ndarray


def export_dataset(name_or_path, split: str = "test", *, normalized: bool = False,
                   length: int = 100, output=None, labels=None,
                   lengths_output=None) -> DatasetArrays:
    """A dataset split as the arrays ``golden``, ``run`` and ``sim`` take.

    Features are *raw* (before the dataset's normalization, which a model trained on it stores
    and applies again), unless ``normalized=True``. Character datasets are cut into windows of
    ``length`` characters. With ``output`` / ``labels`` / ``lengths_output`` the arrays are also
    written as ``.npy`` files (every path checked before anything is written).
    """
    from .train.datasets import char_windows

    paths = [p for p in (output, labels, lengths_output) if p is not None]
    for p in paths:
        check_output_file(p, "output file")
    if len({os.path.abspath(p) for p in paths}) != len(paths):
        raise HwgenError("the output files must be different files")
    for p in paths:  # issue 25: never over the dataset file being read
        check_distinct_output(p, name_or_path)
    ds = load_dataset(name_or_path)
    s = ds.split(split)
    if ds.kind == "charlm":
        check_positive_int("Window length", length, LIMITS["hidden"] * 1024)
        X, y = char_windows(s.stream, length)
        lengths = np.full(len(X), length, np.int64)
        lengths[-1] = length - int(np.count_nonzero(y[-1] < 0))
    else:
        X = s.X if (normalized or s.raw is None) else s.raw
        y, lengths = s.y, s.lengths
    arrays = DatasetArrays(np.ascontiguousarray(X), np.asarray(y), np.asarray(lengths))
    atomic_write_files({p: npy_bytes(a) for p, a in ((output, arrays.X), (labels, arrays.y),
                                                      (lengths_output, arrays.lengths))
                        if p is not None})  # all files or none
    return arrays
