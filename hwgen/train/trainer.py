"""The training loop of ``hwgen train``: quantization-aware training, checkpoints, freezing.

Reproducible: a fixed seed gives the same model file (one thread, a seeded generator for the data
order and another for the stochastic draws; both are saved in checkpoints, so an interrupted run
resumed from its last checkpoint ends with the same model as an uninterrupted one).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from ..delta import DeltaThresholds
from ..freeze import FloatParams
from ..modelfile import save_model
from ..quant import QuantConfig
from ..spec import (
    LIMITS,
    CellKind,
    Formats,
    HwgenError,
    Model,
    Sparsity,
    check_finite,
    check_int,
    check_positive_int,
)
from .datasets import Dataset, char_windows
from .evaluate import Metrics, evaluate
from .names import NORMS, RECIPES
from .qrnn import LR_SCALES, QRNN, WEIGHT_SCALES, check_layout_matches

__all__ = ["TrainConfig", "TrainResult", "TrainPaused", "build_model", "train", "torch_metric",
           "lr_factor", "LR_SCHEDULES", "RECIPES", "recipe_settings", "resolve_settings"]

QUANT_CHOICES = ("float", "binary", "ternary", "pow2", "exp", "int8")
#: ``lr_schedule`` choices: a constant rate, or cosine decay from ``lr`` to 0 over the run's
#: optimizer steps (BinaryConnect decays its rate too; quantized weights settle only when the
#: steps that flip them shrink)
LR_SCHEDULES = ("constant", "cosine")


#: ``hwgen train --recipe`` presets (`hwgen.train.names.RECIPES`): "reference" keeps the
#: defaults (the paper's reference code: Glorot W0, shadow clipping, constant Adam 0.002, every
#: matrix with ``--quant``, no normalization); "lm" is the best unnormalized character-model
#: recipe measured on Penn Treebank (docs/training.md, "Mixed precision and the lm recipe");
#: "lm-bn", "ardakani" and "hou" normalize (docs/training.md, "Normalization").


def recipe_settings(recipe: str, quant: str) -> dict:
    """The `TrainConfig` settings recipe ``recipe`` gives a model of weights ``quant`` (options
    given explicitly replace them).

    - "lm": cosine decay from 0.03 (binary / ternary, with a learned W0) or 0.013 (other
      quantizers and float: 0.03 diverged for float at long budgets), and, with a weight
      quantizer, int8 input (layer 0) and head matrices;
    - "lm-bn": "lm" with batch normalization of each matrix product, and the fixed (Glorot) W0:
      batch normalization divides each row of a product by its own spread, so the loss does not
      depend on a matrix's W0 and its gradient is all but zero (what the epsilon leaves), which
      Adam turns into steps of the order of the rate on log W0; the learned W0 drifted,
      dragging the clipped shadow weights with it, until they were too small for the rate
      (GRU-256 on PTB diverged; docs/training.md, "Normalization");
    - "ardakani" (after Ardakani et al., ICLR 2019): batch normalization of each matrix product,
      the stochastic quantizer for binary / ternary weights, a fixed (Glorot) W0 per matrix, the
      rate and schedule of "lm";
    - "hou" (after Hou et al., NeurIPS 2019): weight normalization of each row with a learned
      gain, a learned W0 per binary / ternary matrix (the scale fitted to the weights, as their
      ternarization), the deterministic quantizer, the rate and schedule of "lm".
    The papers' own rates and epoch counts are for GPU budgets; the rates here are the ones
    measured on PTB at this machine's budgets.
    """
    if recipe not in RECIPES:
        raise HwgenError(f"unknown recipe {recipe!r}; expected " + ", ".join(RECIPES))
    if recipe == "reference":
        return {}
    w0 = quant in ("binary", "ternary")
    out = {"lr": 0.03 if w0 else 0.013, "lr_schedule": "cosine"}
    if w0 and recipe in ("lm", "hou"):
        out["weight_scale"] = "learned"
    if recipe in ("lm", "lm-bn") and quant != "float":
        out.update(input_quant="int8", head_quant="int8")
    if recipe in ("lm-bn", "ardakani"):
        out["norm"] = "batch"
    if recipe == "hou":
        out["norm"] = "weight"
    if recipe == "ardakani" and w0:
        out["stochastic"] = True
    return out


def resolve_settings(recipe: str, quant: str, **given) -> dict:
    """The settings ``given`` (`TrainConfig` field -> value, None: not given) completed by
    recipe ``recipe`` and then by `TrainConfig`'s defaults."""
    preset = recipe_settings(recipe, quant)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return {k: v if v is not None else preset.get(k, defaults[k]) for k, v in given.items()}


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The multiplier of every group's base rate at optimizer step ``step`` (0-based) of
    ``total``: 1 for "constant", 0.5 * (1 + cos(pi * step / total)) for "cosine"."""
    if schedule == "constant" or total <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in checkpoints and the model's meta)."""

    dataset: str
    cell: str = "gru"
    hidden: int = 32
    layers: int = 1
    quant: str = "ternary"
    stochastic: bool = False
    epochs: int | None = None
    budget_chars: int | None = None
    seed: int = 0
    batch: int = 32
    lr: float = 2e-3
    seq_len: int = 100  # character models: training window
    embed: int = 16  # token models: embedding dimensions
    bits: int = 8  # Formats.standard(bits)
    fake_quant: bool = True
    valid_chars: int = 50_000  # character models: valid characters per evaluation
    evals: int = 10  # character models: evaluations (and checkpoints) per run
    test_chars: int | None = None  # character models: limit of test characters (None: all)
    sparsity: str | None = None  # "N:M": structured sparsity of the recurrent matrices
    sparse_head: bool = False  # the head matrix N:M sparse too
    weight_scale: str = "glorot"  # binary / ternary W0 per matrix: glorot, learned or fitted
    shadow_clip: bool = True  # clip shadow weights to the quantizer's range after each step
    lr_scale: str = "none"  # "none", "w0" or "1/w0": weight matrices' rate times / over W0
    lr_schedule: str = "constant"  # "constant" or "cosine" (decay to 0 over the run)
    recurrent_lr: float = 1.0  # the recurrent matrices' (weight_hh) rate: this times the rate
    quant_delay: float = 0.0  # the first this fraction of the optimizer steps with float weights
    warm_start: str | None = None  # where the starting parameters came from (recorded only)
    input_quant: str | None = None  # layer 0's input matrix: another quantizer than ``quant``
    head_quant: str | None = None  # the head matrix: another quantizer than ``quant``
    delta: str | None = None  # "THX,THH": a delta network with these thresholds (hwgen.delta)
    norm: str = "none"  # "batch" or "weight": normalization of each matrix product, folded

    def check(self) -> None:
        if self.quant not in QUANT_CHOICES and not self.quant.startswith(("int", "exp")):
            raise HwgenError(f"unknown quantization {self.quant!r}; expected one of "
                             + ", ".join(QUANT_CHOICES))
        if self.quant != "float":
            QuantConfig.parse(self.quant, self.stochastic)
        elif self.stochastic:
            raise HwgenError("--stochastic needs a weight quantizer, not float")
        for flag, name in (("--input-quant", self.input_quant), ("--head-quant", self.head_quant)):
            if name is None:
                continue
            if self.quant == "float":
                raise HwgenError(f"{flag} needs a weight quantizer: --quant float trains every "
                                 "matrix in float and freezes it as int8")
            if name == "float":
                raise HwgenError(f"{flag} float: every matrix of the hardware is quantized; "
                                 "give int8 for the highest precision")
            QuantConfig.parse_optional(name)
        try:
            CellKind(self.cell)
        except ValueError:
            raise HwgenError(f"unknown cell {self.cell!r}; expected rnn, gru or lstm") from None
        for name in ("hidden", "layers", "batch", "seq_len", "embed", "evals"):
            check_positive_int(name, getattr(self, name), LIMITS.get(name, 1 << 31))
        if (self.epochs is None) == (self.budget_chars is None):
            raise HwgenError("give either a number of epochs or a character budget")
        if self.epochs is not None:
            check_positive_int("epochs", self.epochs)
        if self.budget_chars is not None:
            check_positive_int("the character budget", self.budget_chars)
        self._check_optimization()
        check_int("seed", self.seed, minimum=0, maximum=(1 << 63) - 1)
        nm = self.nm
        if nm is None and self.sparse_head:
            raise HwgenError("--sparse-head needs --sparsity N:M")
        if nm is not None and self.quant_config is not None:
            nm.check_kind(self.quant_config.kind)
            if self.input_quant is not None:
                nm.check_kind(QuantConfig.parse_optional(self.input_quant).kind)
            if self.sparse_head and self.head_quant is not None:
                nm.check_kind(QuantConfig.parse_optional(self.head_quant).kind)
        if self.delta is not None:
            self.delta_thresholds.check_formats(self.formats(), self.layers)
        if self.norm not in NORMS:
            raise HwgenError(f"unknown normalization {self.norm!r}; expected "
                             + ", ".join(NORMS))
        if self.norm != "none" and self.warm_start is not None:
            raise HwgenError(f"--norm {self.norm} with --warm-start: the normalization's "
                             "statistics and gains would start afresh under trained weights "
                             "(drop one of them)")
        if self.norm != "none" and self.delta is not None:
            raise HwgenError(f"--norm {self.norm} with --delta: a delta network's memories "
                             "hold unnormalized products (drop one of them)")

    def _check_optimization(self) -> None:
        """The rate, its schedule and multipliers, the quantization delay and the W0 options."""
        check_finite("the learning rate", self.lr, minimum=0.0, strict_min=True)
        check_finite("--recurrent-lr (a multiplier of the rate)", self.recurrent_lr,
                     minimum=0.0, strict_min=True)
        check_finite("--quant-delay (a fraction of the run)", self.quant_delay, minimum=0.0)
        if self.quant_delay >= 1.0:
            raise HwgenError(f"--quant-delay {self.quant_delay:g}: the fraction of the run "
                             "trained with float weights must be below 1 (the best model is "
                             "chosen among the quantized validations after it)")
        if self.quant_delay > 0.0 and self.quant == "float":
            raise HwgenError("--quant-delay needs a weight quantizer: --quant float has no "
                             "quantization to delay")
        if self.weight_scale not in WEIGHT_SCALES:
            raise HwgenError(f"unknown weight scale {self.weight_scale!r}; expected "
                             + " or ".join(WEIGHT_SCALES))
        if self.lr_scale not in LR_SCALES:
            raise HwgenError(f"unknown learning-rate scaling {self.lr_scale!r}; expected "
                             + ", ".join(LR_SCALES))
        if self.lr_schedule not in LR_SCHEDULES:
            raise HwgenError(f"unknown learning-rate schedule {self.lr_schedule!r}; expected "
                             + " or ".join(LR_SCHEDULES))
        w0_quant = self.quant in ("binary", "ternary")
        if self.weight_scale != "glorot" and not w0_quant:
            raise HwgenError(f"--weight-scale {self.weight_scale} is for binary or ternary "
                             f"weights, not {self.quant} (use --quant ternary or drop "
                             "--weight-scale)")
        if self.lr_scale != "none" and not w0_quant:
            raise HwgenError(f"--lr-scale {self.lr_scale} scales by the binary / ternary W0; "
                             f"{self.quant} weights have none (use --quant ternary or drop "
                             "--lr-scale)")

    @property
    def nm(self) -> Sparsity | None:
        """``sparsity`` parsed (None: dense)."""
        return None if self.sparsity is None else Sparsity.parse(self.sparsity)

    @property
    def delta_thresholds(self) -> DeltaThresholds | None:
        """``delta`` parsed (None: a dense network)."""
        return None if self.delta is None else DeltaThresholds.parse(self.delta, self.layers)

    @property
    def quant_config(self) -> QuantConfig | None:
        return None if self.quant == "float" else QuantConfig.parse(self.quant, self.stochastic)

    def formats(self) -> Formats:
        return Formats.standard(self.bits, lstm=self.cell == "lstm")

    def label(self) -> str:
        q = self.quant + (" stoch" if self.stochastic else "")
        q += "".join(f" {what} {v}" for what, v in (("input", self.input_quant),
                                                     ("head", self.head_quant)) if v)
        if self.sparsity is not None:
            q += f" {self.sparsity}" + (" +head" if self.sparse_head else "")
        if self.delta is not None:
            q += f" delta {self.delta}"
        if self.norm != "none":
            q += f" {self.norm}-norm"
        return f"{self.cell} H={self.hidden}x{self.layers} {q}"


