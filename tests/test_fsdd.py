"""Spoken digits from a folder of WAV files (hwgen.train.fsdd): names, split, features, errors."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from hwgen.spec import HwgenError
from hwgen.train.datasets import load_dataset
from hwgen.train.fsdd import MAX_FRAMES, MEL_BANDS, log_mel, mel_filters, parse_name, read_wav

_REPO = Path(__file__).resolve().parents[1]
#: the recordings: $HWGEN_FSDD, or shared/data/fsdd beside the checkout (or beside its worktrees)
FSDD = next((p for p in (Path(os.environ.get("HWGEN_FSDD", "/nonexistent")),
                         _REPO.parent / "shared" / "data" / "fsdd",
                         _REPO.parent.parent / "shared" / "data" / "fsdd") if p.is_dir()),
            _REPO.parent / "shared" / "data" / "fsdd")


def write_wav(path: Path, samples, rate: int = 8000, width: int = 2, channels: int = 1) -> None:
    a = np.asarray(samples, np.float64)
    if channels > 1:
        a = np.repeat(a[:, None], channels, axis=1)
    top = 1 << (8 * width - 1)
    codes = np.clip(np.round(a * top), -top, top - 1).astype(np.int64)
    if width == 1:
        data = (codes + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = codes.astype("<i2").tobytes()
    else:
        data = codes.astype("<i4").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def tone(freq: float, seconds: float = 0.3, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def make_folder(root: Path, speakers=("ann", "bob"), indices=range(12)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for d in range(10):
        for s in speakers:
            for i in indices:
                write_wav(root / f"{d}_{s}_{i}.wav", tone(200 + 300 * d, 0.1 + 0.02 * i))
    return root


def test_parse_name():
    assert parse_name(Path("3_jackson_12.wav")) == (3, "jackson", 12)
    assert parse_name(Path("0_yweweler_0.wav")) == (0, "yweweler", 0)
    for bad in ("10_bob_1.wav", "3-bob-1.wav", "3_bob.wav", "3_bob_x.wav", "a_bob_1.wav"):
        with pytest.raises(HwgenError, match=bad.replace(".", r"\.")):
            parse_name(Path(bad))


def test_read_wav_widths_and_channels(tmp_path):
    x = tone(440, 0.05)
    for width in (1, 2, 4):
        for ch in (1, 2):
            p = tmp_path / f"w{width}c{ch}.wav"
            write_wav(p, x, width=width, channels=ch)
            y, rate = read_wav(p)
            assert rate == 8000 and y.shape == x.shape
            assert np.max(np.abs(y - x)) <= 1.0 / (1 << (8 * width - 2))


def test_log_mel_shape_and_tone():
    rate = 8000
    f = log_mel(tone(1000, 0.5), rate)
    assert f.shape == (1 + (4000 - 256) // 128, MEL_BANDS)
    # a 1 kHz tone lands in the band whose filter peaks nearest 1 kHz
    fb = mel_filters(rate, 256)
    assert np.argmax(f.mean(axis=0)) == np.argmax(fb[:, 32])  # bin 32 = 1000 Hz
    # a recording shorter than one window still gives one frame; long ones are cut
    assert log_mel(tone(500, 0.01), rate).shape == (1, MEL_BANDS)
    assert log_mel(tone(500, 3.0), rate).shape == (MAX_FRAMES, MEL_BANDS)


def test_synthetic_folder_split_and_norm(tmp_path):
    folder = make_folder(tmp_path / "recordings")
    (folder / "README.md").write_text("not a recording: ignored")
    ds = load_dataset(f"fsdd:{folder}")
    assert ds.name == "fsdd" and ds.classes == 10 and ds.features == MEL_BANDS
    # index 0-4 test, 5-9 valid, 10-11 train; 10 digits x 2 speakers
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [40, 100, 100]
    assert np.bincount(ds.test.y).tolist() == [10] * 10
    tr = ds.train
    frames = np.concatenate([tr.X[i, : tr.lengths[i]] for i in range(len(tr.y))])
    np.testing.assert_allclose(frames.mean(axis=0), 0.0, atol=1e-5)
    for s in (ds.train, ds.valid, ds.test):
        for i in range(len(s.y)):
            assert not s.X[i, s.lengths[i]:].any()
    # the raw features normalize to the split's features with the stored normalization
    mean, std = np.array(ds.norm["mean"]), np.array(ds.norm["std"])
    np.testing.assert_allclose((ds.test.raw - mean) / std, ds.test.X, atol=1e-5)
    # a parent folder with recordings/ inside reads the same
    assert len(load_dataset(f"fsdd:{tmp_path}").test) == 100


def test_errors_name_the_file(tmp_path):
    with pytest.raises(HwgenError, match="no such folder"):
        load_dataset(f"fsdd:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HwgenError, match="holds no .wav"):
        load_dataset(f"fsdd:{tmp_path / 'empty'}")
    folder = make_folder(tmp_path / "a", speakers=("ann",))
    (folder / "x_ann_1.wav").write_bytes(b"RIFF")
    with pytest.raises(HwgenError, match=r"x_ann_1\.wav: not a spoken-digit recording name"):
        load_dataset(f"fsdd:{folder}")
    (folder / "x_ann_1.wav").unlink()
    (folder / "3_ann_99.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(HwgenError, match=r"3_ann_99\.wav: not a readable PCM WAV"):
        load_dataset(f"fsdd:{folder}")
    write_wav(folder / "3_ann_99.wav", tone(300), rate=16000)
    with pytest.raises(HwgenError, match=r"3_ann_99\.wav: sample rate 16000 Hz"):
        load_dataset(f"fsdd:{folder}")
    write_wav(folder / "3_ann_99.wav", [])
    with pytest.raises(HwgenError, match=r"3_ann_99\.wav: a WAV file with no samples"):
        load_dataset(f"fsdd:{folder}")
    only_test = make_folder(tmp_path / "b", speakers=("ann",), indices=range(5))
    with pytest.raises(HwgenError, match="no recording for the train split"):
        load_dataset(f"fsdd:{only_test}")


def test_cli_bad_folder_is_one_line(tmp_path, capsys):
    from hwgen.cli import main

    code = main(["dataset", "export", f"fsdd:{tmp_path / 'nope'}", "--split", "test",
                 "-o", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("hwgen: error: ") and "no such folder" in err
    assert err.count("\n") == 1


@pytest.mark.skipif(not FSDD.is_dir(), reason="needs the FSDD recordings in shared/data/fsdd")
def test_real_fsdd():
    ds = load_dataset(f"fsdd:{FSDD}")
    n = len(list((FSDD / "recordings").glob("*.wav")))
    assert len(ds.train) + len(ds.valid) + len(ds.test) == n
    assert len(ds.test) == n // 10 and len(ds.valid) == n // 10  # index 0-4, 5-9 of 50
    assert ds.train.X.shape[1:] == (MAX_FRAMES, MEL_BANDS)
    assert np.bincount(ds.test.y).tolist() == [n // 100] * 10
    assert np.mean(np.abs(ds.train.X) >= 4.0) < 1e-2
