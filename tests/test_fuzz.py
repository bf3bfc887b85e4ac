"""Property-based fuzzing (Hypothesis) of the model file and of the command line.

- Model file: any mutation of a valid file (flipped bytes, truncation, a header field replaced by
  any JSON value, an array replaced by one of another dtype / shape / values, a member inflated to
  a large, highly compressible array) gives either a model that runs, or a `ModelFileError` whose
  message is one line. Nothing else: no other exception, no traceback, no hang.
- Command line: argument lists drawn from every command's own options, with values from pools of
  good and bad values (non-finite and out-of-range numbers, missing / corrupt / pickled files,
  folders where files are expected, unwritable and missing output locations, mistyped options and
  choices) exit 0, or non-zero with exactly one ``hwgen: error: ...`` line on stderr and no
  output file left behind. The heavy steps (simulation, synthesis, board builds, training) are
  replaced by stubs that record that every check before them passed.

Examples per property: HWGEN_FUZZ_EXAMPLES (default 120 / 150, a few seconds each property, the
same examples every run: no deadline, derandomized, so a loaded CI machine cannot make it flaky;
with HWGEN_FUZZ_EXAMPLES set the examples are random, for exploring).
With HWGEN_FUZZ_RECORD=path, outcomes per class are appended as JSON lines
(benchmarks/fuzz.py runs many more and writes the table in docs/robustness.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_model, random_inputs
from hwgen.cli import build_parser, main
from hwgen.golden import GoldenModel
from hwgen.modelfile import ModelFileError, load_model, save_model, to_bytes

EXAMPLES = int(os.environ.get("HWGEN_FUZZ_EXAMPLES", "0")) or None
RECORD = os.environ.get("HWGEN_FUZZ_RECORD")


def _record(kind: str, case: str, outcome: str) -> None:
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(json.dumps({"kind": kind, "case": case, "outcome": outcome}) + "\n")


# -- the model file --------------------------------------------------------------------------------
BASES = {
    "gru-tokens": make_model("gru", "exp", inputs=3, hidden=4, outputs=3, tokens=5),
    "lstm-2layers": make_model("lstm", "int8", inputs=3, hidden=4, outputs=2, layers=2),
}


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _header_paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _header_paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _header_paths(v, prefix + (i,))


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, -1, 2, 7, 8, 62, 63, 64, 4097, -(2**63), 2**63, 2**80, 10**9])
    | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)

DTYPES = ["uint8", "int8", "uint16", "int32", "int64", "uint64", "float64", "bool", "<U2"]


@st.composite
def mutated_model_files(draw):
    base_name = draw(st.sampled_from(sorted(BASES)))
    data = to_bytes(BASES[base_name])
    kind = draw(st.sampled_from(["bytes", "truncate", "header", "array", "inflate"]))
    if kind == "bytes":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return kind, bytes(b)
    if kind == "truncate":
        return kind, data[: draw(st.integers(0, len(data) - 1))]
    members = _members(data)
    if kind == "header":
        header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
        path = draw(st.sampled_from(sorted(_header_paths(header), key=str)))
        target = header
        for k in path[:-1]:
            target = target[k]
        if draw(st.booleans()) and isinstance(target, dict):
            del target[path[-1]]
        else:
            target[path[-1]] = draw(json_values)
        members["header.npy"] = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
        return kind, _zip(members)
    name = draw(st.sampled_from(sorted(n for n in members if n != "header.npy")))
    if kind == "array":
        dtype = draw(st.sampled_from(DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=3)))
        if draw(st.booleans()):  # same shape, other values
            shape = np.load(io.BytesIO(members[name])).shape
        values = draw(st.sampled_from([0, 1, -1, 3, 255, 2**31, -(2**63), 2**64 - 1]))
        try:
            a = np.full(shape, values).astype(dtype)
        except (OverflowError, ValueError):
            a = np.zeros(shape, dtype)
        members[name] = _npy(a)
        return kind, _zip(members)
    # inflate: a large array that compresses to almost nothing
    n = draw(st.sampled_from([1 << 20, 1 << 22]))
    members[name] = _npy(np.zeros((n,), np.uint16))
    return kind, _zip(members)


def _check_model_bytes(tmp: Path, data: bytes) -> str:
    p = tmp / "m.hwgm"
    p.write_bytes(data)
    try:
        model = load_model(p)
    except ModelFileError as e:
        assert "\n" not in str(e), str(e)
        return "clean error"
    GoldenModel(model).run(random_inputs(model, batch=2, time=3))  # a loaded model runs
    return "valid model"


@settings(max_examples=EXAMPLES or 120, deadline=None, derandomize=EXAMPLES is None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated_model_files())
def test_any_mutated_model_file_loads_or_fails_cleanly(tmp_path, case):
    kind, data = case
    _record("model file", kind, _check_model_bytes(tmp_path, data))


def test_an_inflating_member_is_refused_before_it_is_decompressed(tmp_path):
    import tracemalloc

    members = _members(to_bytes(BASES["gru-tokens"]))
    members["layer0.wx.npy"] = _npy(np.zeros((1 << 24,), np.uint16))  # 32 MiB, ~32 KiB zipped
    p = tmp_path / "bomb.hwgm"
    p.write_bytes(_zip(members))
    assert p.stat().st_size < 200_000
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"array 'layer0.wx' has shape \(16777216,\)"):
        load_model(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, peak


# -- the command line ------------------------------------------------------------------------------
class _Reached(Exception):
    """A stubbed heavy step was reached: every check before it passed."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files the command lines refer to, made once: good and bad models, inputs, an RTL folder."""
    from hwgen.export import generate

    d = tmp_path_factory.mktemp("fuzz")
    model = make_model("gru", "ternary", inputs=3, hidden=4, outputs=2)
    save_model(model, d / "m.hwgm")
    generate(model, d / "rtl", lanes=2)
    (d / "junk.hwgm").write_bytes(b"PK\x03\x04 not a zip at all")
    np.save(d / "x.npy", np.random.default_rng(0).normal(0, 1, (2, 4, 3)))
    np.save(d / "x_bad.npy", np.zeros((2, 3)))
    np.save(d / "x_nan.npy", np.full((1, 2, 3), np.nan))
    np.save(d / "pickled.npy", np.array([object()], dtype=object), allow_pickle=True)
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY\x01\x00{'descr': '<f8', 'fortran_order'")
    np.savez(d / "data.npz", X=np.random.default_rng(0).normal(0, 1, (12, 4, 3)),
             y=np.arange(12) % 2)
    (d / "out").mkdir()
    manifest = json.loads((d / "rtl" / "manifest.json").read_text())
    for name, edit in (("rtl_badschema", lambda m: m.update(version=True)),
                       ("rtl_badhash", lambda m: m.update(model_sha256="0" * 64)),
                       ("rtl_badtype", lambda m: m["timing"].update(cycles_per_timestep="9"))):
        (d / name).mkdir()
        for f in (d / "rtl").iterdir():
            if f.is_file():
                (d / name / f.name).write_bytes(f.read_bytes())
        m = json.loads(json.dumps(manifest))
        edit(m)
        (d / name / "manifest.json").write_text(json.dumps(m))
    return d


def _pools(d: Path) -> dict[str, list[str]]:
    """Values by class, for options of each kind."""
    new = str(d / "out" / "new")
    return {
        "valid": ["1", "2", "3", "8", "0.5", "0.1", str(d / "m.hwgm"), str(d / "x.npy"),
                  str(d / "rtl"), "digits", str(d / "data.npz"), new + ".npy", new + ".hwgm",
                  new, "ice40-up5k", "icebreaker", "gru", "ternary", "icarus", "test"],
        "non-finite number": ["nan", "inf", "-inf", "NaN"],
        "out-of-range number": ["0", "-1", "-3", "1e9", "99999999999999999999", "4097", "1.5",
                                "2.0"],
        "not a number": ["x", "", "3x", "0x10", " "],
        "missing or bad input file": [str(d / "nope.hwgm"), str(d / "junk.hwgm"),
                                      str(d / "x_bad.npy"), str(d / "x_nan.npy"),
                                      str(d / "pickled.npy"), str(d / "corrupt.npy"),
                                      str(d / "rtl_badschema"), str(d / "rtl_badhash"),
                                      str(d / "rtl_badtype"), str(d / "nope"), str(d)],
        "unwritable or missing output": ["/proc/hwgen/out.npy", str(d / "no" / "dir" / "y.npy"),
                                         str(d / "out"), "/proc/version", str(d / "m.hwgm" / "x")],
        "mistyped choice": ["ice40-up5", "icebraker", "grru", "ternery", "verilater", "tset",
                            "vowel"],
    }


def _good_values(d: Path) -> dict[str, list[str]]:
    """A right value for options by their destination (the "valid" class)."""
    new = str(d / "out" / "new")
    return {
        "model": [str(d / "m.hwgm")], "state_dict": [str(d / "m.hwgm")],
        "inputs": [str(d / "x.npy")], "rtl_dir": [str(d / "rtl")],
        "output": [new + ".npy", new + ".hwgm", new], "labels": [new + ".npy"],
        "lengths": [new + ".npy"], "dataset": ["digits", str(d / "data.npz")],
        "lanes": ["1", "2"], "hidden": ["4"], "inputs_count": ["3"], "outputs": ["2"],
        "seed": ["0", "1"], "sequences": ["2"], "length": ["3"], "seeds": ["1"],
        "freq": ["12"], "baud": ["115200"], "timeout": ["0.5"], "time_limit": ["60"],
        "stall_in": ["0.2"], "stall_out": ["0.2"], "bits": ["8"], "layers": ["1"],
        "tokens": ["5"], "quant": ["ternary", "int8", "exp"], "epochs": ["1"], "lr": ["0.01"],
        "batch": ["8"], "max_chars": ["100"], "waves": [new + ".vcd"], "top": ["t0p"],
        "port": ["/dev/ttyUSB9"], "clock": ["auto", "board", "60"],
    }


#: Values never drawn: they start real work that the stubs do not cover (a simulated board run,
#: the PTB character dataset's 5 M characters).
_SKIP_VALUES = {"sim", "ptb"}


@st.composite
def command_lines(draw, d: Path):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    name = draw(st.sampled_from(sorted(n for n in commands if n != "demo")))
    sub = commands[name]
    words = [name]
    if name == "dataset":
        words.append("export")
        sub = sub._subparsers._group_actions[0].choices["export"]
    pools = _pools(d)
    classes = []

    good = _good_values(d)

    def value(dest):
        cls = draw(st.sampled_from(sorted(pools)) if draw(st.booleans()) else st.just("valid"))
        classes.append(cls)
        if cls == "valid" and dest in good:
            return draw(st.sampled_from(good[dest]))
        return draw(st.sampled_from(pools[cls]))

    actions = [a for a in sub._actions if a.dest not in ("help",)]
    for a in actions:
        required = a.required or not a.option_strings
        if not required and not draw(st.integers(0, 3)) == 0:
            continue
        if a.option_strings and draw(st.integers(0, 15)) == 0:  # a required option left out
            classes.append("missing or mistyped option")
            continue
        if a.option_strings:
            opt = a.option_strings[-1]
            if draw(st.integers(0, 12)) == 0:
                opt = opt[:-1] + "x" + opt[-1]
                classes.append("missing or mistyped option")
            words.append(opt)
        if a.nargs == 0:
            continue
        if a.choices is not None and draw(st.booleans()):
            words.append(draw(st.sampled_from([c for c in a.choices if c not in _SKIP_VALUES])))
        else:
            words.append(value(a.dest))
    worst = next((c for c in classes if c != "valid"), "valid")
    return worst, words


@pytest.fixture
def stubs(monkeypatch):
    """The heavy steps, replaced: reaching one raises `_Reached` (counted as exit 0)."""

    def reached(*args, **kwargs):
        for a in args:  # a core handed to a stubbed build is never elaborated: not a mistake
            if hasattr(a, "_MustUse__silence"):
                a._MustUse__silence = True
        raise _Reached

    monkeypatch.setattr("hwgen.cosim.cosim", reached)
    monkeypatch.setattr("hwgen.synth.synthesize", reached)
    monkeypatch.setattr("hwgen.board.build.build_board", reached)
    monkeypatch.setattr("hwgen.train.trainer.train", reached)
    monkeypatch.setattr("hwgen.host.open_serial", reached)
    # hwgen prove: its solver runs (a bounded black-box check takes minutes) stop at the
    # properties, once the command line has been checked
    monkeypatch.setattr("hwgen.formal.run_properties", reached)
    monkeypatch.setattr("hwgen.formal.runner.run_properties", reached)


def _run_cli(words: list[str]) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(words)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except _Reached:
            rc = 0
    return rc, err.getvalue()


def test_cli_fuzz(world, stubs, monkeypatch):
    d = world
    monkeypatch.chdir(d / "out")  # relative outputs (e.g. "-o 1") land in the scratch folder
    # each output path the command line names must not be left behind when it fails
    outputs = {str(d / "out" / "new") + s for s in ("", ".npy", ".hwgm")}

    @settings(max_examples=EXAMPLES or 150, deadline=None, derandomize=EXAMPLES is None,
              suppress_health_check=list(HealthCheck))
    @given(case=command_lines(d))
    def check(case):
        cls, words = case
        for o in outputs:
            p = Path(o)
            if p.is_dir():
                import shutil

                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        rc, err = _run_cli(words)
        assert "Traceback" not in err, (words, err)
        if rc == 0:
            _record("command line", cls, "ok")
            return
        lines = [ln for ln in err.splitlines()
                 if not ln.startswith(("hwgen: warning:", "next:", "["))]
        assert rc in (1, 2), (words, rc, err)
        assert len(lines) == 1 and lines[0].startswith("hwgen: error: "), (words, err)
        left = [o for o in outputs if Path(o).is_file()]
        assert not left, (words, left)
        _record("command line", cls, "clean error")

    check()


def test_did_you_mean(world, monkeypatch):
    d = world
    monkeypatch.chdir(d / "out")
    cases = [
        (["estmate", str(d / "m.hwgm")], "did you mean 'estimate'?"),
        (["estimate", str(d / "m.hwgm"), "--target", "ice40-up5"], "did you mean 'ice40-up5k'?"),
        (["estimate", str(d / "m.hwgm"), "--bord", "icebreaker"], "did you mean '--board'?"),
        (["estimate", str(d / "m.hwgm"), "--lanes", "2", "--targt", "ecp5-25k"],
         "did you mean '--target'?"),
        (["eval", str(d / "m.hwgm"), "--dataset", "digit"], "did you mean 'digits'?"),
        (["random-model", "--cell", "gru", "--inputs", "3", "--hidden", "4", "--outputs", "2",
          "--quant", "ternery", "-o", str(d / "out" / "r.hwgm")], "did you mean 'ternary'?"),
    ]
    for words, hint in cases:
        rc, err = _run_cli(words)
        assert rc in (1, 2) and err.count("\n") == 1 and hint in err, (words, err)


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "nan", "must be a finite number, not nan"),
    ("--lr", "-0.1", "must be greater than 0"),
    ("--batch", "0", "must be a positive integer, not 0"),
    ("--hidden", "100000", "must be at most 4096, not 100000"),
])
def test_train_options_are_checked_before_training(world, stubs, option, value, message):
    words = ["train", "--dataset", "digits", "--hidden", "4", "-o", str(world / "out" / "t.hwgm"),
             option, value]
    rc, err = _run_cli(words)
    assert rc == 2 and message in err and err.count("\n") == 1, err
