"""Shared fixtures: small frozen models of every cell type."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.freeze import freeze, random_float_params
from hwgen.quant import QuantConfig
from hwgen.spec import CellKind, Formats


def make_model(
    cell="gru",
    quant="ternary",
    *,
    inputs=5,
    hidden=8,
    outputs=4,
    layers=1,
    tokens=None,
    bits=8,
    seed=0,
    argmax=False,
):
    cell = CellKind(cell)
    params = random_float_params(
        cell, inputs, hidden, outputs, layers=layers, tokens=tokens, seed=seed
    )
    return freeze(
        params,
        QuantConfig.parse(quant),
        Formats.standard(bits, lstm=cell is CellKind.LSTM),
        argmax=argmax,
        rng=seed,
    )


def random_inputs(model, batch=3, time=6, seed=0):
    rng = np.random.default_rng(seed)
    if model.embedding is not None:
        return rng.integers(0, model.input.vocab, (batch, time))
    fmt = model.formats.input
    return rng.integers(fmt.min_code, fmt.max_code + 1, (batch, time, model.input.features))


@pytest.fixture
def gru_model():
    return make_model("gru")
