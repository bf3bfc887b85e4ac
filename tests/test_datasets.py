"""Dataset loaders: documented shapes and splits, and clear errors for bad files (NumPy only)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from hwgen.spec import HwgenError
from hwgen.train.datasets import DATASET_NAMES, char_windows, load_dataset

HAVE_SKTIME = importlib.util.find_spec("sktime") is not None


def test_names():
    assert DATASET_NAMES == ("digits", "vowels", "ptb")


def test_digits_shapes_and_splits():
    ds = load_dataset("digits")
    assert ds.kind == "classify" and ds.classes == 10 and ds.features == 8 and not ds.tokens
    sizes = [len(s) for s in (ds.train, ds.valid, ds.test)]
    assert sizes == [1258, 180, 359] and sum(sizes) == 1797
    for s in (ds.train, ds.valid, ds.test):
        assert s.X.dtype == np.float32 and s.X.shape[1:] == (8, 8)
        assert s.y.dtype == np.int64 and s.lengths.dtype == np.int64
        assert np.all(s.lengths == 8)
        assert s.X.min() >= 0.0 and s.X.max() <= 1.0
    # Stratified: every class in every split; fixed: the same split on a second load.
    assert all(len(np.unique(s.y)) == 10 for s in (ds.train, ds.valid, ds.test))
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.test.X, ds.test.X)


@pytest.mark.skipif(not HAVE_SKTIME, reason="needs the sktime wheel's data files "
                    "(pip install 'hwgen[vowels]')")
def test_vowels_shapes_and_splits():
    ds = load_dataset("vowels")
    assert ds.classes == 9 and ds.features == 12
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [225, 45, 370]
    T = ds.train.X.shape[1]
    assert T == 29 and ds.test.X.shape == (370, 29, 12)
    for s in (ds.train, ds.valid, ds.test):
        assert s.lengths.min() >= 7 and s.lengths.max() <= 29
        # padding after each sequence's length is zero
        for i in range(len(s.y)):
            assert not s.X[i, s.lengths[i] :].any()
    assert np.bincount(ds.valid.y).tolist() == [5] * 9
    # standardized with the train statistics: inside the s8.5 input range, nearly everywhere
    assert np.mean(np.abs(ds.train.X) >= 4.0) < 1e-3


def test_ptb_streams():
    ds = load_dataset("ptb")
    assert ds.kind == "charlm" and ds.vocab == 50 and ds.classes == 50 and ds.tokens
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [5_101_618, 399_782, 449_945]
    assert ds.test.stream.dtype == np.int64 and ds.test.stream.max() < 50
    assert ds.symbols[0] == "\n" and " " in ds.symbols


def test_char_windows():
    x, t = char_windows(np.arange(10), 4)
    assert x.shape == t.shape == (3, 4)
    np.testing.assert_array_equal(x.ravel()[:9], np.arange(9))
    np.testing.assert_array_equal(t.ravel()[:9], np.arange(1, 10))
    assert (t.ravel()[9:] == -1).all()


def test_text_file(tmp_path):
    p = tmp_path / "story.txt"
    p.write_text("the cat sat on the mat. " * 20)
    ds = load_dataset(p)
    assert ds.kind == "charlm" and ds.vocab == len(set(p.read_text()))
    assert sum(len(s) for s in (ds.train, ds.valid, ds.test)) == len(p.read_text())


def test_npz_vectors_and_tokens(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "v.npz"
    np.savez(p, X=rng.normal(size=(50, 6, 3)), y=rng.integers(0, 4, 50),
             lengths=rng.integers(1, 7, 50))
    ds = load_dataset(p)
    assert ds.features == 3 and ds.classes == 4 and not ds.tokens
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [40, 5, 5]
    p = tmp_path / "t.npz"
    split = np.array([0] * 30 + [1] * 10 + [2] * 10)
    np.savez(p, X=rng.integers(0, 7, (50, 5)), y=rng.integers(0, 3, 50), split=split)
    ds = load_dataset(p)
    assert ds.tokens and ds.vocab <= 7 and [len(ds.train), len(ds.valid), len(ds.test)] == [
        30, 10, 10]


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y": np.zeros(5, int)}, "missing array 'X'"),
        ({"X": np.zeros((5, 2, 2, 2)), "y": np.zeros(5, int)}, "X has shape (5, 2, 2, 2)"),
        ({"X": np.zeros((5, 3)), "y": np.arange(5) % 2}, "token ids and must be integers"),
        ({"X": np.full((5, 3, 2), np.nan), "y": np.arange(5) % 2}, "NaN or infinity"),
        ({"X": np.zeros((5, 3, 2)), "y": np.zeros(4, int)}, "y must be 5 integer class labels"),
        ({"X": np.zeros((5, 3, 2)), "y": np.arange(5) - 1}, "class labels must be 0..C-1"),
        ({"X": np.zeros((5, 3, 2)), "y": np.arange(5) % 2, "lengths": np.full(5, 4)},
         "lengths must lie in [1, 3]"),
        ({"X": np.zeros((5, 3, 2)), "y": np.arange(5) % 2, "split": np.array([0, 0, 0, 1, 1])},
         "the test split is empty"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(HwgenError) as e:
        load_dataset(p)
    assert message in str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(HwgenError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(HwgenError, match="not a readable .npz archive"):
        load_dataset(p)
    p = tmp_path / "bin.txt"
    p.write_bytes(b"\xff\xfe" * 100)
    with pytest.raises(HwgenError, match="not UTF-8 text"):
        load_dataset(p)
    p = tmp_path / "short.txt"
    p.write_text("abc")
    with pytest.raises(HwgenError, match="at least 100 characters"):
        load_dataset(p)
