"""The delta network, exact in integers: the golden model of a delta core (issue 23).

Per layer l the model keeps, from the start of a sequence:

- ``x_hat`` (I_l codes) and ``h_hat`` (H codes): the last *processed* value of every input and
  recurrent column, starting at 0;
- ``M_x`` (G*H) and ``M_h`` (G*H): the delta memories, integer accumulations of the raw weight
  levels times column deltas, starting at 0.

At every timestep t, for every input column j (x_t = the input codes for layer 0, or layer l-1's
new hidden state h_t):

    d_j = x_j - x_hat_j   if |x_j - x_hat_j| >= theta_x[l]   else 0
    x_hat_j += d_j        (x_hat_j takes x_j exactly when the column is processed)

the same for the recurrent columns with h_{t-1} and theta_h[l]; then

    M_x += levels(W_x) d_x,   M_h += levels(W_h) d_h

and the cell reads ``term_x = scaled_term(M_x)``, ``term_h = scaled_term(M_h)`` exactly where the
dense golden model (`hwgen.golden`) reads the scaled dot products of x_t and h_{t-1}; biases are
added to the scaled terms as there; the cell's own state arithmetic (GRU ``n + u (h - n)``, the
LSTM cell) uses the true h_{t-1} and c_{t-1}. The head stays dense (logits from h_t every step).

**Why M holds the unscaled sums (and the biases stay outside).** The dense model computes
``scaled_term(acc) = align(acc * mantissa, shift)``: when ``shift`` < 0 that is a rounding shift,
not linear, so the scale cannot be applied per delta and summed; and the biases have
``gate_frac`` fraction bits while ``acc`` is in units of weight levels times input codes. M
therefore holds the raw integer accumulation and the scale, the rounding and the bias are applied
when the cell reads it: ``M = levels(W) x_hat`` at every timestep (the deltas telescope), so at
theta 0 or 1 (x_hat = x) the model is the dense model bit for bit. The GRU candidate's recurrent
part is ``M_h``'s third block, kept apart because r multiplies it (``r * (term_h + b_hn)``). (A
core may instead start M at the bias only where its scaled term is linear, shift >= 0.)
Per-row multipliers (`QuantMatrix.row_mult`, issue 26) belong to the scale: `matrix_term` applies
them to M when the cell reads it, so a delta model with row scales is exact the same way.

**Widths, no overflow.** Since M = levels(W) x_hat with every x_hat_j a code its column has held,
|M_x| <= ``acc_x_bound`` and |M_h| <= ``acc_h_bound`` of `hwgen.numerics.derive_widths`, after
every column update in any order (a partial update is W times a vector of valid codes too): M
needs exactly the dense accumulators' widths (``acc_x_width``, ``acc_h_width``), never wraps and
never saturates. A delta needs one bit more than its format (|d| <= max_code - min_code).

**Columns processed.** `DeltaStats` counts, per sequence, timestep and layer, the input and
recurrent columns with d_j != 0 (what a delta core reads and multiplies); a dense core processes
every column every timestep.

Layer l > 0: its input is layer l-1's h_t. With theta_x[l] == theta_h[l-1] (the ``--delta THX,THH``
default) its x_hat equals layer l-1's h_hat after layer l-1's next update, so a core may share
that encoder; the model keeps them apart so that any thresholds are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..golden import GoldenModel, GoldenResult, _ExactMatmul, check_inputs
from ..numerics import derive_widths, matrix_term, signed_width
from ..spec import HwgenError, Model, TokenInput
from .thresholds import DeltaThresholds, max_threshold, threshold_formats

__all__ = ["DeltaGolden", "DeltaResult", "DeltaStats", "DeltaWidths", "delta_widths",
           "with_thresholds", "run_delta", "refuse_dense_core"]


@dataclass(frozen=True)
class DeltaWidths:
    """Register widths of one layer's delta datapath (module docstring, "Widths")."""

    mx_width: int  # M_x entries: the dense acc_x width
    mh_width: int  # M_h entries: the dense acc_h width
    dx_width: int  # an input delta
    dh_width: int  # a recurrent delta


