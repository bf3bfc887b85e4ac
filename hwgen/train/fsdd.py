"""Spoken digits from a folder of WAV files (the Free Spoken Digit Dataset's layout), NumPy only.

``hwgen train --dataset fsdd:PATH``: PATH is a folder of recordings named
``{digit}_{speaker}_{index}.wav`` (digit 0-9, speaker a name of letters, digits, ``-`` or ``.``,
index a non-negative integer), or a folder holding such a ``recordings/`` folder (a clone of the
dataset). Files not ending in ``.wav`` are ignored; a ``.wav`` file with another name, a file
that is not a readable PCM WAV, or a sample rate that differs from the other files' is an error
naming the file.

Split (the dataset's own convention): index 0-4 of every speaker and digit is the test set;
index 5-9 is held out of the rest as the valid split; index 10 and up is train (FSDD: 2,000 /
250 / 250 recordings of 5 speakers, or 2,400 / 300 / 300 of all 6).

Features (computed here, documented in docs/training.md, "Spoken digits"): per recording, the
16-bit samples scaled to [-1, 1), the mean removed, pre-emphasis y[n] = x[n] - 0.97 x[n-1]; frames
of ``WINDOW_MS`` = 32 ms (256 samples at 8 kHz) every ``HOP_MS`` = 16 ms (128 samples), Hann
window, power spectrum of an FFT of the next power of two >= the window; ``MEL_BANDS`` = 20
triangular mel filters (HTK mel scale, 0 Hz to half the sample rate, unit peak); natural log of
each band's energy plus 1e-6. One frame per hop that fits (at least one: a short recording is
zero-padded to one window). Sequences are variable-length (``lengths``), cut at ``MAX_FRAMES`` =
64 frames (1.04 s; longer recordings are rare: 0.6 % of FSDD), zero-padded after their length.
Normalization: per-band mean and standard deviation over every frame of the train split
(``Dataset.norm``, stored in a trained model as ``meta["input_norm"]``), so the features fall in
the default input format's range [-4, 4) nearly everywhere; ``Split.raw`` keeps the log-mel
values before normalization (padded with the mean, which normalizes to 0).
"""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..inputs import normalize_features
from ..spec import HwgenError

if TYPE_CHECKING:  # datasets imports this module when asked for fsdd:FOLDER
    from .datasets import Dataset

__all__ = [
    "WINDOW_MS", "HOP_MS", "MEL_BANDS", "MAX_FRAMES", "PREEMPHASIS", "TEST_INDICES",
    "VALID_INDICES", "parse_name", "read_wav", "log_mel", "mel_filters", "load_fsdd",
]

WINDOW_MS = 32
HOP_MS = 16
MEL_BANDS = 20
MAX_FRAMES = 64
PREEMPHASIS = 0.97
LOG_FLOOR = 1e-6
#: recordings with these indices are the test split (the dataset's convention) ...
TEST_INDICES = range(0, 5)
#: ... and these the valid split (taken out of the train part)
VALID_INDICES = range(5, 10)

_NAME = re.compile(r"^([0-9])_([A-Za-z0-9.\-]+)_([0-9]+)\.wav$")


