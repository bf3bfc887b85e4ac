"""Import PyTorch nn.RNN / nn.GRU / nn.LSTM state dicts (+ nn.Linear head, nn.Embedding).

hwgen's float layout *is* PyTorch's (gate order r, z, n / i, f, g, o; the GRU's b_hn inside the
reset product; h' = (1 - z) * n + z * h), so import is a renaming: find the recurrent layers'
``weight_ih_l{k}`` / ``weight_hh_l{k}`` / ``bias_ih_l{k}`` / ``bias_hh_l{k}`` under one prefix,
the head's ``weight`` / ``bias`` and, for token models, an embedding ``weight``, and hand them to
`hwgen.freeze.freeze` (post-training quantization) or to `hwgen.train.trainer.train` as the
starting point of quantization-aware fine-tuning.

State dicts are loaded with ``torch.load(weights_only=True)``: no pickled code runs. PyTorch is
imported only to read files: `params_from_state_dict` takes NumPy arrays (`hwgen.train.from_torch`
converts in-memory modules with it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..freeze import FloatLayer, FloatParams
from ..spec import CellKind, HwgenError

__all__ = ["load_state_dict", "params_from_state_dict", "warm_start_params"]


def load_state_dict(path) -> dict[str, np.ndarray]:
    """A state dict (or a dict holding one under ``state_dict`` / ``model``) as float64 arrays."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise HwgenError(f"{p}: no such file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error here
        raise HwgenError(f"{p}: not a readable PyTorch state dict ({e})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise HwgenError(
            f"{p}: expected a state dict (a dict of tensors), not {type(obj).__name__}"
        )
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            if not v.is_floating_point():
                continue
            out[str(k)] = v.detach().to(torch.float64).numpy()
    return out


def _find_prefix(sd: dict, where: str) -> str:
    cands = sorted(k[: -len("weight_ih_l0")] for k in sd if k.endswith("weight_ih_l0"))
    if not cands:
        raise HwgenError(f"{where}: no recurrent layer (no key ending in weight_ih_l0)")
    if len(cands) > 1:
        raise HwgenError(f"{where}: several recurrent modules ({', '.join(cands)}); "
                         "pass --rnn-key to pick one")
    return cands[0]


def _get(sd: dict, key: str, where: str) -> np.ndarray:
    if key not in sd:
        raise HwgenError(f"{where}: missing {key!r}")
    return sd[key]