def delta_widths(model: Model) -> list[DeltaWidths]:
    """Per-layer widths of M and of the deltas; M's equal the dense accumulators'."""
    w = derive_widths(model)
    out = []
    for i, lw in enumerate(w.layers):
        fx, fh = threshold_formats(model, i)
        out.append(DeltaWidths(lw.acc_x_width, lw.acc_h_width,
                               signed_width(max_threshold(fx)), signed_width(max_threshold(fh))))
    return out


@dataclass
class DeltaStats:
    """Columns processed: ``x_cols`` / ``h_cols`` int64 (B, T, L), the input / recurrent columns
    with a non-zero delta per sequence, timestep and layer; ``x_width`` / ``h_width`` the columns
    of each kind per layer (what a dense core processes every timestep)."""

    x_cols: np.ndarray
    h_cols: np.ndarray
    x_width: tuple[int, ...]
    h_width: tuple[int, ...]

    def mask(self, lengths=None) -> np.ndarray:
        """(B, T) bool: the timesteps before each sequence's length (all without ``lengths``)."""
        B, T = self.x_cols.shape[:2]
        if lengths is None:
            return np.ones((B, T), bool)
        lengths = np.asarray(lengths)
        return np.arange(T)[None, :] < lengths[:, None]

    def processed(self, lengths=None) -> tuple[int, int]:
        """(columns processed, columns a dense core processes) over the timesteps before each
        sequence's length (all timesteps without ``lengths``), every layer together."""
        m = self.mask(lengths)
        done = int(self.x_cols[m].sum() + self.h_cols[m].sum())
        total = int(m.sum()) * (sum(self.x_width) + sum(self.h_width))
        return done, total

    def fraction(self, lengths=None) -> float:
        """Fraction of columns processed (1.0: dense)."""
        done, total = self.processed(lengths)
        return done / total if total else 0.0

    def fractions(self, lengths=None) -> dict[str, float]:
        """The fraction of input and of recurrent columns processed, and both together."""
        m = self.mask(lengths)
        n = int(m.sum())
        xs, hs = sum(self.x_width) * n, sum(self.h_width) * n
        return {"x": float(self.x_cols[m].sum()) / xs if xs else 0.0,
                "h": float(self.h_cols[m].sum()) / hs if hs else 0.0,
                "all": self.fraction(lengths)}


@dataclass
class DeltaResult(GoldenResult):
    """A `GoldenResult` with the columns processed (``columns``)."""

    columns: DeltaStats | None = field(default=None)
    #: per layer, at the end of the run: (x_hat, h_hat, M_x, M_h), int64 (B, I_l) / (B, H) /
    #: (B, G*H) / (B, G*H)
    memories: list | None = field(default=None)


def refuse_dense_core(model: Model) -> None:
    """Raise `HwgenError`: the dense core computes the dense network, whose outputs differ from
    this delta network's (the golden model's), and the delta core is not built yet."""
    raise HwgenError(
        f"this model is a delta network ({model.delta.describe()}); the accelerator's dense "
        "core computes the dense network, whose outputs differ, and a delta core is not built "
        "yet (docs/delta.md): generate, estimate and build take models without delta thresholds "
        "(train without --delta, or hwgen.delta.with_thresholds(model, None))"
    )


def with_thresholds(model: Model, thresholds: DeltaThresholds | None) -> Model:
    """``model`` with these delta thresholds (checked against it), or dense with None."""
    from dataclasses import replace

    if thresholds is not None:
        thresholds.check(model)
    return replace(model, delta=thresholds)


