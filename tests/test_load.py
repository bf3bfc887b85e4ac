# amaranth: UnusedElaboratable=no
"""Loadable accelerators (weights in RAM, written at run time): the shape, the capacity model,
the core in amaranth.sim, the UART load protocol with its faults, and the CLI (docs/uart.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_model
from hwgen.cli import main
from hwgen.estimate import estimate
from hwgen.gateware.core import Accelerator, input_layout, output_layout
from hwgen.gateware.simulate import simulate
from hwgen.golden import GoldenModel
from hwgen.host import Link, StreamHost
from hwgen.modelfile import save_model
from hwgen.numerics import derive_widths
from hwgen.shape import (
    capacity_model,
    load_crc,
    load_images,
    read_shape,
    shape_core,
    shape_differences,
    shape_id,
    shape_of,
    write_shape,
)
from hwgen.spec import HwgenError
from hwgen.uart.board import LinkedCore
from hwgen.uart.protocol import Cmd, ProtocolError
from hwgen.uart.sim import SimSerial

DIV = 4


def _inputs(model, lengths, seed):
    rng = np.random.default_rng(seed)
    if model.embedding is not None:
        return [rng.integers(0, model.input.vocab, (t,)) for t in lengths]
    fmt = model.formats.input
    return [rng.integers(fmt.min_code, fmt.max_code + 1, (t, model.input.features))
            for t in lengths]


# -- the shape (pure) ---------------------------------------------------------------------------
def test_models_of_one_shape_share_it_and_another_shape_is_named():
    a = make_model("gru", "ternary", inputs=4, hidden=6, outputs=3, seed=1)
    b = make_model("gru", "ternary", inputs=4, hidden=6, outputs=3, seed=2)
    sh = shape_of(a, 3)
    assert sh["weights"] == "spram" and sh["lanes"] == 3
    assert shape_of(b, 3, bias_bits=sh["bias_bits"]) == sh  # Glorot scales: same for any seed
    assert shape_id(sh) == shape_id(json.loads(json.dumps(sh)))
    assert shape_differences(sh, b) == []
    wider = make_model("gru", "ternary", inputs=4, hidden=8, outputs=3)
    diffs = shape_differences(sh, wider)
    assert "hidden: bitstream 6, model 8" in diffs
    assert any(d.startswith("matrices.layer0.wh.shape: bitstream [18, 6], model [24, 8]")
               for d in diffs)
    other = make_model("gru", "exp", inputs=4, hidden=6, outputs=3)
    assert any("matrices.layer0.wx.encoding.kind: bitstream 'ternary', model 'exp'" in d
               for d in shape_differences(sh, other))
    with pytest.raises(HwgenError, match="does not fit this bitstream's shape: hidden: "
                       "bitstream 6, model 8"):
        load_images(sh, wider)
    with pytest.raises(HwgenError, match="a ROM accelerator has no load port"):
        shape_of(a, 3, weights="rom")


def test_biases_beyond_the_bitstream_capacity_are_refused():
    a = make_model("rnn", "ternary", inputs=3, hidden=5, outputs=2)
    sh = shape_of(a, 2, bias_bits=8)
    big = make_model("rnn", "ternary", inputs=3, hidden=5, outputs=2)
    big.layers[0].bias[0] = 1000  # needs 11 bits
    assert shape_differences(sh, big) == [
        "bias_bits: the bitstream holds 8-bit biases, the model's largest needs 11"]


def test_capacity_model_widths_hold_any_model_of_the_shape():
    for cell, quant in (("gru", "ternary"), ("lstm", "exp"), ("rnn", "int8")):
        m = make_model(cell, quant, inputs=4, hidden=6, outputs=3, tokens=9 if cell == "lstm"
                       else None)
        cap = derive_widths(capacity_model(m, shape_of(m, 2)["bias_bits"]))
        own = derive_widths(m)
        assert cap.logit_width >= own.logit_width
        for c, o in zip(cap.layers, own.layers, strict=True):
            assert c.acc_x_bound >= o.acc_x_bound and c.acc_h_bound >= o.acc_h_bound
            assert c.gate_bound >= o.gate_bound


# -- the core in amaranth.sim -------------------------------------------------------------------
@pytest.mark.parametrize("cell,quant,inputs,hidden,layers,tokens,lanes,weights", [
    ("gru", "ternary", 4, 6, 1, None, 3, "spram"),
    ("lstm", "exp", 3, 5, 2, 7, 4, "ram"),  # tokens: the embedding is loaded too
    ("rnn", "ternary", 2, 9, 1, None, 4, "spram"),  # paired input segments
    ("gru", "int8", 3, 4, 1, None, 2, "ram"),
])
def test_one_core_runs_every_model_of_its_shape(cell, quant, inputs, hidden, layers, tokens,
                                                lanes, weights):
    a = make_model(cell, quant, inputs=inputs, hidden=hidden, outputs=3, layers=layers,
                   tokens=tokens, argmax=True, seed=1)
    b = make_model(cell, quant, inputs=inputs, hidden=hidden, outputs=3, layers=layers,
                   tokens=tokens, argmax=True, seed=2)
    sh = shape_of(a, lanes, weights=weights)
    diffs = shape_differences(sh, b)
    if quant in ("ternary", "binary"):  # Glorot scales: every model of the size swaps
        assert diffs == []
    elif diffs:  # exp / int-N scales come from the weights' range: named, then refused
        assert all(".scale: bitstream" in d for d in diffs), diffs
        b = a
    cap, sparse = shape_core(sh, a)
    core = Accelerator(cap, lanes, "auto", weights, sparse)
    for model in (a, b):
        seqs = _inputs(model, (3, 2), 0)
        x = np.concatenate(seqs)
        sos = np.concatenate([np.arange(len(s)) == 0 for s in seqs])
        got = simulate(core, x, sos, load=load_images(sh, model), in_stall=0.3, out_stall=0.3)
        want = np.concatenate([GoldenModel(model).run(s[None]).logits[0] for s in seqs])
        np.testing.assert_array_equal(got.logits, want)


def test_rom_core_has_no_load_port():
    m = make_model("rnn", "ternary", inputs=3, hidden=4, outputs=2)
    with pytest.raises(HwgenError, match="holds its weights in ROM; it has no load port"):
        simulate(Accelerator(m, 2), np.zeros((1, 3), int), [True], load=[])
    with pytest.raises(HwgenError, match="Weight storage must be one of rom, ram, spram, not "
                       "'flash'"):
        Accelerator(m, 2, weights="flash")


# -- the UART load protocol ---------------------------------------------------------------------
class Board:
    """A simulated loadable board of model ``a``'s shape and a host link to it."""

    def __init__(self, a, lanes=3, **faults):
        self.shape = shape_of(a, lanes)
        self.id = shape_id(self.shape)
        self.core = Accelerator(capacity_model(a, self.shape["bias_bits"]), lanes, "auto",
                                "spram")
        self.port = SimSerial(LinkedCore(self.core, DIV, shape_id=self.id), DIV, timeout=5,
                              **faults)
        self.link = Link(self.port, timeout=10)
        cm = self.core.model
        self.host = StreamHost(self.link, input_layout(cm), output_layout(cm))

    def load(self, model, **kw):
        ims = load_images(self.shape, model)
        wb = self.link.ping().word_bytes
        return self.link.load(ims, wb, self.id, load_crc(ims, wb), **kw)

    def check(self, model):
        x = np.stack(_inputs(model, (3,), 5))
        got = self.host.run(x)["logits"]
        np.testing.assert_array_equal(got, GoldenModel(model).run(x).logits)

    def close(self):
        self.port.close()