def params_from_state_dict(
    sd: dict[str, np.ndarray],
    cell: CellKind,
    *,
    rnn_key: str | None = None,
    head_key: str | None = None,
    embed_key: str | None = None,
    where: str = "state dict",
) -> FloatParams:
    """`FloatParams` from a state dict. ``rnn_key`` / ``head_key`` / ``embed_key`` are module
    prefixes (``rnn``, ``fc``, ``embedding``); without them the recurrent module is the one owning
    ``weight_ih_l0``, the head the one 2-D ``*.weight`` with H columns outside it, and the
    embedding (if any) a remaining 2-D ``*.weight`` whose columns match the first layer's inputs."""
    pre = _find_prefix(sd, where) if rnn_key is None else (rnn_key + "." if rnn_key else "")
    if any(k.startswith(pre) and k.endswith("_reverse") for k in sd):
        raise HwgenError(f"{where}: bidirectional recurrent layers are not supported")
    if any(k.startswith(pre + "weight_hr_l") for k in sd):
        raise HwgenError(f"{where}: LSTM projections (proj_size) are not supported")
    G = cell.num_gates
    layers = []
    k = 0
    while f"{pre}weight_ih_l{k}" in sd:
        w_ih = _get(sd, f"{pre}weight_ih_l{k}", where)
        w_hh = _get(sd, f"{pre}weight_hh_l{k}", where)
        if w_hh.ndim != 2 or w_hh.shape[0] != G * w_hh.shape[1]:
            raise HwgenError(
                f"{where}: {pre}weight_hh_l{k} has shape {w_hh.shape}; a {cell.value} with H "
                f"hidden units has ({G}*H, H): is --cell right?"
            )
        zeros = np.zeros(w_hh.shape[0])
        b_ih = sd.get(f"{pre}bias_ih_l{k}", zeros)
        b_hh = sd.get(f"{pre}bias_hh_l{k}", zeros)
        layers.append(FloatLayer(w_ih, w_hh, b_ih, b_hh))
        k += 1
    if not layers:
        raise HwgenError(f"{where}: no key {pre}weight_ih_l0")
    H = layers[0].w_hh.shape[1]
    rnn_keys = {k for k in sd if k.startswith(pre)} if pre else {
        k for k in sd if k.split(".")[-1].startswith(("weight_", "bias_"))
    }
    others = {k[: -len(".weight")]: v for k, v in sd.items()
              if k not in rnn_keys and k.endswith(".weight") and v.ndim == 2}
    if head_key is None:
        heads = [m for m, v in others.items() if v.shape[1] == H and m != embed_key]
        if len(heads) != 1:
            found = ", ".join(sorted(heads)) or "none"
            raise HwgenError(f"{where}: cannot tell the head (2-D weights with {H} columns: "
                             f"{found}); pass --head-key")
        head_key = heads[0]
    head_w = _get(sd, f"{head_key}.weight", where)
    head_b = sd.get(f"{head_key}.bias", np.zeros(head_w.shape[0]))
    in_w = layers[0].w_ih.shape[1]
    if embed_key is None:
        embs = [m for m, v in others.items() if m != head_key and v.shape[1] == in_w]
        if len(embs) > 1:
            raise HwgenError(f"{where}: several candidate embeddings ({', '.join(sorted(embs))}); "
                             "pass --embed-key")
        embed_key = embs[0] if embs else None
    emb = _get(sd, f"{embed_key}.weight", where) if embed_key else None
    params = FloatParams(
        cell, layers, head_w, head_b, embedding=emb, features=None if emb is not None else in_w,
        meta={"imported": {"rnn": pre.rstrip("."), "head": head_key, "embedding": embed_key}},
    )
    params.check()
    return params


def warm_start_params(path, cell: CellKind) -> FloatParams:
    """The float parameters a ``hwgen train --warm-start PATH`` run starts from: an ``hwgen
    train`` checkpoint (``MODEL.ckpt``: its best-valid parameters, the ones its model file froze)
    or a PyTorch state dict in hwgen's layout (``weight_ih_l0`` ..., ``head.weight``,
    ``embedding.weight``), e.g. a float run's. Shapes are checked by `QRNN.load_float_params`."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise HwgenError(f"--warm-start {p}: no such file; give an hwgen train checkpoint "
                         "(MODEL.ckpt) or a PyTorch state dict")
    if p.suffix == ".hwgm":
        raise HwgenError(f"--warm-start {p}: a model file holds quantized weights; give the "
                         f"float checkpoint written next to it ({p.name}.ckpt)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error here
        raise HwgenError(f"--warm-start {p}: not a readable checkpoint or state dict "
                         f"({e})") from None
    if isinstance(obj, dict) and "config" in obj:  # an hwgen training checkpoint
        saved = obj["config"]
        if isinstance(saved, dict) and saved.get("cell") not in (None, cell.value):
            raise HwgenError(f"--warm-start {p}: a {saved.get('cell')} checkpoint; this run "
                             f"trains a {cell.value} (use the same --cell)")
        if isinstance(saved, dict) and saved.get("norm", "none") != "none":
            raise HwgenError(f"--warm-start {p}: a checkpoint trained with --norm "
                             f"{saved['norm']}; its weights mean nothing without the "
                             "normalization, which a warm start does not carry over")
        obj = obj.get("best_state") or obj.get("model")
    if not isinstance(obj, dict) or not obj:
        raise HwgenError(f"--warm-start {p}: holds no parameters; give an hwgen train "
                         "checkpoint (MODEL.ckpt) or a PyTorch state dict")
    sd = {str(k): v.detach().to(torch.float64).numpy() for k, v in obj.items()
          if isinstance(v, torch.Tensor) and v.is_floating_point() and v.ndim > 0}
    embed = "embedding" if "embedding.weight" in sd else None
    head = "head" if "head.weight" in sd else None
    return params_from_state_dict(sd, cell, rnn_key="" if "weight_ih_l0" in sd else None,
                                  head_key=head, embed_key=embed, where=f"--warm-start {p}")
