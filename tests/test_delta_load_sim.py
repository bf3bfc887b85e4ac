"""Loadable delta cores in Icarus and Verilator (issue 23, ``--weights ram``): ``hwgen sim`` on a
folder generated with ``--weights ram`` writes the model through the load port first (the
Verilog holds no weights), then compares every logit with the golden delta model, with random
stalls and resets; a second model of the same shape (``--model``) loaded into the same Verilog
gives that model's logits exactly. One folder per simulator and cell (the Verilator cases are
marked slow: run with -m slow; by default Verilator runs the loadable delta core behind the UART
link, the last test)."""

from __future__ import annotations

import shutil

import pytest

from conftest import make_model
from hwgen import api
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.toolenv import verilator_bin

icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
verilator = pytest.mark.skipif(verilator_bin() is None, reason="needs Verilator")


def _delta(cell, seed, th=(6, 4)):
    base = make_model(cell, "ternary", inputs=5, hidden=6, outputs=3, seed=seed)
    return with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], 1))


@pytest.mark.sim
@pytest.mark.parametrize("simulator,cell,state", [
    pytest.param("icarus", "gru", "registers", marks=icarus),
    pytest.param("icarus", "lstm", "ram", marks=icarus),
    # Verilator builds: 33 and 44 s each measured cold (13 s warm): -m slow (CI time); the
    # default run has Verilator through the simulated board below
    pytest.param("verilator", "gru", "ram", marks=[verilator, pytest.mark.slow]),
    pytest.param("verilator", "lstm", "registers", marks=[verilator, pytest.mark.slow]),
])
def test_hwgen_sim_loads_each_model_into_the_loadable_delta_core(tmp_path, simulator, cell,
                                                                 state):
    a, b = _delta(cell, 2), _delta(cell, 9)
    rtl = tmp_path / "rtl"
    man = api.generate(a, rtl, 4, state=state, weights="ram")
    assert "load" in man and man["load"]["shape"]["delta"] == {"theta_x": [6], "theta_h": [4]}
    text = (rtl / "hwgen_top.v").read_text()
    assert "load__data" in text
    # the folder's model, then another one of its shape (Verilator: only the other one)
    for model in (a, b) if simulator == "icarus" else (b,):
        rep = api.simulate(rtl, simulator=simulator, model=model, stall_in=0.3, stall_out=0.3,
                           resets=True, sequences=4, seed=1)
        assert rep.ok, rep.summary()
        assert rep.timesteps > 8 and 0 < rep.delta.columns_fraction < 1


@pytest.mark.sim
@verilator
def test_hwgen_run_loads_a_delta_model_into_the_simulated_loadable_board(tmp_path, capsys):
    """``hwgen run B --port sim --build DIR`` with a loadable delta build folder made for A's
    shape: the board design (UART link + loadable delta core) in Verilator takes B through the
    load protocol, then streams: bit-exact."""
    import numpy as np

    from hwgen.cli import main
    from hwgen.design import resolve
    from hwgen.modelfile import save_model
    from hwgen.shape import write_shape

    a, b = _delta("gru", 2), _delta("gru", 9)
    write_shape(tmp_path / "build", resolve(a, 2, weights="ram").shape)
    save_model(b, tmp_path / "b.hwgm")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-2, 2, (2, 3, 5)))
    rc = main(["run", str(tmp_path / "b.hwgm"), "--port", "sim", "--build",
               str(tmp_path / "build"), "--inputs", str(tmp_path / "x.npy"), "-o",
               str(tmp_path / "y.npy")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "hardware logits equal the golden model's" in out.out
    assert np.array_equal(np.load(tmp_path / "y.npy"), api.golden(b, features=np.load(
        tmp_path / "x.npy")).logits)