class TrainPaused(HwgenError):
    """Training stopped at its time limit with a checkpoint written (``hwgen train
    --time-limit``); running the same command with ``--resume`` continues it."""


@dataclass
class TrainResult:
    model: Model
    metrics: Metrics  # float forward and golden, test split
    torch_test: float  # the training forward (deterministic) on the test split
    best_valid: float
    seconds: float
    history: list = field(default_factory=list)

    def __repr__(self) -> str:  # issue 25: readable in a notebook
        return (f"TrainResult({self.metrics.describe()}; training forward {self.torch_test:.4f}, "
                f"best valid {self.best_valid:.4f}, {len(self.history)} epochs in "
                f"{self.seconds:.1f} s; model={self.model!r})")


def build_model(cfg: TrainConfig, ds: Dataset) -> QRNN:
    return QRNN(
        CellKind(cfg.cell), cfg.hidden, ds.classes,
        layers=cfg.layers,
        features=ds.features,
        vocab=ds.vocab,
        embed=cfg.embed,
        quant=cfg.quant_config,
        formats=cfg.formats(),
        fake_quant=cfg.fake_quant,
        seed=cfg.seed,
        sparsity=cfg.nm,
        sparse_head=cfg.sparse_head,
        weight_scale=cfg.weight_scale,
        shadow_clip=cfg.shadow_clip,
        input_quant=QuantConfig.parse_optional(cfg.input_quant),
        head_quant=QuantConfig.parse_optional(cfg.head_quant),
        delta=cfg.delta_thresholds,
        norm=cfg.norm,
    )