class DeltaGolden:
    """Bit-exact integer delta network for ``model`` with ``thresholds`` (default: the model's
    own ``model.delta``; theta 0 everywhere when it has none, i.e. the dense outputs with the
    column counts of a delta core). Build once, run many batches."""

    def __init__(self, model: Model, thresholds: DeltaThresholds | None = None, *,
                 golden: GoldenModel | None = None):
        th = thresholds if thresholds is not None else model.delta
        if th is None:
            th = DeltaThresholds.uniform(0, 0, model.num_layers)
        if not isinstance(th, DeltaThresholds):
            raise HwgenError(f"delta thresholds must be DeltaThresholds, not {th!r}")
        th.check(model)
        self.model, self.thresholds = model, th
        self.golden = golden if golden is not None else GoldenModel(model)
        w = self.golden.widths
        # a delta is at most twice a code: partial sums of levels x deltas at most twice the
        # dense bound, which picks the float type that keeps them exact
        self._dx = [_ExactMatmul(ly.wx, 2 * lw.acc_x_bound)
                    for ly, lw in zip(model.layers, w.layers, strict=True)]
        self._dh = [_ExactMatmul(ly.wh, 2 * lw.acc_h_bound)
                    for ly, lw in zip(model.layers, w.layers, strict=True)]

    @staticmethod
    def _encode(v: np.ndarray, v_hat: np.ndarray, theta: int) -> np.ndarray:
        """The deltas of ``v`` against ``v_hat`` (updated in place) under ``theta``."""
        d = v - v_hat
        d[np.abs(d) < theta] = 0
        v_hat += d
        return d

    def run(self, inputs, *, state=None, return_hidden: bool = False) -> DeltaResult:
        """Run sequences from the start-of-sequence state (x_hat = h_hat = 0, M = 0, h = c = 0).

        ``inputs``: input-format codes (B, T, I) or token ids (B, T), as `GoldenModel.run`.
        """
        if state is not None:
            raise HwgenError("a delta network runs from the start of a sequence; its delta "
                             "memories are not part of a (h, c) state")
        m, f, g = self.model, self.model.formats, self.golden
        x = check_inputs(m, inputs)
        B, T = x.shape[0], x.shape[1]
        L, H, GH = m.num_layers, m.hidden, m.cell.num_gates * m.hidden
        hc = g.initial_state(B)
        widths = tuple(m.layer_input_width(i) for i in range(L))
        x_hat = [np.zeros((B, widths[i]), np.int64) for i in range(L)]
        h_hat = [np.zeros((B, H), np.int64) for _ in range(L)]
        mx = [np.zeros((B, GH), np.int64) for _ in range(L)]
        mh = [np.zeros((B, GH), np.int64) for _ in range(L)]
        xc = np.zeros((B, T, L), np.int64)
        hcnt = np.zeros((B, T, L), np.int64)
        logits = np.zeros((B, T, m.outputs), np.int64)
        hidden = [np.zeros((B, T, H), np.int64) for _ in range(L)] if return_hidden else None
        th = self.thresholds
        for t in range(T):
            v = m.embedding[x[:, t]] if isinstance(m.input, TokenInput) else x[:, t]
            for i in range(L):
                layer, in_frac = m.layers[i], m.layer_input_format(i).frac
                dx = self._encode(v, x_hat[i], th.theta_x[i])
                dh = self._encode(hc[i][0], h_hat[i], th.theta_h[i])
                xc[:, t, i] = np.count_nonzero(dx, axis=1)
                hcnt[:, t, i] = np.count_nonzero(dh, axis=1)
                mx[i] += self._dx[i](dx)
                mh[i] += self._dh[i](dh)
                term_x = matrix_term(mx[i], layer.wx, in_frac, f.gate_frac)  # row_mult too
                term_h = matrix_term(mh[i], layer.wh, f.state.frac, f.gate_frac)
                hc[i] = g.cell_step(i, term_x, term_h, *hc[i])
                v = hc[i][0]
                if hidden is not None:
                    hidden[i][:, t] = v
            acc = g._mo(v)
            logits[:, t] = (matrix_term(acc, m.head.w, f.state.frac, f.output_frac)
                            + m.head.bias)
        classes = np.argmax(logits, axis=-1) if m.outputs else np.zeros((B, T), np.int64)
        stats = DeltaStats(xc, hcnt, widths, (H,) * L)
        memories = [(x_hat[i], h_hat[i], mx[i], mh[i]) for i in range(L)]
        return DeltaResult(logits, classes, hidden, hc, columns=stats, memories=memories)


def run_delta(model: Model, codes, thresholds: DeltaThresholds | None = None) -> DeltaResult:
    """One call: `DeltaGolden` (``model``, ``thresholds``) run on ``codes``."""
    return DeltaGolden(model, thresholds).run(codes)
