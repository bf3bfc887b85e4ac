"""The golden model: integer-only, bit-exact reference of the hardware (docs/numerics.md).

Every value is an integer code; every rounding, saturation and table lookup is the one the gateware
performs. Dot products are exact (their bounds are checked to fit the float type used to evaluate
them with BLAS, where every partial sum of integers is exact). Vectorized over a batch of sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .numerics import align, derive_widths, matrix_term, round_shift, saturate, table_index
from .spec import CellKind, HwgenError, Model, QuantMatrix, TokenInput

__all__ = ["GoldenResult", "GoldenModel", "quantize_inputs", "check_inputs"]


@dataclass
class GoldenResult:
    """Outputs of a run over a batch: ``logits`` (B, T, O) int64 codes with ``output_frac`` fraction
    bits; ``classes`` (B, T) the argmax (lowest index on ties); ``hidden`` a list per layer of (B,
    T, H)
    state codes when asked for; ``state`` the final (h, c) per layer (c is None except for LSTM)."""

    logits: np.ndarray
    classes: np.ndarray
    hidden: list[np.ndarray] | None
    state: list[tuple[np.ndarray, np.ndarray | None]]
    saturated: int = 0  # input values saturated when real features were quantized (hwgen.api)

    def __repr__(self) -> str:  # issue 25: shapes, not every logit
        B, T, O = self.logits.shape  # noqa: E741
        last = self.classes[:, -1].tolist() if T else []
        return (f"GoldenResult(logits int64 ({B}, {T}, {O}), classes at the last timestep "
                f"{last[:8]}{' ...' if len(last) > 8 else ''}, saturated {self.saturated})")


class _ExactMatmul:
    """v (B, C) int codes @ levels.T -> (B, R) int64, exactly, through float BLAS."""

    def __init__(self, m: QuantMatrix, bound: int):
        dtype = np.float32 if bound < (1 << 24) else np.float64
        self.wt = np.ascontiguousarray(m.levels.T.astype(dtype))
        self.dtype = dtype

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return np.rint(v.astype(self.dtype) @ self.wt).astype(np.int64)


def quantize_inputs(model: Model, x) -> tuple[np.ndarray, int]:
    """Real feature vectors (B, T, I) -> input-format codes, and the count of saturated values."""
    if isinstance(model.input, TokenInput):
        raise HwgenError("this model takes token ids, not real-valued feature vectors")
    return model.formats.input.quantize(x)


def check_inputs(model: Model, inputs) -> np.ndarray:
    """Validate codes (B, T, I) or token ids (B, T) for ``model``; returns them as int64."""
    a = np.asarray(inputs)
    if isinstance(model.input, TokenInput):
        if a.ndim != 2:
            raise HwgenError(f"token inputs must have shape (batch, time), not {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise HwgenError(f"token ids must be integers, not {a.dtype}")
        a = a.astype(np.int64)
        if a.size and (a.min() < 0 or a.max() >= model.input.vocab):
            raise HwgenError(
                f"token ids must lie in [0, {model.input.vocab - 1}]; found {a.min()}..{a.max()}"
            )
        return a
    if a.ndim != 3 or a.shape[2] != model.input.features:
        raise HwgenError(
            f"vector inputs must have shape (batch, time, {model.input.features}), not {a.shape}"
        )
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise HwgenError(
            f"input codes must be integers, not {a.dtype}: quantize real-valued features first "
            "(hwgen.inputs.features_to_codes, or hwgen.api.golden(model, features=...))"
        )
    a = a.astype(np.int64)
    fmt = model.formats.input
    if a.size and (a.min() < fmt.min_code or a.max() > fmt.max_code):
        raise HwgenError(
            f"input codes must lie in [{fmt.min_code}, {fmt.max_code}] ({fmt.describe()}); "
            f"found {a.min()}..{a.max()}"
        )
    return a


class GoldenModel:
    """Bit-exact integer model of the hardware for one `Model`. Build once, run many batches."""

    def __init__(self, model: Model):
        self.model = model
        self.widths = derive_widths(model)
        f = model.formats
        self._mx, self._mh = [], []
        for i, layer in enumerate(model.layers):
            w = self.widths.layers[i]
            self._mx.append(_ExactMatmul(layer.wx, w.acc_x_bound))
            self._mh.append(_ExactMatmul(layer.wh, w.acc_h_bound))
        self._mo = _ExactMatmul(model.head.w, self.widths.head_acc_bound)
        self._token_terms = None
        if isinstance(model.input, TokenInput):
            # Token models: the input matrix's scaled term for every token, computed once.
            acc = self._mx[0](model.embedding)
            self._token_terms = matrix_term(acc, model.layers[0].wx, f.input.frac, f.gate_frac)

    # -- one timestep of one layer -------------------------------------------------------------
    def _sigmoid(self, z):
        return self.model.sigmoid_table[table_index(z, self.model.formats.sigmoid_in_width)]

    def _tanh(self, z):
        return self.model.tanh_table[table_index(z, self.model.formats.tanh_in_width)]

    def _layer_step(self, i: int, term_x: np.ndarray, h: np.ndarray, c: np.ndarray | None):
        m, f = self.model, self.model.formats
        term_h = matrix_term(self._mh[i](h), m.layers[i].wh, f.state.frac, f.gate_frac)
        return self.cell_step(i, term_x, term_h, h, c)

    def cell_step(self, i: int, term_x: np.ndarray, term_h: np.ndarray, h: np.ndarray,
                  c: np.ndarray | None):
        """Layer ``i``'s cell from its scaled matrix terms (``gate_frac`` bits, bias not added)
        and its previous state (h, c): the new (h, c). `hwgen.delta` feeds it terms read from
        its delta memories."""
        m, f = self.model, self.model.formats
        layer, H = m.layers[i], m.hidden
        fs = f.sigmoid_frac
        if m.cell is CellKind.RNN:
            return self._tanh(term_x + term_h + layer.bias), None
        if m.cell is CellKind.GRU:
            rz = term_x[:, : 2 * H] + term_h[:, : 2 * H] + layer.bias[: 2 * H]
            r, u = self._sigmoid(rz[:, :H]), self._sigmoid(rz[:, H:])
            hn = term_h[:, 2 * H :] + layer.bias_hn
            n = self._tanh(term_x[:, 2 * H :] + layer.bias[2 * H :] + round_shift(r * hn, fs))
            return n + round_shift(u * (h - n), fs), None
        z = term_x + term_h + layer.bias
        ig, fg = self._sigmoid(z[:, :H]), self._sigmoid(z[:, H : 2 * H])
        g, og = self._tanh(z[:, 2 * H : 3 * H]), self._sigmoid(z[:, 3 * H :])
        fc = f.cell.frac
        c = saturate(round_shift(fg * c, fs) + round_shift(ig * g, fs + f.state.frac - fc), f.cell)
        tc = self._tanh(align(c, f.gate_frac - fc))
        return round_shift(og * tc, fs), c

    # -- whole sequences ------------------------------------------------------------------------
    def initial_state(self, batch: int):
        H, lstm = self.model.hidden, self.model.cell is CellKind.LSTM
        zeros = lambda: np.zeros((batch, H), np.int64)  # noqa: E731
        return [(zeros(), zeros() if lstm else None) for _ in self.model.layers]

    def run(self, inputs, *, state=None, return_hidden: bool = False) -> GoldenResult:
        """Run sequences from ``state`` (default: all zero, as after a start-of-sequence).

        ``inputs``: input-format codes (B, T, I) for vector models or token ids (B, T). A model
        with delta thresholds (``model.delta``) runs as the delta network of `hwgen.delta`
        (a `hwgen.delta.DeltaResult`, which also counts the columns processed).
        """
        m, f = self.model, self.model.formats
        if getattr(m, "delta", None) is not None:  # delta network (issue 23): hwgen.delta
            from .delta import DeltaGolden

            return DeltaGolden(m, golden=self).run(inputs, state=state,
                                                   return_hidden=return_hidden)
        x = check_inputs(m, inputs)
        B, T = x.shape[0], x.shape[1]
        state = [tuple(s) for s in (state or self.initial_state(B))]
        logits = np.zeros((B, T, m.outputs), np.int64)
        hidden = [np.zeros((B, T, m.hidden), np.int64) for _ in m.layers] if return_hidden else None
        for t in range(T):
            if self._token_terms is not None:
                term_x = self._token_terms[x[:, t]]
            else:
                acc = self._mx[0](x[:, t])
                term_x = matrix_term(acc, m.layers[0].wx, f.input.frac, f.gate_frac)
            for i in range(m.num_layers):
                if i > 0:
                    acc = self._mx[i](state[i - 1][0])
                    term_x = matrix_term(acc, m.layers[i].wx, f.state.frac, f.gate_frac)
                h, c = self._layer_step(i, term_x, *state[i])
                state[i] = (h, c)
                if hidden is not None:
                    hidden[i][:, t] = h
            top = state[-1][0]
            acc = self._mo(top)
            logits[:, t] = (
                matrix_term(acc, m.head.w, f.state.frac, f.output_frac) + m.head.bias
            )
        classes = np.argmax(logits, axis=-1) if m.outputs else np.zeros((B, T), np.int64)
        return GoldenResult(logits, classes, hidden, state)