@pytest.fixture
def models():
    kw = dict(inputs=4, hidden=6, outputs=3, argmax=True)
    return make_model("gru", "ternary", seed=1, **kw), make_model("gru", "ternary", seed=2, **kw)


def test_load_then_run_and_swap_models_without_a_rebuild(models):
    a, b = models
    board = Board(a)
    try:
        info = board.link.ping()
        assert (info.version, info.loadable, info.loaded, info.shape_id) == (3, True, False,
                                                                             board.id)
        with pytest.raises(ProtocolError, match="STEP frame .*: NOT_LOADED: the device holds no "
                           "verified model"):
            board.host.step(np.zeros(4, int), True)
        for model in (a, b, a):
            st = board.load(model, frame_words=16)
            assert st.loaded and not st.dirty
            assert st.words == sum(im.depth for im in load_images(board.shape, model))
            info = board.link.ping()
            assert info.loaded and info.load_crc == st.crc
            board.check(model)
    finally:
        board.close()


def test_a_corrupted_load_byte_leaves_the_board_refusing(models):
    a, _ = models
    # bytes 0-13: PING (7; its INFO reply is not counted), BEGIN (7), then the first
    # LOAD frame: its 12th byte is a data byte
    board = Board(a, corrupt={7 + 7 + 12: 0x01})
    try:
        with pytest.raises(ProtocolError, match="LOAD frame .*: CRC"):
            board.load(a, frame_words=16)
        assert not board.link.ping().loaded
        with pytest.raises(ProtocolError, match="NOT_LOADED"):
            board.host.step(np.zeros(4, int), True)
        assert board.load(a).loaded  # a clean load recovers
        board.check(a)
    finally:
        board.close()


