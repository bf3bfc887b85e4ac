"""The hwgen model file (``.hwgm``): one versioned, documented, pickle-free container.

Layout (docs/model-file.md): a zip archive of NumPy ``.npy`` arrays, read with
``numpy.load(allow_pickle=False)``. The array ``header`` holds UTF-8 JSON (as uint8) with the
format name, version, cell, sizes, formats, encodings and scales; every other array is named in the
header's schema below. Writing is byte-deterministic (fixed zip timestamps, sorted names).

Arrays (G gates, H hidden units, I_l inputs of layer l, O outputs, V tokens, D embedding dims):

    layer{l}.wx      uint16 (G*H, I_l)  weight codes, input matrix
    layer{l}.wh      uint16 (G*H, H)    weight codes, recurrent matrix
    layer{l}.bias    int64  (G*H,)      gate biases, gate_frac fraction bits
    layer{l}.bias_hn int64  (H,)        GRU only: n-gate recurrent bias (inside the reset product)
    head.w           uint16 (O, H)      weight codes of the output layer
    head.bias        int64  (O,)        output biases, output_frac fraction bits
    embedding        int64  (V, D)      token models only: input-format codes
    table.sigmoid    int64  (2**sigmoid_in_width,)
    table.tanh       int64  (2**tanh_in_width,)
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .spec import (
    CellKind,
    Formats,
    Head,
    HwgenError,
    Layer,
    Model,
    QuantMatrix,
    Scale,
    TokenInput,
    VectorInput,
    WeightEncoding,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "save_model",
    "load_model",
    "model_hash",
]

FORMAT_NAME = "hwgen-model"
FORMAT_VERSION = 1


class ModelFileError(HwgenError):
    """A model file is malformed: the message names the field, what was found and what was
    expected."""


def _header(model: Model) -> dict:
    inp = model.input
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "cell": model.cell.value,
        "hidden": model.hidden,
        "layers": [
            {
                "wx": {"encoding": ly.wx.encoding.to_json(), "scale": ly.wx.scale.to_json()},
                "wh": {"encoding": ly.wh.encoding.to_json(), "scale": ly.wh.scale.to_json()},
            }
            for ly in model.layers
        ],
        "input": (
            {"kind": "tokens", "vocab": inp.vocab, "dim": inp.dim}
            if isinstance(inp, TokenInput)
            else {"kind": "vector", "features": inp.features}
        ),
        "head": {
            "outputs": model.outputs,
            "argmax": model.head.argmax,
            "encoding": model.head.w.encoding.to_json(),
            "scale": model.head.w.scale.to_json(),
        },
        "formats": model.formats.to_json(),
        "meta": model.meta,
    }


def _arrays(model: Model) -> dict[str, np.ndarray]:
    out = {}
    for i, ly in enumerate(model.layers):
        out[f"layer{i}.wx"] = ly.wx.codes.astype(np.uint16)
        out[f"layer{i}.wh"] = ly.wh.codes.astype(np.uint16)
        out[f"layer{i}.bias"] = ly.bias.astype(np.int64)
        if ly.bias_hn is not None:
            out[f"layer{i}.bias_hn"] = ly.bias_hn.astype(np.int64)
    out["head.w"] = model.head.w.codes.astype(np.uint16)
    out["head.bias"] = model.head.bias.astype(np.int64)
    if model.embedding is not None:
        out["embedding"] = model.embedding.astype(np.int64)
    out["table.sigmoid"] = model.sigmoid_table.astype(np.int64)
    out["table.tanh"] = model.tanh_table.astype(np.int64)
    return out


def to_bytes(model: Model) -> bytes:
    """The file's exact bytes (deterministic)."""
    header = json.dumps(_header(model), sort_keys=True, indent=1).encode()
    arrays = {"header": np.frombuffer(header, dtype=np.uint8), **_arrays(model)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, data.getvalue())
    return buf.getvalue()


def save_model(model: Model, path) -> None:
    Path(path).write_bytes(to_bytes(model))


def model_hash(model: Model) -> str:
    import hashlib

    return hashlib.sha256(to_bytes(model)).hexdigest()