def _last_logits(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return logits[torch.arange(len(lengths)), lengths - 1]


@torch.no_grad()
def torch_metric(model: QRNN, ds: Dataset, split: str, *, max_chars=None, batch=256) -> float:
    """The metric of the training forward pass in eval mode (deterministic quantizer)."""
    was = model.training
    model.eval()
    try:
        sp = ds.split(split)
        if ds.kind == "charlm":
            stream = sp.stream if max_chars is None else sp.stream[: max_chars + 1]
            x, t = char_windows(stream, 1000)
            bits, n = 0.0, 0
            for s in range(0, len(x), 64):
                xb, tb = torch.from_numpy(x[s : s + 64]), torch.from_numpy(t[s : s + 64])
                z = model(xb)
                loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), tb.reshape(-1),
                                       ignore_index=-1, reduction="sum")
                bits += float(loss) / math.log(2.0)
                n += int((tb >= 0).sum())
            return bits / n
        correct = 0
        for s in range(0, len(sp.y), batch):
            x = torch.from_numpy(sp.X[s : s + batch])
            lengths = torch.from_numpy(sp.lengths[s : s + batch])
            z = _last_logits(model(x), lengths)
            correct += int((z.argmax(-1) == torch.from_numpy(sp.y[s : s + batch])).sum())
        return correct / len(sp.y)
    finally:
        model.train(was)


