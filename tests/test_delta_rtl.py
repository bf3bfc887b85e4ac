"""The first delta accelerator as Verilog (Amaranth's export) in Icarus Verilog: every logit equals
the golden delta model's, with random input gaps, output stalls and a reset between sequences."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import make_model
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.delta.rtl import icarus_run
from hwgen.golden import GoldenModel

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")


@pytest.mark.parametrize("cell,quant,lanes,layers,th", [("gru", "ternary", 4, 1, (6, 4)),
                                                        ("lstm", "pow2", 3, 2, (2, 7)),
                                                        ("rnn", "int8", 2, 1, (0, 0))])
def test_delta_accelerator_verilog_in_icarus(tmp_path, cell, quant, lanes, layers, th):
    model = with_thresholds(make_model(cell, quant, inputs=5, hidden=6, outputs=3,
                                       layers=layers, seed=2),
                            DeltaThresholds.uniform(th[0], th[1], layers))
    rng = np.random.default_rng(lanes)
    fmt = model.formats.input
    seqs = [np.clip(np.cumsum(rng.integers(-15, 16, (n, 5)), axis=0), fmt.min_code,
                    fmt.max_code) for n in (4, 3, 5)]
    got = icarus_run(model, lanes, seqs, tmp_path, seed=lanes, resets=(1,))
    want = np.concatenate([GoldenModel(model).run(s[None]).logits[0] for s in seqs])
    np.testing.assert_array_equal(got, want)
