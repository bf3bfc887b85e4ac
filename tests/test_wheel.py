"""The package as a user installs it: build the wheel, install it into a fresh virtual environment
and run the ``hwgen`` command from there, ``sim`` included (its cocotb bench must be inside the
package). Offline and in seconds: the wheel is built without build isolation, installed without
dependencies, and the new environment reaches the already installed dependencies through a
``.pth`` line (only a path: the test environment's own editable hwgen stays invisible)."""

from __future__ import annotations

import json
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
