"""PyTorch modules in a notebook to a hwgen model without a file: `from_torch` (``api.from_torch``).

A trained ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` (with an ``nn.Linear`` head given as ``head=``), a
module that holds them (its ``state_dict()`` is read), or a state dict (tensors or NumPy arrays)
becomes a `hwgen.spec.Model` by post-training quantization: the same conversion, checks and
messages as ``hwgen import`` (`hwgen.train.importer.params_from_state_dict`, then
`quantize_imported`). PyTorch itself is needed only to read tensors: a state dict of NumPy arrays
converts without it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..spec import CellKind, HwgenError, Model, check_int, fit_row_scales

__all__ = ["from_torch", "quantize_imported", "state_dict_arrays"]

#: PyTorch recurrent module class names and the cell each one is.
_CELLS = {"RNN": CellKind.RNN, "GRU": CellKind.GRU, "LSTM": CellKind.LSTM}


def _is_module(obj) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "modules", None))


def _array(v, key: str):
    """A float parameter as float64 NumPy, None for a non-float entry (e.g. a BatchNorm count)."""
    if hasattr(v, "detach"):  # a torch tensor
        if not v.is_floating_point():
            return None
        return v.detach().cpu().double().numpy()
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise HwgenError(f"state dict entry {key!r} is not numeric ({a.dtype})")
    return a.astype(np.float64) if a.dtype.kind == "f" else None


def state_dict_arrays(sd, prefix: str = "") -> dict[str, np.ndarray]:
    """A state dict (tensors or arrays) as float64 arrays, keys prefixed with ``prefix``."""
    if not isinstance(sd, dict) or not sd:
        raise HwgenError(f"expected a module or a state dict (a dict of tensors or arrays), not "
                         f"{type(sd).__name__}")
    out = {}
    for k, v in sd.items():
        a = _array(v, str(k))
        if a is not None:
            out[prefix + str(k)] = a
    return out


def _recurrent_modules(module) -> list:
    return [m for m in module.modules() if type(m).__name__ in _CELLS]


def _check_recurrent(m) -> CellKind:
    """The cell of a PyTorch recurrent module, refusing what the hardware does not compute."""
    name = type(m).__name__
    if getattr(m, "bidirectional", False):
        raise HwgenError(f"a bidirectional {name} is not supported (the accelerator runs forward "
                         "in time only)")
    if getattr(m, "proj_size", 0):
        raise HwgenError("LSTM projections (proj_size) are not supported")
    if name == "RNN" and getattr(m, "nonlinearity", "tanh") != "tanh":
        raise HwgenError(f"nn.RNN with nonlinearity={m.nonlinearity!r} is not supported; the "
                         "accelerator's vanilla RNN uses tanh")
    return _CELLS[name]


def _resolve(obj, head, cell) -> tuple[dict[str, np.ndarray], CellKind, str | None, str | None]:
    """(state dict arrays, cell, rnn key, head key) of what the user passed."""
    keys = (None, None)
    if _is_module(obj):
        found = _recurrent_modules(obj)
        if not found:
            raise HwgenError(f"{type(obj).__name__} holds no nn.RNN / nn.GRU / nn.LSTM")
        if len(found) > 1:
            raise HwgenError(f"{type(obj).__name__} holds {len(found)} recurrent modules; pass "
                             "the state dict and rnn_key to pick one")
        kind = _check_recurrent(found[0])
        if cell is not None and CellKind(cell) is not kind:
            raise HwgenError(f"cell={cell!r}, but the module is an nn.{type(found[0]).__name__}")
        cell = kind
        if found[0] is obj:  # a bare recurrent module: its keys have no prefix
            if head is None:
                raise HwgenError(f"an nn.{type(obj).__name__} alone has no output layer: pass "
                                 "head=nn.Linear(hidden, outputs) (or a module holding both)")
            sd = state_dict_arrays(obj.state_dict(), "rnn.")
            keys = ("rnn", None)
        else:
            sd = state_dict_arrays(obj.state_dict())
    else:
        sd = state_dict_arrays(obj)
    if head is not None:
        hsd = head.state_dict() if _is_module(head) else head
        if _is_module(head) and type(head).__name__ != "Linear":
            raise HwgenError(f"head must be an nn.Linear (or its state dict), not "
                             f"{type(head).__name__}")
        sd.update(state_dict_arrays(hsd, "head."))
        keys = (keys[0], "head")
    if cell is None:
        raise HwgenError("give cell='rnn', 'gru' or 'lstm' for a state dict (a module says it)")
    try:
        return sd, CellKind(cell), keys[0], keys[1]
    except ValueError:
        raise HwgenError(f"cell must be rnn, gru or lstm, not {cell!r}") from None


def quantize_imported(params, quant: str = "ternary", *, bits: int = 8, sparsity=None,
                      sparse_head: bool = False, input_quant: str | None = None,
                      head_quant: str | None = None, meta: dict | None = None,
                      row_scales: int | None = None, delta=None) -> Model:
    """Imported float parameters (`hwgen.freeze.FloatParams`) to a model by post-training
    quantization (the deterministic rule; ``sparsity`` prunes by magnitude first): what ``hwgen
    import`` does without fine-tuning, and its messages. ``row_scales`` (bits, issue 26): then
    every matrix gets a scale per row fitted to its float weights (`spec.fit_row_scales`).
    ``delta`` (issue 23: ``"THX,THH"`` or `hwgen.delta.DeltaThresholds`): the model is a delta
    network with these thresholds (checked against its formats before anything is quantized)."""
    from ..freeze import freeze
    from ..quant import QuantConfig
    from ..spec import Formats, Sparsity

    if quant == "float":
        raise HwgenError("import quantizes weights: pick binary, ternary, pow2, exp[N] or int[N]")
    q = QuantConfig.parse(quant)
    nm = None if sparsity is None else (sparsity if isinstance(sparsity, Sparsity)
                                        else Sparsity.parse(sparsity))
    if sparse_head and nm is None:
        raise HwgenError("--sparse-head needs --sparsity N:M")
    formats = Formats.standard(bits, lstm=params.cell is CellKind.LSTM)
    thresholds = _delta_thresholds(delta, formats, len(params.layers))
    if row_scales is not None:
        row_scales = check_int("Row-scale bits", row_scales, minimum=1, maximum=16)
    model = freeze(params, replace(q, stochastic=False), formats,
                   meta={**(meta or {}), **params.meta}, sparsity=nm, sparse_head=sparse_head,
                   input_quant=QuantConfig.parse_optional(input_quant),
                   head_quant=QuantConfig.parse_optional(head_quant))
    if row_scales is None:
        return replace(model, delta=thresholds)
    floats = {f"layer{i}.{k}": w for i, ly in enumerate(params.layers)
              for k, w in (("wx", ly.w_ih), ("wh", ly.w_hh))}
    floats["head.w"] = params.head_w
    model = model.map_matrices(lambda name, m: fit_row_scales(m, floats[name], row_scales))
    model.meta["row_scales"] = row_scales
    return replace(model, delta=thresholds)


def _delta_thresholds(delta, formats, layers: int):
    """``delta`` (None, ``"THX,THH"`` or `hwgen.delta.DeltaThresholds`) checked against a model
    of ``layers`` layers with these ``formats``; None for a dense network."""
    from ..delta import DeltaThresholds

    if delta is None:
        return None
    th = DeltaThresholds.parse(delta, layers) if isinstance(delta, str) else delta
    if not isinstance(th, DeltaThresholds):
        raise HwgenError(f"delta thresholds must be 'THX,THH' or DeltaThresholds, not {delta!r}")
    th.check_formats(formats, layers)
    return th


def from_torch(module_or_state_dict, *, cell: str | None = None, quant: str = "ternary",
               head=None, bits: int = 8, sparsity=None, sparse_head: bool = False,
               input_quant: str | None = None, head_quant: str | None = None,
               rnn_key: str | None = None, head_key: str | None = None,
               embed_key: str | None = None, row_scales: int | None = None,
               delta=None) -> Model:
    """A trained PyTorch recurrent model as a hwgen `Model` (post-training quantization).

    ``module_or_state_dict``: an ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` (then ``head``, an
    ``nn.Linear`` of ``hidden`` inputs, is the output layer), a module holding one recurrent
    module and a head (and, for token models, an ``nn.Embedding``), or such a module's state dict
    (tensors or NumPy arrays; then ``cell`` is required). A module's class gives the cell
    (``cell``, when given too, must agree). Bidirectional layers, LSTM projections and ReLU RNNs
    are refused. ``rnn_key`` / ``head_key`` / ``embed_key``: module prefixes when the state dict
    is ambiguous (as ``hwgen import --rnn-key`` ...). ``quant``, ``bits``, ``sparsity``,
    ``sparse_head``, ``input_quant``, ``head_quant``, ``row_scales``, ``delta``: as ``hwgen
    import``.
    Raises `HwgenError` with ``hwgen import``'s messages."""
    from .importer import params_from_state_dict

    sd, ck, rk, hk = _resolve(module_or_state_dict, head, cell)
    params = params_from_state_dict(sd, ck, rnn_key=rnn_key if rnn_key is not None else rk,
                                     head_key=head_key or hk, embed_key=embed_key,
                                     where="from_torch")
    obj = module_or_state_dict
    source = f"torch nn.{type(obj).__name__}" if _is_module(obj) else "a state dict"
    return quantize_imported(params, quant, bits=bits, sparsity=sparsity,
                             sparse_head=sparse_head, input_quant=input_quant,
                             head_quant=head_quant, meta={"imported_from": source},
                             row_scales=row_scales, delta=delta)
