# amaranth: UnusedElaboratable=no
"""The delta core's white-box proof (hwgen/formal/delta_whitebox.py): ``core.order`` proven by
k-induction on small delta designs, and mutants that must fail it (a manifest that promises one
cycle less, a core slower than its manifest, a core that takes an input while its output
waits)."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from conftest import make_model
from hwgen.cli import main
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.design import Design, manifest_options, resolve
from hwgen.export import generate
from hwgen.formal import delta_properties, run_properties
from hwgen.formal.whitebox import whitebox_properties
from hwgen.spec import HwgenError

pytestmark = pytest.mark.formal


def _delta(tmp_path, cell, inputs, hidden, outputs, lanes, th=(3, 2), layers=1):
    base = make_model(cell, "ternary", inputs=inputs, hidden=hidden, outputs=outputs,
                      layers=layers, seed=1)
    model = with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], layers))
    manifest = generate(model, tmp_path / "rtl", lanes=lanes)
    return manifest, resolve(model, **manifest_options(manifest))


def _run(tmp_path, design, manifest, folder="formal"):
    (result,) = run_properties(delta_properties(design, manifest), tmp_path / folder)
    return result


def test_hwgen_prove_of_a_delta_folder(tmp_path, capsys):
    """GRU 2-2-2 on 2 lanes (no padding lane), through ``hwgen prove``: core.order proven (one
    timestep at a time, none duplicated, none lost within the manifest's latency, a stalled
    output held; for ever, k = 1, any stalls, sos and data) and the netlist checks hold; the
    listing has no exact-timing property, and the black-box hold only with --bounded."""
    manifest, _ = _delta(tmp_path, "gru", 2, 2, 2, 2)
    rtl = tmp_path / "rtl"
    assert main(["prove", str(rtl), "--list", "--bounded"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert {"core.order", "streams.order", "streams.hold"} <= set(names)
    assert not {"timing.latency", "core.latency"} & set(names)
    rc = main(["prove", str(rtl), "--only", "core,streams", "--work", str(tmp_path / "w")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, out
    status = {ln.split()[1]: ln.split()[0] for ln in out[:-1] if not ln.startswith(" ")}
    # the hold is core.order's (white box); the black-box one is bounded (--bounded)
    assert status == {"streams.comb_valid": "HOLDS", "streams.comb_ready": "HOLDS",
                      "core.order": "PROVEN"}, out
    lat = manifest["timing"]["latency_cycles"]
    assert any(f"offered < {lat} cycles after its input" in ln for ln in out)


def test_the_dense_proofs_refuse_a_delta_core_and_delta_ones_a_dense_core(tmp_path):
    manifest, design = _delta(tmp_path, "rnn", 2, 2, 2, 2)
    with pytest.raises(HwgenError, match="delta_properties"):
        whitebox_properties(design, manifest)
    dense = make_model("rnn", "ternary", inputs=2, hidden=2, outputs=2)
    with pytest.raises(HwgenError, match="needs a delta model"):
        delta_properties(resolve(dense, 2), manifest)


class _Eager(wiring.Component):
    """A delta core whose input is ready while its output waits too (the input it takes then
    never reaches the core): a mutant that loses inputs."""

    def __init__(self, core):
        self._core = core
        self.model, self.lanes, self.plan = core.model, core.lanes, core.plan
        sig = core.signature.members
        super().__init__({"i_stream": In(sig["i_stream"].signature),
                          "o_stream": Out(sig["o_stream"].signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = c = self._core
        wiring.connect(m, c.o_stream, wiring.flipped(self.o_stream))
        m.d.comb += [c.i_stream.payload.eq(self.i_stream.payload),
                     c.i_stream.valid.eq(self.i_stream.valid),
                     self.i_stream.ready.eq(c.i_stream.ready | c.o_stream.valid)]
        return m


def test_delta_mutants_fail(tmp_path, monkeypatch):
    """Each mutant FAILS with a trace from reset (the exploration finds it; replayed in
    amaranth.sim): a manifest whose latency is one cycle less than a timestep that processes no
    column takes (its output comes ``fixed_cycles - 1`` cycles after its input, exactly), and a
    core that is ready for an input while its output waits."""
    manifest, design = _delta(tmp_path, "rnn", 2, 2, 2, 2)
    fixed = manifest["timing"]["delta"]["fixed_cycles"]
    short = dict(manifest, timing=dict(manifest["timing"], latency_cycles=fixed - 2))
    r = _run(tmp_path, design, short, "short")
    assert r.status == "FAILED" and r.trace.is_file(), r.line()
    assert "no output" in r.detail or "not offered lat cycles" in r.detail, r.detail

    accelerator = Design.accelerator
    monkeypatch.setattr(Design, "accelerator", lambda self: _Eager(accelerator(self)))
    r = _run(tmp_path, design, manifest, "eager")
    assert r.status == "FAILED" and r.trace.is_file(), r.line()
    # found before it takes the input it then loses: ready while a timestep is in flight
    assert "i_ready is not high exactly when" in r.detail or "more than one" in r.detail