def parse_name(path: Path) -> tuple[int, str, int]:
    """``{digit}_{speaker}_{index}.wav`` -> (digit, speaker, index); `HwgenError` naming the file
    otherwise."""
    m = _NAME.match(path.name)
    if m is None:
        raise HwgenError(f"{path}: not a spoken-digit recording name; expected "
                         "{digit}_{speaker}_{index}.wav with digit 0-9, e.g. 3_jackson_12.wav")
    return int(m.group(1)), m.group(2), int(m.group(3))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A PCM WAV file (8-, 16-, 24- or 32-bit, any channels) -> float64 mono samples in [-1, 1)
    (channels averaged) and the sample rate; `HwgenError` naming the file if it is unreadable."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            n = w.getnframes()
            data = w.readframes(n)
    except (OSError, EOFError, wave.Error) as e:
        raise HwgenError(f"{path}: not a readable PCM WAV file ({e})") from None
    if len(data) != n * channels * width or n == 0:
        raise HwgenError(f"{path}: a WAV file with no samples or a truncated data chunk "
                         f"({len(data)} bytes for {n} frames)")
    if width == 1:
        x = np.frombuffer(data, np.uint8).astype(np.float64) - 128.0
    elif width == 2:
        x = np.frombuffer(data, "<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64)
    else:
        x = np.frombuffer(data, "<i4").astype(np.float64)
    x = x / float(1 << (8 * width - 1))
    return x.reshape(n, channels).mean(axis=1), rate


def mel_filters(rate: int, n_fft: int, bands: int = MEL_BANDS) -> np.ndarray:
    """(bands, n_fft // 2 + 1) triangular filters with unit peak, centres evenly spaced on the
    HTK mel scale 2595 log10(1 + f / 700) from 0 Hz to rate / 2."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(0.0, mel(rate / 2.0), bands + 2))
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / (mid - lo)
    down = (hi - freqs) / (hi - mid)
    return np.clip(np.minimum(up, down), 0.0, None)


def log_mel(x: np.ndarray, rate: int, *, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Log-mel frames (T, MEL_BANDS) float64 of mono samples ``x`` (module docstring)."""
    win = max(2, round(rate * WINDOW_MS / 1000))
    hop = max(1, round(rate * HOP_MS / 1000))
    n_fft = 1 << (win - 1).bit_length()
    x = x - x.mean()
    x = np.concatenate([x[:1], x[1:] - PREEMPHASIS * x[:-1]])
    if len(x) < win:
        x = np.concatenate([x, np.zeros(win - len(x))])
    frames = min(max_frames, 1 + (len(x) - win) // hop)
    idx = np.arange(frames)[:, None] * hop + np.arange(win)[None, :]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win), n_fft)) ** 2
    return np.log(spec @ mel_filters(rate, n_fft).T + LOG_FLOOR)


def _recordings(folder: Path) -> list[Path]:
    if not folder.exists():
        raise HwgenError(f"{folder}: no such folder (fsdd:PATH names a folder of "
                         "{digit}_{speaker}_{index}.wav recordings)")
    if not folder.is_dir():
        raise HwgenError(f"{folder}: not a folder (fsdd:PATH names a folder of "
                         "{digit}_{speaker}_{index}.wav recordings)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
    if not files and (folder / "recordings").is_dir():
        return _recordings(folder / "recordings")
    if not files:
        raise HwgenError(f"{folder}: holds no .wav recordings")
    return files


def load_fsdd(path) -> Dataset:
    """The spoken-digit dataset in folder ``path`` with the module docstring's features and
    split: 10 classes (the digit), ``MEL_BANDS`` features, T <= ``MAX_FRAMES``."""
    from .datasets import Dataset, Split

    folder = Path(path)
    files = _recordings(folder)
    seqs, labels, parts, rate = [], [], [], None
    for f in files:
        digit, _, index = parse_name(f)
        x, r = read_wav(f)
        if rate is None:
            rate = r
        elif r != rate:
            raise HwgenError(f"{f}: sample rate {r} Hz; the other recordings have {rate} Hz")
        seqs.append(log_mel(x, r))
        labels.append(digit)
        parts.append(2 if index in TEST_INDICES else 1 if index in VALID_INDICES else 0)
    y, part = np.array(labels, np.int64), np.array(parts)
    for k, name in enumerate(("train", "valid", "test")):
        if not np.any(part == k):
            raise HwgenError(f"{folder}: no recording for the {name} split (index 0-4: test, "
                             "5-9: valid, 10 and up: train)")
    train_frames = np.concatenate([s for s, p in zip(seqs, parts, strict=True) if p == 0])
    mean, std = train_frames.mean(axis=0), train_frames.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    T = max(len(s) for s in seqs)
    lengths = np.array([len(s) for s in seqs], np.int64)
    X = np.zeros((len(seqs), T, MEL_BANDS), np.float32)
    raw = np.broadcast_to(mean, (len(seqs), T, MEL_BANDS)).copy()
    for i, s in enumerate(seqs):
        X[i, : len(s)] = normalize_features(s, mean, std)
        raw[i, : len(s)] = s
    splits = []
    for k in range(3):
        idx = np.flatnonzero(part == k)
        splits.append(Split(X=X[idx], y=y[idx], lengths=lengths[idx], raw=raw[idx]))
    return Dataset("fsdd", "classify", *splits, classes=10, features=MEL_BANDS,
                   norm={"mean": mean.tolist(), "std": std.tolist()})