def _better(metric: str, a: float, b: float | None) -> bool:
    return b is None or (a > b if metric == "accuracy" else a < b)


class _Progress:
    def __init__(self, total: int, unit: str, quiet: bool):
        self.total, self.unit, self.quiet = total, unit, quiet
        self.t0 = time.monotonic()

    def __call__(self, done: int, text: str) -> None:
        if self.quiet:
            return
        el = time.monotonic() - self.t0
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
        eta = el / frac - el if frac > 0 else 0.0
        print(f"[{bar}] {done}/{self.total} {self.unit}  {text}  ({el:.0f} s, eta {eta:.0f} s)",
              file=sys.stderr, flush=True)


def _save_ckpt(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_ckpt(path: Path, cfg: TrainConfig) -> dict:
    try:
        state = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error here
        raise HwgenError(f"{path}: not a readable hwgen checkpoint ({e})") from None
    if not isinstance(state, dict) or "config" not in state:
        raise HwgenError(f"{path}: not an hwgen training checkpoint")
    saved = state["config"]
    now = asdict(cfg)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    # a setting added after the checkpoint was made is absent from it: it had the default
    saved = {k: saved.get(k, defaults.get(k)) for k in now}
    diff = [k for k in now if k not in ("epochs", "budget_chars") and saved.get(k) != now[k]]
    if diff:
        k = diff[0]
        raise HwgenError(
            f"{path}: checkpoint was made with {k}={saved.get(k)!r}, not {now[k]!r}; "
            "resume with the same settings or start afresh without --resume"
        )
    return state


class _Run:
    """One training run's mutable state: the network, its optimizer, the data-order generator,
    the best parameters so far, the history and where it stands (``progress``: epochs or
    optimizer steps done). Checkpoints save exactly this."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, checkpoint: Path | None,
                 init: FloatParams | None, on_eval: Callable[[dict], None] | None):
        torch.manual_seed(cfg.seed)
        self.cfg, self.checkpoint, self.on_eval = cfg, checkpoint, on_eval
        self.model = build_model(cfg, ds)
        if init is not None:
            self.model.load_float_params(init)
        groups = self.model.param_groups(cfg.lr, cfg.lr_scale, cfg.recurrent_lr)
        self.opt = torch.optim.Adam(groups, lr=cfg.lr)
        # the base rates, taken before a checkpoint's decayed rates load
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 104729)
        self.metric = "bpc" if ds.kind == "charlm" else "accuracy"
        self.best_state, self.best, self.progress, self.history = None, None, 0, []
        self.deadline = None  # time.monotonic() past which the run pauses after an evaluation

    def resume(self, quiet: bool) -> None:
        """Continue from the checkpoint (same settings required)."""
        st = _load_ckpt(self.checkpoint, self.cfg)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optim"])
        self.data_gen.set_state(st["data_gen"])
        self.model.generator.set_state(st["quant_gen"])
        self.best_state, self.best = st["best_state"], st["best"]
        self.progress, self.history = int(st["progress"]), list(st["history"])
        if not quiet:
            print(f"resumed from {self.checkpoint} at {self.progress}", file=sys.stderr)

    def save(self, progress_now: int) -> None:
        if self.checkpoint is None:
            return
        _save_ckpt(self.checkpoint, {
            "config": asdict(self.cfg), "model": self.model.state_dict(),
            "optim": self.opt.state_dict(), "data_gen": self.data_gen.get_state(),
            "quant_gen": self.model.generator.get_state(), "best_state": self.best_state,
            "best": self.best, "progress": progress_now, "history": self.history,
        })

    def begin_step(self, index: int, total: int) -> None:
        """Before optimizer step ``index`` (0-based) of ``total``: float weights while the step
        is within the first ``quant_delay`` of the run (``--quant-delay``), quantized from step
        floor(quant_delay * total) on (never the last step: quant_delay < 1)."""
        self.model.float_weights = index < int(self.cfg.quant_delay * total)

    def step(self, loss: torch.Tensor, index: int, total: int) -> None:
        """One optimizer step (``index`` of ``total``, for the rate schedule)."""
        f = lr_factor(self.cfg.lr_schedule, index, total)
        for g, base_lr in zip(self.opt.param_groups, self.base_lrs, strict=True):
            g["lr"] = base_lr * f
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.model.clip_shadow()

    def evaluated(self, entry: dict, progress_now: int) -> None:
        """Record a valid evaluation (``entry["valid"]``): history, best parameters, checkpoint,
        then the observer. A validation with float weights (``--quant-delay``) is recorded with
        ``float_weights`` and never kept as the best: the model file is the quantized network."""
        if self.model.float_weights:
            entry["float_weights"] = True
        self.history.append(entry)
        if not self.model.float_weights and _better(self.metric, entry["valid"], self.best):
            self.best, self.best_state = entry["valid"], copy.deepcopy(self.model.state_dict())
        self.save(progress_now)
        if self.on_eval is not None:
            self.on_eval(entry)

    def pause_if_due(self, done: int, total: int) -> None:
        """Raise `TrainPaused` when the time limit has passed and the run is not finished (the
        checkpoint of ``done`` is written: call right after `evaluated`)."""
        if self.deadline is not None and done < total and time.monotonic() > self.deadline:
            raise TrainPaused(f"stopped at the time limit after {done} of {total} "
                              f"{'epochs' if self.metric == 'accuracy' else 'steps'}; "
                              f"checkpoint {self.checkpoint}: run the same command with "
                              "--resume to continue")


def _train_classify(run: _Run, ds: Dataset, quiet: bool) -> None:
    """Epochs over the training split in a seeded random order; valid accuracy after each."""
    cfg, model = run.cfg, run.model
    tr = ds.train
    X, y, L = (torch.from_numpy(a) for a in (tr.X, tr.y, tr.lengths))
    bar = _Progress(cfg.epochs, "epochs", quiet)
    per_epoch = -(-len(y) // cfg.batch)
    all_steps = cfg.epochs * per_epoch
    for epoch in range(run.progress, cfg.epochs):
        perm = torch.randperm(len(y), generator=run.data_gen)
        total = 0.0
        for s in range(0, len(y), cfg.batch):
            idx = perm[s : s + cfg.batch]
            at = epoch * per_epoch + s // cfg.batch  # this optimizer step, of all_steps
            run.begin_step(at, all_steps)
            loss = F.cross_entropy(_last_logits(model(X[idx]), L[idx]), y[idx])
            run.step(loss, at, all_steps)
            total += loss.item() * len(idx)
        v = torch_metric(model, ds, "valid")
        run.evaluated({"epoch": epoch + 1, "loss": total / len(y), "valid": v}, epoch + 1)
        best = "(float weights)" if run.best is None else f"{run.best:.4f}"
        bar(epoch + 1, f"loss {total / len(y):.4f}  valid acc {v:.4f}  best {best}")
        run.pause_if_due(epoch + 1, cfg.epochs)


def _train_charlm(run: _Run, ds: Dataset, quiet: bool) -> None:
    """Random training windows up to the character budget; ``cfg.evals`` valid evaluations."""
    cfg, model = run.cfg, run.model
    stream = torch.from_numpy(ds.train.stream)
    if len(stream) <= cfg.seq_len + 1:
        raise HwgenError(
            f"the training text has {len(stream)} characters; a training window of "
            f"{cfg.seq_len} (--seq-len) needs more than {cfg.seq_len + 1}"
        )
    budget = cfg.budget_chars if cfg.budget_chars is not None else cfg.epochs * len(stream)
    per_step = cfg.batch * cfg.seq_len
    steps = max(1, budget // per_step)
    every = max(1, steps // cfg.evals)
    bar = _Progress(steps * per_step, "chars", quiet)
    total, count = 0.0, 0
    offsets = torch.arange(cfg.seq_len + 1)
    for i in range(run.progress, steps):
        start = torch.randint(0, len(stream) - cfg.seq_len - 1, (cfg.batch,),
                              generator=run.data_gen)
        w = stream[start[:, None] + offsets]
        run.begin_step(i, steps)
        z = model(w[:, :-1])
        loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), w[:, 1:].reshape(-1))
        run.step(loss, i, steps)
        total, count = total + loss.item(), count + 1
        if (i + 1) % every == 0 or i + 1 == steps:
            v = torch_metric(model, ds, "valid", max_chars=cfg.valid_chars)
            tr_bpc = total / count / math.log(2.0)
            run.evaluated({"chars": (i + 1) * per_step, "train_bpc": tr_bpc, "valid": v}, i + 1)
            bar((i + 1) * per_step, f"train bpc {tr_bpc:.3f}  valid bpc {v:.3f}")
            total, count = 0.0, 0
            run.pause_if_due(i + 1, steps)


def _model_meta(cfg: TrainConfig, ds: Dataset, model: QRNN, best) -> dict:
    """What the frozen model's ``meta`` records about its training."""
    meta = {
        "dataset": ds.name,
        "train": asdict(cfg),
        "torch": torch.__version__,
        "best_valid": best,
    }
    if cfg.quant == "float":
        meta["note"] = "trained without weight quantization (float), frozen as int8"
    if ds.norm:
        meta["input_norm"] = ds.norm
    if ds.symbols is not None:
        meta["symbols"] = ds.symbols
    if model.learned_scales() is not None:
        meta["learned_scales"] = model.learned_scales()
    return meta


def _freeze_and_test(run: _Run, ds: Dataset, output: Path | None
                     ) -> tuple[Model, Metrics, float]:
    """The best parameters frozen, checked and evaluated on test (float forward, golden model
    and the training forward); written to ``output`` when given."""
    cfg, model = run.cfg, run.model
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.float_weights = False
    model.eval()
    frozen = model.freeze(meta=_model_meta(cfg, ds, model, run.best))
    check_layout_matches(model, frozen)
    tt = torch_metric(model, ds, "test", max_chars=cfg.test_chars)
    m = evaluate(frozen, ds, "test", max_chars=cfg.test_chars)
    frozen.meta["test"] = {
        "metric": m.metric, "train_forward": tt, "float_forward": m.float_value,
        "golden": m.golden_value,
    }
    if output is not None:
        save_model(frozen, output)
    return frozen, m, tt


def train(
    cfg: TrainConfig,
    ds: Dataset,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    output: Path | None = None,
    init: FloatParams | None = None,
    on_eval: Callable[[dict], None] | None = None,
    time_limit: float | None = None,
) -> TrainResult:
    """Train, keep the parameters with the best valid metric, freeze them, evaluate on test.

    ``init`` starts from given float parameters (import + fine-tuning) instead of the Glorot
    initialization; its shapes must match ``cfg``. ``on_eval`` is called with each new history
    entry (epoch or characters, ``valid`` metric) right after the valid evaluation and the
    checkpoint; it observes only (hwgen explore reports progress and early-stopping metrics).
    ``time_limit`` (seconds, needs a ``checkpoint``): at the first evaluation after it, raise
    `TrainPaused` (the checkpoint holds everything; ``resume`` continues, and the result is the
    same as without the pause)."""
    cfg.check()
    if ds.kind == "classify" and cfg.budget_chars is not None:
        raise HwgenError("--budget-chars is for character models; use --epochs for classification")
    if time_limit is not None and checkpoint is None:
        raise HwgenError("a time limit needs a checkpoint to continue from (--checkpoint or -o)")
    run = _Run(cfg, ds, checkpoint, init, on_eval)
    if resume and checkpoint is not None and checkpoint.exists():
        run.resume(quiet)
    t0 = time.monotonic()
    if time_limit is not None:
        run.deadline = t0 + float(time_limit)
    run.model.train()
    (_train_classify if ds.kind == "classify" else _train_charlm)(run, ds, quiet)
    seconds = time.monotonic() - t0
    frozen, m, tt = _freeze_and_test(run, ds, output)
    best = float(run.best) if run.best is not None else float("nan")
    return TrainResult(frozen, m, tt, best, seconds, run.history)


def set_threads(n: int = 1) -> None:
    """One intra-op thread by default: reproducible and kind to a shared machine."""
    torch.set_num_threads(n)


__all__ += ["set_threads"]