def test_a_load_cut_off_or_for_another_shape_is_never_committed(models):
    a, _ = models
    board = Board(a)
    try:
        assert board.load(a).loaded
        ims = load_images(board.shape, a)
        wb = board.link.ping().word_bytes
        # a LOAD frame without BEGIN also stops the board computing until a COMMIT
        board.link.request(Cmd.LOAD, bytes([0, 0, 0, 0]) + bytes(wb))
        assert not board.link.ping().loaded
        assert board.load(a).loaded
        # cut off: BEGIN and one LOAD frame, no COMMIT
        board.link.request(Cmd.BEGIN)
        board.link.request(Cmd.LOAD, bytes([0, 0, 0, 0]) + bytes(wb * 4))
        assert not board.link.ping().loaded
        with pytest.raises(ProtocolError, match="NOT_LOADED"):
            board.host.step(np.zeros(4, int), True)
        # a load committed for another shape id
        with pytest.raises(ProtocolError, match="the device did not verify the load: the "
                           "device was built for another shape"):
            board.link.load(ims, wb, board.id ^ 1, load_crc(ims, wb))
        # a wrong CRC (the host's image differs from what arrived)
        with pytest.raises(ProtocolError, match="the device's CRC-32 is 0x[0-9a-f]{8}, the "
                           "host's 0x00000000"):
            board.link.load(ims, wb, board.id, 0)
        # a word beyond a memory (far beyond, and the first one past its end), and a frame that
        # is not whole words
        with pytest.raises(ProtocolError, match="LOAD frame .*: ADDRESS"):
            board.link.request(Cmd.LOAD, bytes([0]) + (10**6).to_bytes(3, "little") + bytes(wb))
        for im in board.core.plan.load_images():
            with pytest.raises(ProtocolError, match="LOAD frame .*: ADDRESS"):
                board.link.request(Cmd.LOAD, bytes([im.index]) + im.depth.to_bytes(3, "little")
                                   + bytes(wb))
        with pytest.raises(ProtocolError, match="LOAD frame .*: LENGTH"):
            board.link.request(Cmd.LOAD, bytes(4 + wb + 1))
        assert not board.link.ping().loaded
        assert board.load(a).loaded
        board.check(a)
    finally:
        board.close()


# -- estimate, CLI ------------------------------------------------------------------------------
def test_estimate_puts_loadable_weights_in_spram():
    m = make_model("gru", "ternary", inputs=16, hidden=256, outputs=10)
    rom = estimate(m, 16, "ice40-up5k")
    assert rom.bram_blocks > 30 and rom.spram_blocks == 0
    cap = capacity_model(m, shape_of(m, 16)["bias_bits"])
    e = estimate(cap, 16, "ice40-up5k", weights="spram")
    placed = {x.name: (x.placement, x.blocks) for x in e.memories}
    assert placed["weights0"] == ("spram", 2)  # 32 x 13216 on 16 x 16384 blocks
    assert e.spram_blocks == 2 and e.bram_blocks <= 30
    assert estimate(cap, 16, "ecp5-25k", weights="spram").spram_blocks == 0  # no SPRAM there


