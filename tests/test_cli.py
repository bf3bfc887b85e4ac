import subprocess
import sys

import numpy as np
import pytest

from hwgen.cli import main


def run_cli(*args):
    """The real console script, in a subprocess: exit code, stdout, stderr."""
    p = subprocess.run(
        [sys.executable, "-m", "hwgen.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, p.stdout, p.stderr


def args(text: str, **paths) -> list[str]:
    """A command line from one string; {name} fields are filled from ``paths``."""
    return [a.format(**paths) for a in text.split()]


def test_help_lists_the_subcommands():
    rc, out, _ = run_cli("--help")
    assert rc == 0
    for name in ("random-model", "inspect", "golden"):
        assert name in out


def test_random_model_inspect_golden(tmp_path, capsys):
    m = tmp_path / "m.hwgm"
    cmd = "random-model --cell lstm --inputs 6 --hidden 8 --outputs 3 --layers 2 --quant exp -o {m}"
    assert main(args(cmd, m=m)) == 0
    assert main(["inspect", str(m)]) == 0
    out = capsys.readouterr().out
    assert "lstm, 2 layer(s) x 8 hidden" in out and "exp4 (7 exponents + zero)" in out
    assert "accumulators" in out
    x = np.random.default_rng(0).normal(0, 1, (2, 5, 6))
    np.save(tmp_path / "x.npy", x)
    assert main(args("golden {m} --inputs {d}/x.npy -o {d}/y.npy", m=m, d=tmp_path)) == 0
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, 5, 3) and y.dtype == np.int64


def test_token_model_golden(tmp_path):
    m = tmp_path / "t.hwgm"
    cmd = "random-model --cell gru --inputs 4 --hidden 8 --outputs 5 --tokens 5 --quant ternary"
    assert main(args(cmd + " -o {m}", m=m)) == 0
    np.save(tmp_path / "ids.npy", np.array([[0, 1, 4], [2, 2, 3]]))
    assert main(args("golden {m} --inputs {d}/ids.npy -o {d}/y.npy --real", m=m, d=tmp_path)) == 0
    assert np.load(tmp_path / "y.npy").dtype == np.float64


RANDOM_GRU = "random-model --cell gru --inputs 3 --hidden 4 --outputs 2"


@pytest.mark.parametrize(
    "cmd,message",
    [
        ("inspect {tmp}/missing.hwgm", "no such model file"),
        ("inspect {tmp}/junk.hwgm", "not a readable hwgen model file"),
        (
            "golden {tmp}/m.hwgm --inputs {tmp}/bad.npy -o {tmp}/y.npy",
            r"has shape (2, 3); this model needs (batch, time, 3)",
        ),
        ("golden {tmp}/m.hwgm --inputs {tmp}/nope.npy -o {tmp}/y.npy", "no such file"),
        (RANDOM_GRU + " --quant int -o {tmp}/x.hwgm", "unknown quantization 'int'"),
        (RANDOM_GRU + " --quant pow2 --stochastic -o {tmp}/x.hwgm", "deterministic only"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, cmd, message):
    run_cli(*args("random-model --cell rnn --inputs 3 --hidden 4 --outputs 2 --quant ternary "
                  "-o {tmp}/m.hwgm", tmp=tmp_path))
    (tmp_path / "junk.hwgm").write_bytes(b"PK\x03\x04 not really a zip")
    np.save(tmp_path / "bad.npy", np.zeros((2, 3)))
    rc, out, err = run_cli(*args(cmd, tmp=tmp_path))
    assert rc == 1
    assert err.startswith("hwgen: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "cmd",
    [
        "random-model --cell tcn --inputs 3 --hidden 4 --outputs 2 --quant ternary -o x",
        "random-model --cell gru --inputs 0 --hidden 4 --outputs 2 --quant ternary -o x",
        "frobnicate",
    ],
)
def test_bad_arguments_exit_2(cmd):
    rc, _, err = run_cli(*args(cmd))
    assert rc == 2 and "error:" in err and "Traceback" not in err