# -- loading and validation ----------------------------------------------------------------------
def _get(d: dict, key: str, typ, where: str):
    if not isinstance(d, dict) or key not in d:
        raise ModelFileError(f"field '{where}{key}' is missing")
    v = d[key]
    ok = isinstance(v, typ) and not (typ is int and isinstance(v, bool))
    if not ok:
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ModelFileError(f"field '{where}{key}' must be {tname}, not {v!r}")
    return v


def _pos(d: dict, key: str, where: str) -> int:
    v = _get(d, key, int, where)
    if v < 1:
        raise ModelFileError(f"field '{where}{key}' must be a positive integer, not {v}")
    return v


def _wrap(field: str, fn, *args):
    try:
        return fn(*args)
    except ModelFileError:
        raise
    except HwgenError as e:
        raise ModelFileError(f"field '{field}': {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"field '{field}' is malformed ({type(e).__name__}: {e})") from None


def _read_arrays(path) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such model file")
    try:
        with open(p, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise ValueError("no zip signature")
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as z:
                return {name: z[name] for name in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zipfile.LargeZipFile) as e:
        raise ModelFileError(
            f"{p}: not a readable hwgen model file (truncated or corrupt: {e})"
        ) from None


def _check_array(
    arrays, name, shape, what, *, codes: WeightEncoding | None = None, lo=None, hi=None
):
    a = arrays[name]
    if tuple(a.shape) != tuple(shape):
        raise ModelFileError(
            f"array '{name}' has shape {tuple(a.shape)}; expected {tuple(shape)} ({what})"
        )
    if not np.issubdtype(a.dtype, np.integer):
        raise ModelFileError(f"array '{name}' has dtype {a.dtype}; expected integers")
    a = a.astype(np.int64)
    if codes is not None:
        bad = ~codes.valid_codes(a)
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ModelFileError(
                f"array '{name}' holds code {int(a[idx])} at {list(idx)}, which is not a valid "
                f"{codes.describe()} code (0..{(1 << codes.bits) - 1}, see docs/numerics.md)"
            )
    if lo is not None and a.size and (a.min() < lo or a.max() > hi):
        idx = tuple(int(i) for i in np.argwhere((a < lo) | (a > hi))[0])
        raise ModelFileError(
            f"array '{name}' holds {int(a[idx])} at {list(idx)}; expected values in [{lo}, {hi}]"
        )
    return a


def load_model(path) -> Model:
    """Read and fully validate a model file; raises `ModelFileError` naming the bad field."""
    arrays = _read_arrays(path)
    if "header" not in arrays:
        raise ModelFileError(f"{path}: missing array 'header': not a hwgen model file")
    try:
        hdr = json.loads(arrays.pop("header").astype(np.uint8).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ModelFileError(f"array 'header' is not valid JSON ({e})") from None
    if not isinstance(hdr, dict) or hdr.get("format") != FORMAT_NAME:
        raise ModelFileError(f"field 'format' is {hdr.get('format')!r}; expected {FORMAT_NAME!r}")
    version = hdr.get("version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"unsupported model file version {version!r}; this hwgen reads version {FORMAT_VERSION}"
        )
    cell_name = _get(hdr, "cell", str, "")
    try:
        cell = CellKind(cell_name)
    except ValueError:
        raise ModelFileError(f"field 'cell' is {cell_name!r}; expected rnn, gru or lstm") from None
    H = _pos(hdr, "hidden", "")
    G = cell.num_gates
    formats = _wrap("formats", Formats.from_json, _get(hdr, "formats", dict, ""))
    if (cell is CellKind.LSTM) != (formats.cell is not None):
        raise ModelFileError(
            f"field 'formats.cell' is {formats.to_json()['cell']!r}; "
            + (
                "an LSTM needs a cell-state format"
                if cell is CellKind.LSTM
                else f"a {cell.value} has none (null)"
            )
        )
    inp_d = _get(hdr, "input", dict, "")
    kind = _get(inp_d, "kind", str, "input.")
    if kind == "vector":
        inp = VectorInput(_pos(inp_d, "features", "input."))
    elif kind == "tokens":
        inp = TokenInput(_pos(inp_d, "vocab", "input."), _pos(inp_d, "dim", "input."))
    else:
        raise ModelFileError(f"field 'input.kind' is {kind!r}; expected 'vector' or 'tokens'")
    layer_ds = _get(hdr, "layers", list, "")
    if not layer_ds:
        raise ModelFileError("field 'layers' is empty; a model needs at least one layer")
    head_d = _get(hdr, "head", dict, "")
    O = _pos(head_d, "outputs", "head.")  # noqa: E741

    expected = {"head.w", "head.bias", "table.sigmoid", "table.tanh"}
    for i in range(len(layer_ds)):
        expected |= {f"layer{i}.wx", f"layer{i}.wh", f"layer{i}.bias"}
        if cell is CellKind.GRU:
            expected.add(f"layer{i}.bias_hn")
    if isinstance(inp, TokenInput):
        expected.add("embedding")
    for name in sorted(expected - arrays.keys()):
        raise ModelFileError(f"missing array '{name}'")
    for name in sorted(arrays.keys() - expected):
        raise ModelFileError(
            f"unexpected array '{name}' (not part of a {len(layer_ds)}-layer {cell.value} model)"
        )

    def qmatrix(d, where, name, shape, what):
        enc = _wrap(
            f"{where}.encoding", WeightEncoding.from_json, _get(d, "encoding", dict, where + ".")
        )
        scale = _wrap(f"{where}.scale", Scale.from_json, d.get("scale"))
        codes = _check_array(arrays, name, shape, what, codes=enc)
        return QuantMatrix(codes.astype(np.uint16), enc, scale)

    layers = []
    for i, ld in enumerate(layer_ds):
        in_w = inp.width if i == 0 else H
        wx = qmatrix(
            _get(ld, "wx", dict, f"layers[{i}]."),
            f"layers[{i}].wx",
            f"layer{i}.wx",
            (G * H, in_w),
            f"{G} gates x {H} hidden, {in_w} inputs",
        )
        wh = qmatrix(
            _get(ld, "wh", dict, f"layers[{i}]."),
            f"layers[{i}].wh",
            f"layer{i}.wh",
            (G * H, H),
            f"{G} gates x {H} hidden, {H} hidden",
        )
        bias = _check_array(arrays, f"layer{i}.bias", (G * H,), f"{G} gates x {H} hidden")
        bias_hn = None
        if cell is CellKind.GRU:
            bias_hn = _check_array(arrays, f"layer{i}.bias_hn", (H,), f"{H} hidden")
        layers.append(Layer(wx, wh, bias, bias_hn))
    hw = qmatrix(head_d, "head", "head.w", (O, H), f"{O} outputs, {H} hidden")
    argmax = _get(head_d, "argmax", bool, "head.")
    head = Head(hw, _check_array(arrays, "head.bias", (O,), f"{O} outputs"), argmax)
    emb = None
    if isinstance(inp, TokenInput):
        fi = formats.input
        emb = _check_array(
            arrays,
            "embedding",
            (inp.vocab, inp.dim),
            f"{inp.vocab} tokens x {inp.dim} dims",
            lo=fi.min_code,
            hi=fi.max_code,
        )
    sig = _check_array(
        arrays,
        "table.sigmoid",
        (1 << formats.sigmoid_in_width,),
        f"2**sigmoid_in_width = 2**{formats.sigmoid_in_width} entries",
        lo=0,
        hi=formats.sigmoid_one,
    )
    top = formats.state.max_code
    tanh = _check_array(
        arrays,
        "table.tanh",
        (1 << formats.tanh_in_width,),
        f"2**tanh_in_width = 2**{formats.tanh_in_width} entries",
        lo=-top,
        hi=top,
    )
    meta = hdr.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelFileError(f"field 'meta' must be an object, not {meta!r}")
    return Model(cell, inp, H, tuple(layers), head, formats, sig, tanh, emb, meta)
