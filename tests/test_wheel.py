"""The package as a user installs it: build the wheel, install it into a fresh virtual environment
and run the ``hwgen`` command from there, ``sim`` included (its cocotb bench must be inside the
package). Offline and in seconds: the wheel is built without build isolation, installed without
dependencies, and the new environment reaches the already installed dependencies through a
``.pth`` line (only a path: the test environment's own editable hwgen stays invisible).

Everything runs from a folder outside the repository: ``hwgen sim`` (Icarus) and ``hwgen sim
--fast`` (the C++ harness must be in the wheel: issue 25), and examples/api_tour.py copied out.
`test_the_wheel_installs_under_another_python` does the same under each other Python 3.11-3.13
found on the machine (``HWGEN_OTHER_PYTHONS``, or pyenv's), with the dependencies from the
package index: slow (marked so), skipped where there is none."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.sim


def _run(argv, cwd, timeout=300):
    p = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"{argv}: {p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "hwgen", src / "hwgen",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", tmp / "dist", src], tmp)
    wheel = next((tmp / "dist").glob("hwgen-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp)
    site_new = Path(sysconfig.get_path("purelib", vars={"base": str(venv),
                                                        "platbase": str(venv)}))
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (site_new / "hwgen_test_deps.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
          "--no-deps", "--no-index", "-q", wheel], tmp)
    return wheel, venv, tmp


def test_the_wheel_holds_the_bench_and_the_version(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "hwgen/benches/bench_accel.py" in names and "hwgen/api.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "sim/")) for n in names)
    meta = zipfile.ZipFile(wheel).read("hwgen-0.1.0.dist-info/METADATA").decode()
    assert "Provides-Extra: train" in meta and "Version: 0.1.0" in meta


def test_installed_command_runs_the_pipeline_and_sim(installed):
    _, venv, tmp = installed
    hwgen = venv / "bin" / "hwgen"
    where = _run([venv / "bin" / "python", "-c", "import hwgen; print(hwgen.__file__)"], tmp)
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout
    assert _run([hwgen, "--version"], tmp).strip() == "hwgen 0.1.0"
    _run([hwgen, "random-model", "--cell", "gru", "--inputs", "3", "--hidden", "4", "--outputs",
          "2", "--quant", "ternary", "-o", "m.hwgm"], tmp)
    _run([hwgen, "inspect", "m.hwgm"], tmp)
    est = json.loads(_run([hwgen, "estimate", "m.hwgm", "--board", "icebreaker", "--json"], tmp))
    assert est["fits"]
    _run([hwgen, "dataset", "export", "digits", "-o", "X.npy"], tmp)
    _run([hwgen, "generate", "m.hwgm", "--lanes", "2", "-o", "rtl"], tmp)
    out = _run([hwgen, "sim", "rtl", "--sequences", "3", "-q"], tmp)
    assert out.startswith("PASS icarus: 3 sequences")
    bench = _run([venv / "bin" / "python", "-c",
                  "import hwgen.cosim as c; print(c.BENCH_DIR)"], tmp)
    assert bench.strip().startswith(str(venv))


def test_installed_sim_fast_compiles_the_shipped_harness(installed):
    wheel, venv, tmp = installed
    assert {"hwgen/fastsim/harness.cpp", "hwgen/boardsim/harness.cpp",
            "hwgen/schemas/manifest.schema.json"} <= set(
        zipfile.ZipFile(wheel).namelist())
    hwgen = venv / "bin" / "hwgen"
    _run([hwgen, "random-model", "--cell", "rnn", "--inputs", "3", "--hidden", "4", "--outputs",
          "2", "--quant", "pow2", "-o", "f.hwgm"], tmp)
    _run([hwgen, "generate", "f.hwgm", "--lanes", "2", "-o", "rtl_fast"], tmp)
    out = _run([hwgen, "sim", "rtl_fast", "--fast", "--sequences", "3", "-q"], tmp, timeout=600)
    assert out.startswith("PASS verilator-fast: 3 sequences"), out


def test_installed_api_tour_runs_outside_the_repository(installed):
    _, venv, tmp = installed
    tour = tmp / "tour"
    tour.mkdir()
    shutil.copy(ROOT / "examples" / "api_tour.py", tour / "api_tour.py")
    out = _run([venv / "bin" / "python", tour / "api_tour.py", tour / "out"], tour)
    assert "PASS icarus" in out, out


def _other_pythons() -> list[Path]:
    """Interpreters 3.11-3.13 other than this one: ``HWGEN_OTHER_PYTHONS`` (paths separated by
    ``os.pathsep``), else those of pyenv."""
    if os.environ.get("HWGEN_OTHER_PYTHONS"):
        found = [Path(p) for p in os.environ["HWGEN_OTHER_PYTHONS"].split(os.pathsep) if p]
    else:
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        found = sorted(root.glob("3.1[123].*/bin/python3"))
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    out = []
    for p in found:
        try:
            v = subprocess.run([p, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            continue
        if v in ("3.11", "3.12", "3.13") and v != mine and v not in [o[0] for o in out]:
            out.append((v, p))
    return [p for _, p in out]


@pytest.mark.slow
@pytest.mark.parametrize("python", _other_pythons() or [None],
                         ids=lambda p: "none" if p is None else p.parent.parent.name)
def test_the_wheel_installs_under_another_python(installed, tmp_path, python):
    """pip installs the wheel with its pinned dependencies (from the package index) under
    another Python of 3.11-3.13, and the command generates and simulates there (Icarus and the
    compiled harness)."""
    if python is None:
        pytest.skip("no other Python 3.11-3.13 on this machine (set HWGEN_OTHER_PYTHONS)")
    wheel, _, _ = installed
    venv = tmp_path / "venv"
    _run([python, "-m", "venv", venv], tmp_path)
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], tmp_path, timeout=1800)
    hwgen = venv / "bin" / "hwgen"
    _run([hwgen, "random-model", "--cell", "gru", "--inputs", "3", "--hidden", "4", "--outputs",
          "2", "--quant", "ternary", "-o", "m.hwgm"], tmp_path)
    _run([hwgen, "generate", "m.hwgm", "--lanes", "2", "-o", "rtl"], tmp_path)
    assert _run([hwgen, "sim", "rtl", "--sequences", "3", "-q"], tmp_path).startswith("PASS")
    out = _run([hwgen, "sim", "rtl", "--fast", "--sequences", "3", "-q"], tmp_path, timeout=600)
    assert out.startswith("PASS verilator-fast"), out
