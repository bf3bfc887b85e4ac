# amaranth: UnusedElaboratable=no
"""Loadable weights on the delta core (issue 23, ``--weights ram``; docs/delta.md, "Loadable
weights"): one generated core, its weights and biases written through the load port, runs any
delta model of its shape exactly (amaranth.sim, with stalls, and behind the UART link with the
host's load protocol); a model of another shape or other thresholds is refused naming the
difference; the manifest describes the load layout well enough to rebuild the words; the
estimate counts the loadable memories. (Icarus / Verilator: tests/test_delta_load_sim.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_model
from hwgen import api
from hwgen.cli import main
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.design import resolve
from hwgen.gateware.simulate import simulate
from hwgen.golden import GoldenModel
from hwgen.modelfile import save_model
from hwgen.payload import pack
from hwgen.shape import load_images, shape_differences
from hwgen.spec import HwgenError


def _delta(seed=2, cell="gru", th=(6, 4), quant="ternary", hidden=6, **kw):
    base = make_model(cell, quant, inputs=5, hidden=hidden, outputs=3, seed=seed, **kw)
    return with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], base.num_layers))


def _inputs(T, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.integers(-15, 16, (T, 5)), axis=0) + 20, -128, 127)


def _extreme_biases(model, bits):
    """``model`` with its first head and layer-0 biases at the extremes of ``bits`` signed
    bits (every bit of a loaded bias word matters)."""
    import dataclasses

    hi = (1 << (bits - 1)) - 1  # the largest |bias| the bitstream holds
    lo = -hi
    head = model.head.bias.copy()
    head[:2] = [hi, lo]
    lay = model.layers[0]
    bias = lay.bias.copy()
    bias[:2] = [lo, hi]
    layers = (dataclasses.replace(lay, bias=bias),) + model.layers[1:]
    return dataclasses.replace(model, head=dataclasses.replace(model.head, bias=head),
                               layers=layers)


@pytest.mark.parametrize("cell,state", [("gru", "registers"), ("lstm", "ram")])
def test_one_loadable_delta_core_runs_each_model_loaded_into_it(cell, state):
    """The core built for model A's shape holds no model (its memories are written through the
    load port); loaded with A it gives A's golden logits, loaded with B (another seed: other
    weights and biases, the same shape) B's, with random stalls; a sequence start (sos) in the
    middle; B's biases include the extremes the bitstream's bias width holds. A's and B's
    logits differ (the load matters)."""
    a = _delta(2, cell)
    design = resolve(a, 4, state=state, weights="ram")
    b = _extreme_biases(_delta(9, cell), design.shape["bias_bits"])
    assert design.shape["delta"] == {"theta_x": [6], "theta_h": [4]}
    core = design.accelerator()
    assert "load" in core.signature.members
    x = _inputs(10)
    sos = np.zeros(10, bool)
    sos[[0, 6]] = True
    want = {}
    for name, m in (("a", a), ("b", b)):
        seqs = [x[:6], x[6:]]
        want[name] = np.concatenate([GoldenModel(m).run(s[None]).logits[0] for s in seqs])
    assert not np.array_equal(want["a"], want["b"])
    for name, m in (("a", a), ("b", b)):
        r = simulate(core, x, sos, seed=3, in_stall=0.3, out_stall=0.3, max_cycles=50_000,
                     load=load_images(design.shape, m))
        np.testing.assert_array_equal(r.logits, want[name])


def test_the_rom_delta_core_has_no_load_port_and_spram_is_refused(tmp_path):
    a = _delta()
    rom = resolve(a, 4)
    assert rom.shape is None and not rom.plan.loadable
    with pytest.raises(HwgenError, match="does not support --weights spram: the delta core "
                       "reads every matrix's weight columns from its own memory"):
        api.generate(a, tmp_path / "s", 4, weights="spram")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("other,field", [
    (dict(th=(5, 4)), "delta.theta_x: bitstream [6], model [5]"),
    (dict(th=(6, 3)), "delta.theta_h: bitstream [4], model [3]"),
    (dict(hidden=8), "hidden: bitstream 6, model 8"),
    (dict(quant="int8"), "matrices.layer0.wx.encoding"),
    (dict(cell="lstm"), "cell: bitstream 'gru', model 'lstm'"),
])
def test_a_model_that_does_not_match_the_loadable_core_is_refused_by_name(other, field):
    shape = resolve(_delta(), 4, weights="ram").shape
    m = _delta(5, **{"cell": "gru", **other})
    assert any(field in d for d in shape_differences(shape, m)), shape_differences(shape, m)
    with pytest.raises(HwgenError, match="the model does not fit this bitstream's shape: .*"
                       + field.replace("[", r"\[").replace("]", r"\]")):
        load_images(shape, m)
    # a dense model into the delta bitstream: named too
    dense = with_thresholds(_delta(5), None)
    assert "delta.theta_x: bitstream [6], model None" in shape_differences(shape, dense)


def test_generate_writes_the_load_layout_an_independent_bench_can_follow(tmp_path):
    """``hwgen generate --weights ram`` of a delta model: the manifest's ``load`` section names
    each memory with its layout (and the row memory's fields); words rebuilt from that text
    and the model alone equal load_images.json, which holds the model's words."""
    from hwgen.gateware.plan import signed_words
    from hwgen.spec import pack_codes

    m = _delta()
    man = api.generate(m, tmp_path / "rtl", 4, weights="ram")
    assert man["memory"]["weights"] == "ram"
    mems = {x["name"]: x for x in man["load"]["memories"]}
    assert list(mems) == ["layer0_wx", "layer0_wh", "layer0_rows", "head_w", "head_bias"]
    assert {"load__valid", "load__mem", "load__addr", "load__data"} <= {
        p["name"] for p in man["ports"]}
    images = {x["name"]: [int(w, 16) for w in x["words"]] for x in json.loads(
        (tmp_path / "rtl" / "load_images.json").read_text())["memories"]}
    G, H, P = 3, 6, 4
    pos = [u * G + g for g in range(G) for u in range(H)]  # row g*H+u at position u*G+g
    order = [0] * (G * H)
    for r, p in enumerate(pos):
        order[p] = r
    lay = m.layers[0]
    for name, w in (("layer0_wx", lay.wx), ("layer0_wh", lay.wh)):
        assert "column-major, 4 2-bit ternary codes a word" in mems[name]["layout"]
        R = -(-G * H // P)
        codes = np.zeros((w.shape[1], R * P), np.int64)
        codes[:, :G * H] = w.codes[order].T
        assert images[name] == pack_codes(codes, 2, P).reshape(-1).tolist()
    fields = mems["layer0_rows"]["fields"]
    rows = [pack(fields, {"bias_x": int(lay.bias[r]),
                          "bias_h": int(lay.bias_hn[r % H]) if r // H == 2 else 0,
                          "gate": r // H, "unit": r % H}) for r in order]
    assert images["layer0_rows"] == rows
    bw = mems["head_bias"]["width"]
    assert images["head_bias"] == signed_words(list(m.head.bias), bw)
    # the ROM delta core of the same model: no load section, ROM weights
    rom = api.generate(m, tmp_path / "rom", 4)
    assert "load" not in rom and rom["memory"]["weights"] == "rom"


def test_the_estimate_counts_the_loadable_delta_memories(capsys, tmp_path):
    """``hwgen estimate --weights ram`` of a delta model: its weight columns are RAMs in block
    RAM, its row memory and head biases in logic; --weights spram exits 1 naming why."""
    p = tmp_path / "d.hwgm"
    save_model(_delta(), p)
    assert main(["estimate", str(p), "--target", "ice40-up5k", "--lanes", "4", "--weights",
                 "ram", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    mems = {x["name"]: x for x in e["resources"]["memories"]}
    assert mems["head_bias"]["placement"] == "logic"
    assert mems["layer0.wx_columns"]["placement"] == "bram"
    assert main(["estimate", str(p), "--target", "ice40-up5k", "--lanes", "4", "--json"]) == 0
    rom = {x["name"] for x in json.loads(capsys.readouterr().out)["resources"]["memories"]}
    assert "head_bias" not in rom
    assert main(["estimate", str(p), "--target", "ice40-up5k", "--weights", "spram"]) == 1
    err = capsys.readouterr().err
    assert "--weights spram" in err and "Traceback" not in err


def test_the_host_loads_delta_models_into_a_loadable_delta_core_over_uart():
    """The board design (`hwgen.uart.board.LinkedCore`) around the loadable delta core, in
    amaranth.sim behind a simulated serial port: the host's load protocol (BEGIN, LOAD frames,
    COMMIT with the CRC the device confirms, `hwgen.api.load`'s) writes model B into the core
    built for A's shape, whose logits come back exactly (swapping models: the first test); a
    model with other thresholds is refused before a byte is sent."""
    from hwgen.gateware.core import input_layout, output_layout
    from hwgen.host import Link, StreamHost
    from hwgen.shape import load_crc, shape_id
    from hwgen.uart.board import LinkedCore
    from hwgen.uart.sim import SimSerial

    a, b = _delta(2), _delta(9)
    design = resolve(a, 4, weights="ram")
    sid = shape_id(design.shape)
    port = SimSerial(LinkedCore(design.accelerator(), 4, shape_id=sid), 4, timeout=5)
    try:
        link = Link(port, timeout=10)
        info = link.ping()
        assert info.loadable and not info.loaded and info.shape_id == sid
        host = StreamHost(link, input_layout(design.core_model),
                          output_layout(design.core_model))
        x = _inputs(2, seed=4)[None]
        ims = load_images(design.shape, b)
        st = link.load(ims, info.word_bytes, sid, load_crc(ims, info.word_bytes),
                       frame_words=64)
        assert st.loaded and link.ping().load_crc == st.crc
        np.testing.assert_array_equal(host.run(x)["logits"], GoldenModel(b).run(x).logits)
        with pytest.raises(HwgenError, match=r"delta.theta_x: bitstream \[6\], model \[1\]"):
            load_images(design.shape, _delta(2, th=(1, 4)))
    finally:
        port.close()


def test_hwgen_sim_refuses_a_model_of_another_shape_before_building(tmp_path, capsys):
    """``hwgen sim RTL --model OTHER`` on a loadable delta folder: a model whose thresholds (or
    size) differ from the bitstream's exits 1 naming the difference, no traceback, before any
    simulator runs."""
    rtl = tmp_path / "rtl"
    api.generate(_delta(), rtl, 4, weights="ram")
    for other, field in ((_delta(3, th=(6, 5)), "the model does not fit this bitstream's "
                          "shape: delta.theta_h: bitstream [4], model [5]"),
                         (_delta(3, hidden=7), "another model (hidden 7, not 6)")):
        save_model(other, tmp_path / "o.hwgm")
        assert main(["sim", str(rtl), "--model", str(tmp_path / "o.hwgm"), "-q"]) == 1
        err = capsys.readouterr().err
        assert field in err and "Traceback" not in err, err
    assert not (rtl / "sim_build").exists() or not any((rtl / "sim_build").rglob("*.vvp"))


def test_hwgen_run_refuses_a_mismatched_model_for_a_loadable_delta_build(tmp_path, capsys):
    """``hwgen run MODEL --port sim --build DIR`` with a loadable delta build folder (its
    ``shape.json``): a delta model with other thresholds, and a dense model, exit 1 naming the
    difference before any simulated board is built; ``hwgen load`` reads the delta shape."""
    from hwgen.shape import read_shape, write_shape

    shape = resolve(_delta(), 4, weights="ram").shape
    write_shape(tmp_path / "build", shape)
    assert read_shape(tmp_path / "build") == shape
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 5)))
    for m, field in ((_delta(4, th=(7, 4)), "delta.theta_x: bitstream [6], model [7]"),
                     (with_thresholds(_delta(4), None), "delta.theta_x: bitstream [6], model "
                      "None")):
        save_model(m, tmp_path / "m.hwgm")
        rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--build",
                   str(tmp_path / "build"), "--inputs", str(tmp_path / "x.npy")])
        err = capsys.readouterr().err
        assert rc == 1 and "the model does not fit this bitstream's shape" in err, err
        assert field in err and "Traceback" not in err
    rc = main(["load", str(tmp_path / "m.hwgm"), "--port", "sim", "--build",
               str(tmp_path / "build")])
    assert rc == 1 and "a simulated board lives only as long as one command" in \
        capsys.readouterr().err