def test_cli_run_on_a_simulated_loadable_board(tmp_path, capsys, models):
    a, b = models
    save_model(b, tmp_path / "b.hwgm")
    write_shape(tmp_path / "build", shape_of(a, 3))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-2, 2, (1, 3, 4)))
    rc = main(["run", str(tmp_path / "b.hwgm"), "--port", "sim", "--build",
               str(tmp_path / "build"), "--inputs", str(tmp_path / "x.npy")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "1 sequences x 3 timesteps: hardware logits equal the golden model's" in out.out
    wider = make_model("gru", "ternary", inputs=4, hidden=8, outputs=3, argmax=True)
    save_model(wider, tmp_path / "w.hwgm")
    rc = main(["run", str(tmp_path / "w.hwgm"), "--port", "sim", "--build",
               str(tmp_path / "build"), "--inputs", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert rc == 1 and "hwgen: error: the model does not fit this bitstream's shape: hidden: " \
        "bitstream 6, model 8" in err
    rc = main(["load", str(tmp_path / "b.hwgm"), "--port", "sim", "--build",
               str(tmp_path / "build")])
    assert rc == 1 and "a simulated board lives only as long as one command" in \
        capsys.readouterr().err


def test_shape_file_errors(tmp_path, models):
    a, _ = models
    with pytest.raises(HwgenError, match="shape.json: missing; pass the folder of a loadable "
                       "build"):
        read_shape(tmp_path)
    path = write_shape(tmp_path, shape_of(a, 3))
    assert read_shape(tmp_path) == shape_of(a, 3)
    doc = json.loads(path.read_text())
    doc["shape"]["hidden"] = 7
    path.write_text(json.dumps(doc))
    with pytest.raises(HwgenError, match="its shape_id does not match its shape"):
        read_shape(tmp_path)
    path.write_text("{")
    with pytest.raises(HwgenError, match="shape.json: not valid JSON"):
        read_shape(tmp_path)
    path.write_text(json.dumps({**doc, "schema": "other"}))
    with pytest.raises(HwgenError, match="not a hwgen shape file"):
        read_shape(tmp_path)
    path.write_text(json.dumps({**doc, "version": 2}))
    with pytest.raises(HwgenError, match="shape file version 2; this hwgen reads version 1"):
        read_shape(tmp_path)


def test_cli_estimate_and_build_choose_spram_for_a_big_model(tmp_path, capsys):
    # 8 lanes: at 16 no loadable UP5K build fits the logic (the measured excess of loadable
    # builds, boardfit.ICE40_LOADABLE_EXCESS; the 16-lane GRU-256 build needed 104%)
    m = make_model("gru", "ternary", inputs=16, hidden=256, outputs=10)
    save_model(m, tmp_path / "big.hwgm")
    rc = main(["estimate", str(tmp_path / "big.hwgm"), "--board", "icebreaker", "--lanes", "8"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "weights0             16 x 26432    422912   422912  2 x SB_SPRAM256KA (16x16384, " \
           "loaded at run time)" in out
    assert "SPRAM       2 / 4 (50%) SB_SPRAM256KA" in out and "fit         yes" in out
    rc = main(["estimate", str(tmp_path / "big.hwgm"), "--board", "icebreaker", "--lanes", "8",
               "--weights", "rom"])
    out = capsys.readouterr().out
    assert "fit         NO: this model does not fit icebreaker" in out
    assert "--weights spram fits 8 lanes (weights loaded at run time with 'hwgen load')" in out
    rc = main(["build", str(tmp_path / "big.hwgm"), "--board", "icebreaker", "--lanes", "8",
               "--weights", "rom", "-o", str(tmp_path / "b")])
    assert rc == 1 and "--weights spram fits 8 lanes" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
