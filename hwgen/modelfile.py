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
    <matrix>.row_mult uint16 (rows,)    per-row multipliers of a matrix whose header entry has
                                        "row_mult": true (layer{l}.wx, layer{l}.wh, head.w)
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .delta import modelfile as delta_section
from .fileio import atomic_write_bytes
from .numerics import derive_widths
from .spec import (
    LIMITS,
    ROW_MULT_LIMIT,
    CellKind,
    Formats,
    Head,
    HwgenError,
    Layer,
    Model,
    QuantMatrix,
    Scale,
    Sparsity,
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
#: The version of a delta network's file (a ``delta`` section, issue 23): a reader of version 1
#: alone refuses it instead of running the model as a dense one. Models without the section keep
#: `FORMAT_VERSION`, so their files (and hashes) are unchanged.
DELTA_FORMAT_VERSION = 2
#: The version of a file with per-row multipliers on any matrix (issue 26), with or without a
#: delta section: older readers refuse it instead of running the model with one scale per matrix.
#: Models without row multipliers keep their version (1 or 2), byte for byte.
ROW_SCALE_FORMAT_VERSION = 3
READ_VERSIONS = (FORMAT_VERSION, DELTA_FORMAT_VERSION, ROW_SCALE_FORMAT_VERSION)


class ModelFileError(HwgenError):
    """A model file is malformed: the message names the field, what was found and what was
    expected."""


def _matrix_json(m: QuantMatrix) -> dict:
    """A matrix's header entry: encoding and scale, plus ``nm`` only when it is N:M sparse (so a
    dense model's file is what it was before sparsity existed) and ``"row_mult": true`` only
    when it has per-row multipliers (stored in the array ``<matrix>.row_mult``)."""
    d = {"encoding": m.encoding.to_json(), "scale": m.scale.to_json()}
    if m.nm is not None:
        d["nm"] = m.nm.to_json()
    if m.row_mult is not None:
        d["row_mult"] = True
    return d


def _version(model: Model) -> int:
    """The file version ``model`` needs: 3 with row multipliers, else 2 for a delta network,
    else 1 (the oldest version that can hold it, so older files keep their bytes)."""
    if any(m.row_mult is not None for _, m in model.matrices()):
        return ROW_SCALE_FORMAT_VERSION
    return FORMAT_VERSION if getattr(model, "delta", None) is None else DELTA_FORMAT_VERSION


def _header(model: Model) -> dict:
    inp = model.input
    return {
        "format": FORMAT_NAME,
        "version": _version(model),
        "cell": model.cell.value,
        "hidden": model.hidden,
        "layers": [{"wx": _matrix_json(ly.wx), "wh": _matrix_json(ly.wh)}
                   for ly in model.layers],
        "input": (
            {"kind": "tokens", "vocab": inp.vocab, "dim": inp.dim}
            if isinstance(inp, TokenInput)
            else {"kind": "vector", "features": inp.features}
        ),
        "head": {"outputs": model.outputs, "argmax": model.head.argmax,
                 **_matrix_json(model.head.w)},
        "formats": model.formats.to_json(),
        "meta": model.meta,
        **delta_section.header_section(model),  # delta (issue 23): "delta" when it has one
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
    for name, m in model.matrices():
        if m.row_mult is not None:
            out[f"{name}.row_mult"] = m.row_mult.astype(np.uint16)
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
    """Write ``model`` to ``path`` atomically (a complete file or none: no partial output)."""
    atomic_write_bytes(path, to_bytes(model))


def model_hash(model: Model) -> str:
    import hashlib

    return hashlib.sha256(to_bytes(model)).hexdigest()


# -- loading and validation ----------------------------------------------------------------------
#: The header is small JSON; anything larger is not a model file.
MAX_HEADER_BYTES = 1 << 20
#: A member's .npy header (numpy's own limit for untrusted files is 10000 bytes).
_MAX_NPY_HEADER = 10000


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def _get(d: dict, key: str, typ, where: str):
    if not isinstance(d, dict) or key not in d:
        raise ModelFileError(f"field '{where}{key}' is missing")
    v = d[key]
    ok = isinstance(v, typ) and not (typ is int and isinstance(v, bool))
    if not ok:
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ModelFileError(f"field '{where}{key}' must be {tname}, not {v!r}")
    return v


def _pos(d: dict, key: str, where: str, limit: str) -> int:
    v = _get(d, key, int, where)
    if v < 1:
        raise ModelFileError(f"field '{where}{key}' must be a positive integer, not {v}")
    if v > LIMITS[limit]:
        raise ModelFileError(f"field '{where}{key}' must be at most {LIMITS[limit]}, not {v}")
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


class _Archive:
    """The zip container of a model file, read member by member: every member's .npy header
    (shape, dtype) is checked against what the model header says *before* its data is
    decompressed, and no more bytes than that are ever decompressed or allocated."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            raise ModelFileError(f"{path}: no such model file")
        if not path.is_file():
            raise ModelFileError(f"{path}: not a file")
        try:
            self.fh = open(path, "rb")
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read ({e.strerror or e})") from None
        try:
            if self.fh.read(4) != b"PK\x03\x04":
                raise ValueError("no zip signature")
            self.fh.seek(0)
            self.zf = zipfile.ZipFile(self.fh)
            self.members: dict[str, zipfile.ZipInfo] = {}
            for info in self.zf.infolist():
                name = info.filename
                if not name.endswith(".npy") or name[:-4] in self.members:
                    raise ValueError(f"member {name!r} is not a uniquely named .npy array")
                self.members[name[:-4]] = info
        except Exception as e:  # any failure to decode foreign bytes: a corrupt file
            self.fh.close()
            raise self.corrupt(e) from None

    def corrupt(self, e: BaseException | str) -> ModelFileError:
        why = e if isinstance(e, str) else _one_line(e)
        return ModelFileError(
            f"{self.path}: not a readable hwgen model file (truncated or corrupt: {why})"
        )

    def close(self) -> None:
        self.zf.close()
        self.fh.close()

    def read(self, name: str, shape: tuple[int, ...] | None, what: str,
             max_bytes: int | None = None) -> np.ndarray:
        """Member ``name`` as an array. With ``shape`` its .npy header must declare that shape
        (``what`` explains it) and an integer dtype; without, at most ``max_bytes`` of data."""
        info = self.members[name]
        try:
            with self.zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    got, fortran, dtype = np.lib.format.read_array_header_1_0(
                        f, max_header_size=_MAX_NPY_HEADER)
                elif version in ((2, 0), (3, 0)):
                    got, fortran, dtype = np.lib.format.read_array_header_2_0(
                        f, max_header_size=_MAX_NPY_HEADER)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                if dtype.hasobject:
                    raise ValueError(f"array '{name}' holds Python objects (pickle is refused)")
                if shape is not None and tuple(got) != tuple(shape):
                    raise ModelFileError(
                        f"array '{name}' has shape {tuple(got)}; expected {tuple(shape)} ({what})"
                    )
                if dtype.kind not in "iu" or dtype.itemsize > 8:
                    raise ModelFileError(f"array '{name}' has dtype {dtype}; expected integers")
                count = int(np.prod(got, dtype=object))
                nbytes = count * dtype.itemsize
                if max_bytes is not None and nbytes > max_bytes:
                    raise ModelFileError(
                        f"array '{name}' holds {nbytes} bytes; at most {max_bytes} are allowed"
                    )
                data = f.read(nbytes)
                if len(data) != nbytes or f.read(1):
                    raise ValueError(f"array '{name}' has {len(data)} data bytes, not {nbytes}")
        except ModelFileError:
            raise
        except Exception as e:  # zlib, zip flags, CRC, .npy header: a corrupt file
            raise self.corrupt(e) from None
        a = np.frombuffer(data, dtype=dtype, count=count)
        return a.reshape(got, order="F" if fortran else "C")


def _check_array(
    arrays: _Archive, name, shape, what, *, codes: WeightEncoding | None = None, lo=None, hi=None
):
    a = arrays.read(name, shape, what)
    if a.dtype.kind == "u" and a.dtype.itemsize == 8 and a.size and a.max() >= 1 << 63:
        idx = tuple(int(i) for i in np.argwhere(a >= np.uint64(1 << 63))[0])
        raise ModelFileError(
            f"array '{name}' holds {int(a[idx])} at {list(idx)}; expected values below 2**63"
        )
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
    """Read and fully validate a model file; raises `ModelFileError` naming the bad field.

    Every header field is checked for its JSON type and range (sizes up to `hwgen.spec.LIMITS`)
    before any array is read; every array's shape and dtype before its data is decompressed;
    weight codes, biases, tables and the embedding for their ranges; and the model's derived
    widths (docs/numerics.md) at the end, so a model that loads can be run and generated.
    """
    archive = _Archive(Path(path))
    try:
        return _load(archive, path)
    finally:
        archive.close()


def _load(arrays: _Archive, path) -> Model:
    """The model in ``arrays``, section by section: header, sizes, the list of arrays, layers,
    head, embedding and tables, then the derived widths."""
    hdr = _read_header(arrays, path)
    cell, H, formats = _read_cell(hdr)
    inp = _read_input(hdr)
    layer_ds, head_d, outputs = _read_sizes(hdr, cell, H, inp)
    meta = hdr.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelFileError(f"field 'meta' must be an object, not {meta!r}")
    rows = _row_mult_members(hdr["version"], layer_ds, head_d)
    _check_members(arrays, cell, len(layer_ds), inp, rows)
    layers = tuple(_read_layer(arrays, ld, i, cell, H, inp.width if i == 0 else H)
                   for i, ld in enumerate(layer_ds))
    head = _read_head(arrays, head_d, outputs, H)
    emb = _read_embedding(arrays, inp, formats)
    sig, tanh = _read_tables(arrays, formats)
    model = Model(cell, inp, H, layers, head, formats, sig, tanh, emb, meta)
    try:
        derive_widths(model)
    except HwgenError as e:
        raise ModelFileError(f"{path}: {e}") from None
    # delta (issue 23): the optional "delta" section, validated by hwgen.delta
    return _wrap("delta", delta_section.attach_section, hdr.get("delta"), model)


def _read_header(arrays: _Archive, path) -> dict:
    """The ``header`` array as a JSON object of this format and version."""
    if "header" not in arrays.members:
        raise ModelFileError(f"{path}: missing array 'header': not a hwgen model file")
    raw = arrays.read("header", None, "", max_bytes=MAX_HEADER_BYTES)
    if raw.ndim != 1 or raw.dtype != np.uint8:
        raise ModelFileError(f"array 'header' must be 1-D uint8 JSON text, not {raw.dtype} "
                             f"{raw.shape}")
    try:
        hdr = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"array 'header' is not valid JSON ({_one_line(e)})") from None
    if not isinstance(hdr, dict):
        raise ModelFileError(f"array 'header' must hold a JSON object, not {type(hdr).__name__}")
    if hdr.get("format") != FORMAT_NAME:
        raise ModelFileError(f"field 'format' is {hdr.get('format')!r}; expected {FORMAT_NAME!r}")
    version = hdr.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in READ_VERSIONS:
        raise ModelFileError(
            f"unsupported model file version {version!r}; this hwgen reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}"
        )
    if version != ROW_SCALE_FORMAT_VERSION and ("delta" in hdr) != (version ==
                                                      DELTA_FORMAT_VERSION):
        raise ModelFileError(
            f"version {version} does not match the file: a 'delta' section comes with version "
            f"{DELTA_FORMAT_VERSION} and only with it (or with version "
            f"{ROW_SCALE_FORMAT_VERSION}, a model with row multipliers)"
        )
    return hdr


def _row_mult_members(version: int, layer_ds: list, head_d: dict) -> set[str]:
    """The ``<matrix>.row_mult`` arrays the header announces (a matrix entry with
    ``"row_mult": true``); the flag must be exactly ``true`` and comes with version 3 and only
    with it (a version-1/2 reader refuses such a file rather than drop the multipliers)."""
    entries = [(f"layers[{i}].{k}", f"layer{i}.{k}", ld.get(k))
               for i, ld in enumerate(layer_ds) if isinstance(ld, dict) for k in ("wx", "wh")]
    entries.append(("head", "head.w", head_d))
    names = set()
    for where, name, d in entries:
        if isinstance(d, dict) and "row_mult" in d:
            if d["row_mult"] is not True:
                raise ModelFileError(
                    f"field '{where}.row_mult' must be true (omit it for a matrix without row "
                    f"multipliers), not {json.dumps(d['row_mult'])}")
            names.add(f"{name}.row_mult")
    if bool(names) != (version == ROW_SCALE_FORMAT_VERSION):
        raise ModelFileError(
            f"version {version} does not match the file: per-row multipliers (a matrix entry "
            f"with \"row_mult\": true) come with version {ROW_SCALE_FORMAT_VERSION} and only "
            f"with it; this file has {len(names)}")
    return names


def _read_cell(hdr: dict) -> tuple[CellKind, int, Formats]:
    """The cell kind, hidden size and formats (an LSTM, and only an LSTM, has a cell format)."""
    cell_name = _get(hdr, "cell", str, "")
    try:
        cell = CellKind(cell_name)
    except ValueError:
        raise ModelFileError(f"field 'cell' is {cell_name!r}; expected rnn, gru or lstm") from None
    H = _pos(hdr, "hidden", "", "hidden")
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
    return cell, H, formats


def _read_input(hdr: dict) -> VectorInput | TokenInput:
    inp_d = _get(hdr, "input", dict, "")
    kind = _get(inp_d, "kind", str, "input.")
    if kind == "vector":
        return VectorInput(_pos(inp_d, "features", "input.", "features"))
    if kind == "tokens":
        return TokenInput(_pos(inp_d, "vocab", "input.", "vocab"),
                          _pos(inp_d, "dim", "input.", "dim"))
    raise ModelFileError(f"field 'input.kind' is {kind!r}; expected 'vector' or 'tokens'")


def _read_sizes(hdr: dict, cell: CellKind, H: int, inp) -> tuple[list, dict, int]:
    """The layer entries, the head entry and the output count, within `LIMITS` (the total
    weight count too) before any array is read."""
    layer_ds = _get(hdr, "layers", list, "")
    if not layer_ds:
        raise ModelFileError("field 'layers' is empty; a model needs at least one layer")
    if len(layer_ds) > LIMITS["layers"]:
        raise ModelFileError(
            f"field 'layers' must hold at most {LIMITS['layers']} layers, not {len(layer_ds)}"
        )
    head_d = _get(hdr, "head", dict, "")
    O = _pos(head_d, "outputs", "head.", "outputs")  # noqa: E741
    G = cell.num_gates
    weights = G * H * (inp.width + H) + (len(layer_ds) - 1) * G * H * 2 * H + O * H
    if weights > LIMITS["weights"]:
        raise ModelFileError(
            f"the header describes {weights} weights; at most {LIMITS['weights']} are supported"
        )
    return layer_ds, head_d, O


def _check_members(arrays: _Archive, cell: CellKind, n_layers: int, inp,
                   rows: set[str] = frozenset()) -> None:
    """Exactly the arrays a model of this cell, depth and input kind has (plus ``rows``, the
    row-multiplier arrays its header announces)."""
    expected = {"head.w", "head.bias", "table.sigmoid", "table.tanh", *rows}
    for i in range(n_layers):
        expected |= {f"layer{i}.wx", f"layer{i}.wh", f"layer{i}.bias"}
        if cell is CellKind.GRU:
            expected.add(f"layer{i}.bias_hn")
    if isinstance(inp, TokenInput):
        expected.add("embedding")
    present = arrays.members.keys() - {"header"}
    for name in sorted(expected - present):
        raise ModelFileError(f"missing array '{name}'")
    for name in sorted(present - expected):
        hint = (" (a matrix's row multipliers need \"row_mult\": true on its header entry)"
                if name.endswith(".row_mult") else "")
        raise ModelFileError(
            f"unexpected array '{name}' (not part of a {n_layers}-layer {cell.value} model)"
            + hint
        )


def _read_matrix(arrays: _Archive, d, where: str, name: str, shape, what: str) -> QuantMatrix:
    """One weight matrix: its header entry ``d`` (encoding, scale, optional N:M sparsity, at
    field ``where``) and its codes (array ``name`` of ``shape``; ``what`` explains the shape)."""
    enc = _wrap(
        f"{where}.encoding", WeightEncoding.from_json, _get(d, "encoding", dict, where + ".")
    )
    scale = _wrap(f"{where}.scale", Scale.from_json, d.get("scale"))
    codes = _check_array(arrays, name, shape, what, codes=enc)
    nm = None
    if "nm" in d:
        nm = _wrap(f"{where}.nm", Sparsity.from_json, d["nm"])
        _wrap(f"{where}.nm", nm.check_kind, enc.kind)
        try:
            nm.check(codes, f"array '{name}'")
        except HwgenError as e:
            raise ModelFileError(f"{e} (declared in field '{where}.nm')") from None
    row_mult = None
    if "row_mult" in d:  # the flag itself was checked by _row_mult_members
        row_mult = _check_array(arrays, f"{name}.row_mult", shape[:1],
                                f"one multiplier per row of '{name}'", lo=0,
                                hi=ROW_MULT_LIMIT - 1)
    return QuantMatrix(codes.astype(np.uint16), enc, scale, nm, row_mult)


#: Biases: at most `LIMITS` ``bias`` in magnitude; the derived widths then bound the sums (the
#: RTL agrees with the golden model up to there: tests/test_tripups.py, the extremes).
_BIAS_RANGE = dict(lo=-LIMITS["bias"], hi=LIMITS["bias"])


def _read_layer(arrays: _Archive, ld, i: int, cell: CellKind, H: int, in_w: int) -> Layer:
    """Layer ``i``: header entry ``ld``, its two matrices and its biases."""
    G = cell.num_gates
    where = f"layers[{i}]"
    if not isinstance(ld, dict):
        raise ModelFileError(f"field '{where}' must be an object, not {ld!r}")
    wx = _read_matrix(arrays, _get(ld, "wx", dict, f"{where}."), f"{where}.wx", f"layer{i}.wx",
                      (G * H, in_w), f"{G} gates x {H} hidden, {in_w} inputs")
    wh = _read_matrix(arrays, _get(ld, "wh", dict, f"{where}."), f"{where}.wh", f"layer{i}.wh",
                      (G * H, H), f"{G} gates x {H} hidden, {H} hidden")
    bias = _check_array(arrays, f"layer{i}.bias", (G * H,), f"{G} gates x {H} hidden",
                        **_BIAS_RANGE)
    bias_hn = None
    if cell is CellKind.GRU:
        bias_hn = _check_array(arrays, f"layer{i}.bias_hn", (H,), f"{H} hidden", **_BIAS_RANGE)
    return Layer(wx, wh, bias, bias_hn)


def _read_head(arrays: _Archive, head_d: dict, O: int, H: int) -> Head:  # noqa: E741
    hw = _read_matrix(arrays, head_d, "head", "head.w", (O, H), f"{O} outputs, {H} hidden")
    argmax = _get(head_d, "argmax", bool, "head.")
    bias = _check_array(arrays, "head.bias", (O,), f"{O} outputs", **_BIAS_RANGE)
    return Head(hw, bias, argmax)


def _read_embedding(arrays: _Archive, inp, formats: Formats) -> np.ndarray | None:
    """A token model's embedding: input-format codes; None for a vector model."""
    if not isinstance(inp, TokenInput):
        return None
    fi = formats.input
    return _check_array(arrays, "embedding", (inp.vocab, inp.dim),
                        f"{inp.vocab} tokens x {inp.dim} dims", lo=fi.min_code, hi=fi.max_code)


def _read_tables(arrays: _Archive, formats: Formats) -> tuple[np.ndarray, np.ndarray]:
    """The sigmoid table (0 .. 1.0) and the tanh table (within the state format)."""
    sig = _check_array(
        arrays, "table.sigmoid", (1 << formats.sigmoid_in_width,),
        f"2**sigmoid_in_width = 2**{formats.sigmoid_in_width} entries",
        lo=0, hi=formats.sigmoid_one,
    )
    top = formats.state.max_code
    tanh = _check_array(
        arrays, "table.tanh", (1 << formats.tanh_in_width,),
        f"2**tanh_in_width = 2**{formats.tanh_in_width} entries", lo=-top, hi=top,
    )
    return sig, tanh
