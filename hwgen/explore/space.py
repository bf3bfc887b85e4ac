"""The design space of an exploration: trial configurations, their hashes and the grid.

A **trial** is one quantization-aware training run: (cell, weight encoding, hidden size, layers,
budget, seed, batch, learning rate, fixed-point bits) on one dataset. A **design** is a trained
trial at one lane count on one target: lanes change the hardware, not the weights, so every lane
count of a trial shares its training (`hwgen.explore.designs`).

Trials are cached by `trial_hash`: the SHA-256 of the trial's configuration and the dataset's
identity (a built-in name, or ``sha256:`` of a file's bytes), so a path that moves keeps its
cache and a file that changes does not. NumPy only; no Ray, no PyTorch.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..spec import HwgenError, check_positive_int

__all__ = [
    "CACHE_VERSION",
    "CELLS",
    "TrialConfig",
    "DatasetRef",
    "dataset_ref",
    "trial_hash",
    "grid",
    "sample",
    "parse_list",
]

#: Bumped when a cached trial record would no longer mean the same thing.
CACHE_VERSION = 1

CELLS = ("rnn", "gru", "lstm")


@dataclass(frozen=True)
class TrialConfig:
    """Everything that determines one training run of an exploration.

    ``budget``: epochs for a classification dataset, training characters for a character model
    (see `hwgen.train.trainer.TrainConfig`: ``epochs`` / ``budget_chars``). The other fields are
    `TrainConfig`'s, with its defaults.
    """

    cell: str
    quant: str
    hidden: int
    budget: int
    layers: int = 1
    seed: int = 0
    batch: int = 32
    lr: float = 2e-3
    bits: int = 8
    delta: str | None = None  # "THX,THH": a delta network (issue 23, `hwgen train --delta`)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise HwgenError(f"unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        for name in ("hidden", "budget", "layers", "batch", "bits"):
            check_positive_int(name, getattr(self, name))
        if not (isinstance(self.lr, float | int) and self.lr > 0):
            raise HwgenError(f"learning rate must be a positive number, not {self.lr!r}")

    def to_json(self) -> dict:
        d = asdict(self)
        if d["delta"] is None:  # a dense trial's record (and cache hash) as before issue 23
            del d["delta"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrialConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise HwgenError(f"unknown trial configuration fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def label(self) -> str:
        """A short human name, e.g. ``gru h32 ternary``."""
        extra = "" if self.layers == 1 else f"x{self.layers}"
        delta = "" if self.delta is None else f" delta {self.delta}"
        return f"{self.cell} h{self.hidden}{extra} {self.quant}{delta}"


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as an exploration names it: what to load (``source``: a built-in name or an
    absolute path), its identity for the cache (``ident``), its kind (``classify`` or
    ``charlm``) and its metric (``accuracy``, higher is better, or ``bpc``, lower is better)."""

    source: str
    ident: str
    kind: str

    @property
    def metric(self) -> str:
        return "bpc" if self.kind == "charlm" else "accuracy"

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    @property
    def budget_unit(self) -> str:
        return "characters" if self.kind == "charlm" else "epochs"

    def to_json(self) -> dict:
        return asdict(self)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_ref(name_or_path) -> DatasetRef:
    """Resolve ``name_or_path`` (a built-in dataset or a file, as ``hwgen train --dataset``) and
    load it once to learn its kind; raises `HwgenError` for an unknown name or a bad file."""
    from ..train.datasets import DATASET_NAMES, load_dataset

    key = os.fspath(name_or_path)
    ds = load_dataset(key)
    if key in DATASET_NAMES:
        return DatasetRef(key, key, ds.kind)
    path = Path(key).resolve()
    return DatasetRef(str(path), f"sha256:{_file_sha256(path)}", ds.kind)


def trial_hash(ds: DatasetRef, cfg: TrialConfig) -> str:
    """16 hex digits naming ``cfg`` on ``ds`` in the cache (see the module docstring)."""
    key = {"v": CACHE_VERSION, "dataset": ds.ident, **cfg.to_json()}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def grid(cells, quants, hiddens, *, budget: int, **common) -> list[TrialConfig]:
    """Every combination of ``cells`` x ``quants`` x ``hiddens`` (in that nesting order), each
    with ``budget`` and the other `TrialConfig` fields from ``common``; duplicates removed."""
    out, seen = [], set()
    for cell, quant, hidden in itertools.product(cells, quants, hiddens):
        cfg = TrialConfig(cell=cell, quant=quant, hidden=hidden, budget=budget, **common)
        if cfg not in seen:
            seen.add(cfg)
            out.append(cfg)
    if not out:
        raise HwgenError("the design space is empty: give at least one cell, quant and hidden")
    return out


def sample(configs: list[TrialConfig], n: int, seed: int = 0) -> list[TrialConfig]:
    """``n`` distinct configurations drawn at random (seeded) from ``configs``, in grid order;
    all of them when ``n`` is at least their number."""
    check_positive_int("the number of samples", n)
    if n >= len(configs):
        return list(configs)
    keep = set(random.Random(seed).sample(range(len(configs)), n))
    return [c for i, c in enumerate(configs) if i in keep]


def parse_list(text: str, what: str, *, cast=str, choices=None) -> list:
    """A comma-separated option value as a list (``"16,32"`` -> ``[16, 32]``), with a clear
    error naming ``what`` for an empty item, a bad number or a value outside ``choices``."""
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(t == "" for t in items):
        raise HwgenError(f"{what}: expected a comma-separated list, not {text!r}")
    out = []
    for t in items:
        try:
            v = cast(t)
        except ValueError:
            raise HwgenError(f"{what}: {t!r} is not a valid value") from None
        if cast is int and v < 1:
            raise HwgenError(f"{what}: expected positive integers, not {v}")
        if choices is not None and v not in choices:
            raise HwgenError(f"{what}: unknown value {t!r}; expected one of {', '.join(choices)}")
        if v not in out:
            out.append(v)
    return out
