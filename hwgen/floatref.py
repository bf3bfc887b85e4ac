"""Float forward pass of a frozen model: dequantized weights, exact float activations, float state.

It measures what the fixed-point choices of the golden model cost (docs/numerics.md): the weights
are the same quantized values, only the activations, state and rounding are real-valued.
"""

from __future__ import annotations

import numpy as np

from .spec import CellKind, Model, TokenInput

__all__ = ["float_forward"]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def float_forward(model: Model, inputs) -> np.ndarray:
    """Real logits (B, T, O). ``inputs``: real features (B, T, I) (not quantized) or token ids (B,
    T).

    Biases are the model's fixed-point biases read as real numbers; the embedding (token models) is
    the stored, quantized one.
    """
    m, f = model, model.formats
    H = m.hidden
    x = np.asarray(inputs)
    if isinstance(m.input, TokenInput):
        x = f.input.to_real(m.embedding)[x.astype(np.int64)]
    x = x.astype(np.float64)
    B, T = x.shape[:2]
    gl = 2.0**-f.gate_frac
    layers = [
        (
            ly.wx.values.T,
            ly.wh.values.T,
            ly.bias * gl,
            None if ly.bias_hn is None else ly.bias_hn * gl,
        )
        for ly in m.layers
    ]
    hs = [np.zeros((B, H)) for _ in layers]
    cs = [np.zeros((B, H)) for _ in layers]
    wo, bo = m.head.w.values.T, m.head.bias * 2.0**-f.output_frac
    out = np.zeros((B, T, m.outputs))
    for t in range(T):
        v = x[:, t]
        for i, (wx, wh, b, bhn) in enumerate(layers):
            h = hs[i]
            a, r_ = v @ wx, h @ wh
            if m.cell is CellKind.RNN:
                h = np.tanh(a + r_ + b)
            elif m.cell is CellKind.GRU:
                r = _sigmoid(a[:, :H] + r_[:, :H] + b[:H])
                z = _sigmoid(a[:, H : 2 * H] + r_[:, H : 2 * H] + b[H : 2 * H])
                n = np.tanh(a[:, 2 * H :] + b[2 * H :] + r * (r_[:, 2 * H :] + bhn))
                h = (1.0 - z) * n + z * h
            else:
                zz = a + r_ + b
                ig, fg = _sigmoid(zz[:, :H]), _sigmoid(zz[:, H : 2 * H])
                g, og = np.tanh(zz[:, 2 * H : 3 * H]), _sigmoid(zz[:, 3 * H :])
                cs[i] = fg * cs[i] + ig * g
                h = og * np.tanh(cs[i])
            hs[i] = h
            v = h
        out[:, t] = hs[-1] @ wo + bo
    return out
