"""The shape of a loadable accelerator: what its bitstream fixes, so that any model of that shape
runs on it after a load (docs/uart.md, "Loading a model").

A ROM accelerator is built for one model. A loadable one (``weights`` ``ram`` or ``spram``,
`hwgen.gateware.plan.WEIGHT_MODES`) keeps weights, biases and embedding in RAMs written at run
time; everything else is hardware: cell type and sizes, weight encodings and scales (the scalers
are shift-and-add constants), fixed-point formats (and so the activation tables), lanes, state
storage, argmax, and the register widths. Widths normally come from the model's own weights and
biases (`numerics.derive_widths`); a loadable core is instead built for the *capacity model* of
its shape (`capacity_model`): every weight at the encoding's largest magnitude, every bias at
the largest the shape's ``bias_bits`` hold, embedding entries at the input format's extremes. Its
widths hold any model of the shape, whose arithmetic (exact, no saturation beyond the formats')
is therefore the same as with the model's own widths: the golden model is unchanged.

Zero skipping (`hwgen.gateware.packing`): a model whose matrices declare 2:4 sparsity (``nm``)
gets a capacity model with the same pattern (the largest magnitude in two columns of every group
of 4), so the core may be a sparse core; the shape then says so (``zero_skipping`` and, per
packed matrix, ``packed``: keys present only for sparse cores, so dense shapes keep their ids),
and only models whose packed matrices are 2:4 sparse load into it. A 2:4 model loads into a
dense core of its shape as well.

Per-row scales (issue 26): the row multipliers are loaded with the weights (the last load
image); the shape records which matrices have them (``matrices.<name>.row_mult``) and their
width (``row_mult_bits``, present only then). Their matrices' scales sit `ROW_MULT_HEADROOM`
bits below the model's and the multipliers are 2 x that wider, so a model whose row scales'
exponent differs by up to that much either way is re-expressed exactly (`express_rows`) and
loads: a retrained folded normalization moves the exponent.

Pure (no Amaranth), except `write_shape` / `read_shape`: a build folder's ``shape.json``.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np

from .fileio import read_versioned_json
from .gateware.packing import GROUP, HARDWARE_SPARSITY, packable
from .gateware.plan import (
    LoadImage,
    Plan,
    check_options,
    make_plan,
    matrix_ids,
    plan_like,
    signed_words,
)
from .gateware.schedule import choose_sparse, row_mult_width, schedule
from .numerics import signed_width
from .spec import HwgenError, Model, QuantMatrix, Scale, TokenInput, WeightEncoding

__all__ = [
    "MIN_BIAS_BITS",
    "shape_of",
    "shape_id",
    "shape_differences",
    "check_fits_shape",
    "bias_bits_needed",
    "default_bias_bits",
    "capacity_model",
    "capacity_plan",
    "shape_core",
    "shape_packed",
    "shape_is_delta",
    "load_images",
    "load_crc",
    "SHAPE_FILE",
    "write_shape",
    "read_shape",
    "ROW_MULT_HEADROOM",
    "express_rows",
    "with_row_headroom",
    "row_headroom",
]

#: The file a loadable build writes beside its bitstream.
SHAPE_FILE = "shape.json"
_SHAPE_KEYS = ("cell", "input", "hidden", "layers", "outputs", "argmax", "formats", "matrices",
               "lanes", "state", "weights", "bias_bits")
#: Present only in the shape of a sparse core (zero skipping).
_SPARSE_KEY = "zero_skipping"
#: Present only in the shape of a delta core (issue 23, `hwgen.delta.loadable`): its thresholds
#: (`hwgen.delta.DeltaThresholds.to_json`), constants of the bitstream.
_DELTA_KEY = "delta"
#: Present only in the shape of a core with per-row scales (issue 26): the width of its loaded
#: row multipliers (a model whose multipliers need more bits is refused).
_ROW_KEY = "row_mult_bits"
#: Headroom of a loadable core with per-row scales, in bits each way (up to 16 multiplier bits in
#: all): its row scales' exponent sits this much below the model's and its multipliers are twice
#: this much wider than the model's, so a retrained model whose scale exponent differs by up to
#: this much either way (its largest row factor up to 2**ROW_MULT_HEADROOM times smaller or
#: larger: folded normalizations move it) is re-expressed exactly on the bitstream's scale
#: (`express_rows`) and loads.
ROW_MULT_HEADROOM = 4

#: A loadable core holds biases of at least this many bits (signed), so that retrained models of
#: the shape, whose biases differ, still fit: 2 bits above the widest activation-table index.
MIN_BIAS_BITS = 2


def bias_bits_needed(model: Model) -> int:
    """Signed bits of the model's largest |bias| (every layer's, the GRU's b_hn, the head's)."""
    values = [np.abs(layer.bias).max(initial=0) for layer in model.layers]
    values += [np.abs(layer.bias_hn).max(initial=0) for layer in model.layers
               if layer.bias_hn is not None]
    values.append(np.abs(model.head.bias).max(initial=0))
    return signed_width(int(max(values)))


def default_bias_bits(model: Model) -> int:
    """The bias width a loadable core gets by default: what the model needs, at least the
    widest activation-table index + `MIN_BIAS_BITS`."""
    f = model.formats
    tables = max(f.sigmoid_in_width, f.tanh_in_width)
    return max(bias_bits_needed(model), tables + MIN_BIAS_BITS)


def shape_of(model: Model, lanes: int, state: str = "auto", weights: str = "spram",
             bias_bits: int | None = None, sparse: str = "auto", *,
             headroom: bool = True) -> dict:
    """The shape of a loadable accelerator for ``model`` (a JSON-able dict, keys sorted when
    hashed). ``bias_bits`` (default: the model's need, at least the table index width +
    `MIN_BIAS_BITS`) is the signed width of the bias memory; ``sparse``: the zero-skipping
    option the core is built with (`hwgen.gateware.packing.SPARSE_MODES`). Per-row scales
    (issue 26): the multipliers are loaded; with ``headroom`` the shape holds them on a scale
    `ROW_MULT_HEADROOM` bits finer than the model's (`with_row_headroom`)."""
    if weights == "rom":
        raise HwgenError("a ROM accelerator has no load port; its shape is its model "
                         "(use --weights ram or spram for a loadable one)")
    thresholds = model.delta  # issue 23: a delta core's shape is its weights' and thresholds
    if thresholds is not None:
        model, sparse = dataclasses.replace(model, delta=None), "off"
    rows = row_headroom(model)[1]
    if headroom:
        model = with_row_headroom(model)
    bits = default_bias_bits(model) if bias_bits is None else int(bias_bits)
    need = bias_bits_needed(model)
    if bits < need:
        raise HwgenError(f"the model's biases need {need} bits; bias_bits {bits} is too small")
    cap = capacity_model(model, bits, row_mult_bits=rows if headroom else None)
    lanes = check_options(cap, lanes, state, weights)[0]
    timing = schedule(cap, lanes, choose_sparse(cap, lanes, sparse))  # the core's timing only
    packed = {name for i, name, _ in matrix_ids(cap) if timing.sparse and timing.repeat(i) == 1}
    inp = model.input
    if isinstance(inp, TokenInput):
        input_shape = {"tokens": inp.vocab, "dim": inp.dim}
    else:
        input_shape = {"features": inp.features}
    matrices = {}
    for name, m in model.matrices():
        matrices[name] = {"shape": list(m.shape), "encoding": m.encoding.to_json(),
                          "scale": m.scale.to_json()}
        if name in packed:
            matrices[name]["packed"] = True
        if m.row_mult is not None:  # issue 26: the multipliers are loaded, their presence is not
            matrices[name]["row_mult"] = True
    out = {
        "cell": model.cell.value,
        "input": input_shape,
        "hidden": model.hidden,
        "layers": model.num_layers,
        "outputs": model.outputs,
        "argmax": bool(model.head.argmax),
        "formats": model.formats.to_json(),
        "matrices": matrices,
        "lanes": lanes,
        "state": state,
        "weights": weights,
        "bias_bits": bits,
    }
    if timing.sparse:
        out[_SPARSE_KEY] = True
    if rows:
        out[_ROW_KEY] = rows
    if thresholds is not None:
        out[_DELTA_KEY] = thresholds.to_json()
    return out


def shape_is_delta(shape: dict) -> bool:
    """Whether ``shape`` is a delta core's (issue 23: its thresholds under ``delta``)."""
    return _DELTA_KEY in shape


def shape_packed(shape: dict) -> set[str]:
    """Names of the matrices a core of ``shape`` reads 2:4 packed (empty: a dense core)."""
    return {name for name, m in shape["matrices"].items() if m.get("packed")}


def shape_id(shape: dict) -> int:
    """A 32-bit identifier of a shape: CRC-32 of its canonical JSON (what the device reports)."""
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
    return zlib.crc32(text.encode())


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def row_headroom(model: Model) -> tuple[int, int]:
    """(h, bits): the headroom of the loadable core of ``model`` (`ROW_MULT_HEADROOM`, or less
    where 16-bit multipliers or the exponent range end) and its multiplier width, the model's
    own + 2h; (0, 0) without row multipliers."""
    need = row_mult_width(model)
    rows = [m for _, m in model.matrices() if m.row_mult is not None]
    if not rows:
        return 0, 0
    h = max(0, min([ROW_MULT_HEADROOM, (16 - need) // 2]
                   + [m.scale.exponent + 128 for m in rows]))
    return h, need + 2 * h


def with_row_headroom(model: Model) -> Model:
    """``model`` with every row-scaled matrix re-expressed on a scale h bits finer (exponent -
    h, multipliers * 2**h: the same values, the same arithmetic, `express_rows`; h from
    `row_headroom`)."""
    h, bits = row_headroom(model)
    return model.map_matrices(lambda _, m: m if m.row_mult is None else _rescaled(
        m, Scale(m.scale.mantissa, m.scale.exponent - h), bits))


def _rescaled(m: QuantMatrix, scale: Scale, bits: int) -> QuantMatrix | str:
    """``m``'s row multipliers on ``scale`` (exactly: multipliers * 2**d, exponent - d), or why
    they cannot be (another mantissa, a finer scale, more than ``bits`` bits)."""
    d = m.scale.exponent - scale.exponent
    if m.scale.mantissa != scale.mantissa or d < 0:
        return (f"scale {m.scale.to_json()} is not a multiple of the bitstream's "
                f"{scale.to_json()} times a power of two")
    mult = m.row_mult << d
    if mult.size and int(mult.max()) >= 1 << bits:
        return (f"row multipliers need {int(mult.max()).bit_length()} bits on the bitstream's "
                f"scale {scale.to_json()}; it holds {bits}")
    return dataclasses.replace(m, scale=scale, row_mult=mult)


def express_rows(model: Model, shape: dict) -> tuple[Model, list[str]]:
    """``model`` with its row-scaled matrices re-expressed on ``shape``'s scales (exact: row
    r's value ``row_mult[r] * 2**e`` is ``(row_mult[r] << d) * 2**(e - d)``, and the golden
    term ``align(acc * row_mult * mantissa, shift)`` is the same), and the reasons where that
    is impossible (entries like `shape_differences`'). Other matrices are left as they are."""
    problems = []
    bits = shape.get(_ROW_KEY, 0)

    def fit(name, m):
        entry = shape["matrices"].get(name, {})
        if m.row_mult is None or not entry.get("row_mult"):
            return m
        got = _rescaled(m, Scale.from_json(entry["scale"]), bits)
        if isinstance(got, str):
            problems.append(f"matrices.{name}: {got}")
            return m
        return got

    return model.map_matrices(fit), problems


def shape_differences(built: dict, model: Model) -> list[str]:
    """Why ``model`` cannot be loaded into a core of shape ``built`` (empty: it can). Each entry
    names a field, the bitstream's value and the model's. Row-scaled matrices are compared
    after `express_rows` (their scale may differ by a power of two the multipliers absorb)."""
    model, problems = express_rows(model, built)
    if problems:
        return problems
    try:
        mine = shape_of(model, built["lanes"], built["state"], built["weights"],
                        max(built["bias_bits"], bias_bits_needed(model)), sparse="off",
                        headroom=False)
    except HwgenError as e:
        return [str(e)]
    packed = shape_packed(built)
    a, b = _flatten(built), _flatten(mine)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in ("bias_bits", _SPARSE_KEY, _ROW_KEY) or key.endswith(".packed"):
            continue
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: bitstream {a.get(key)!r}, model {b.get(key)!r}")
    for name, m in model.matrices():
        if name in packed and not packable(m):
            v = HARDWARE_SPARSITY.violation(np.asarray(m.codes))
            diffs.append(f"matrices.{name}: the bitstream skips zeros (2:4 packed), the model's "
                         f"row {v[0]}, group {v[1]} holds {v[2]} non-zero weights; retrain "
                         "with --sparsity 2:4 or build a dense bitstream (--sparse off)")
    need = bias_bits_needed(model)
    if need > built["bias_bits"]:
        diffs.append(f"bias_bits: the bitstream holds {built['bias_bits']}-bit biases, "
                     f"the model's largest needs {need}")
    rows = row_mult_width(model)
    if rows > built.get(_ROW_KEY, rows):
        diffs.append(f"{_ROW_KEY}: the bitstream holds {built[_ROW_KEY]}-bit row multipliers, "
                     f"the model's largest needs {rows}")
    return diffs


def _largest_code(enc: WeightEncoding) -> int:
    codes = np.arange(1 << enc.bits, dtype=np.int64)
    codes = codes[enc.valid_codes(codes)]
    levels = np.abs(enc.decode(codes))
    return int(codes[int(np.argmax(levels))])


def _full_codes(m: QuantMatrix, packed: bool) -> QuantMatrix:
    """Every weight at the largest magnitude (dense: the capacity of any sparsity pattern), or,
    ``packed``, two of every group of 4 columns (the capacity of any 2:4 pattern)."""
    codes = np.full(m.codes.shape, _largest_code(m.encoding), dtype=m.codes.dtype)
    if not packed:
        return dataclasses.replace(m, codes=codes, nm=None)
    codes[:, np.arange(m.shape[1]) % GROUP >= 2] = 0
    return dataclasses.replace(m, codes=codes, nm=HARDWARE_SPARSITY)


def _declares_2_4(m: QuantMatrix) -> bool:
    return m.nm is not None and packable(m)


def capacity_model(model: Model, bias_bits: int, packed: set[str] | None = None,
                   row_mult_bits: int | None = None) -> Model:
    """The model whose widths the loadable core of this shape is built with (module docstring):
    same sizes, encodings, scales, formats and tables; every weight, bias and embedding entry at
    its largest magnitude. ``packed``: the matrices that keep a 2:4 pattern (default: those
    whose ``nm`` declares one that packs; `shape_packed` for an existing shape). Row
    multipliers (issue 26, loaded like the biases): every row of a matrix that has them at
    2**row_mult_bits - 1 (default: the width `shape_of` gives, `row_headroom`)."""
    if packed is None:
        packed = {name for name, m in model.matrices() if _declares_2_4(m)}
    big = (1 << (bias_bits - 1)) - 1
    rows = row_headroom(model)[1] if row_mult_bits is None else int(row_mult_bits)

    def _full(m: QuantMatrix, packed: bool) -> QuantMatrix:
        full = _full_codes(m, packed)
        if m.row_mult is None:
            return full
        return dataclasses.replace(full, row_mult=np.full(m.shape[0], (1 << rows) - 1))

    def biases(v):
        return None if v is None else np.full(np.shape(v), big, dtype=np.int64)

    layers = tuple(dataclasses.replace(layer, wx=_full(layer.wx, f"layer{i}.wx" in packed),
                                       wh=_full(layer.wh, f"layer{i}.wh" in packed),
                                       bias=biases(layer.bias), bias_hn=biases(layer.bias_hn))
                   for i, layer in enumerate(model.layers))
    head = dataclasses.replace(model.head, w=_full(model.head.w, "head.w" in packed),
                               bias=biases(model.head.bias))
    emb = None
    if model.embedding is not None:
        emb = np.full(model.embedding.shape, model.formats.input.min_code, dtype=np.int64)
    return dataclasses.replace(model, layers=layers, head=head, embedding=emb,
                               meta={"capacity_of": "loadable shape"})


def capacity_plan(shape: dict, model: Model) -> Plan:
    """The plan the loadable core of ``shape`` is built from (``model``: any model of it; a
    delta core's: `hwgen.delta.design.delta_plan`)."""
    core, sparse = shape_core(shape, model)
    if core.delta is not None:  # issue 23
        from .delta.design import delta_plan

        return delta_plan(core, shape["lanes"], shape["state"], shape["weights"], sparse)
    return make_plan(core, shape["lanes"], shape["state"], shape["weights"], sparse)


def shape_core(shape: dict, model: Model) -> tuple[Model, str]:
    """What the core of ``shape`` is built from (``model``: any model of it): its capacity
    model (2:4 patterns where the shape packs) and its zero-skipping option (``on`` / ``off``).
    Every place that builds or models the core uses this, so they agree. A delta core's
    capacity model has the shape's thresholds."""
    model, problems = express_rows(model, shape)  # the shape's row scales (issue 26)
    if problems:
        raise HwgenError("the model does not fit this bitstream's shape: " + "; ".join(problems))
    thresholds = None  # issue 23: a delta core's capacity model has the shape's thresholds
    if shape_is_delta(shape):
        from .delta import DeltaThresholds

        thresholds = DeltaThresholds.from_json(shape[_DELTA_KEY])
    model = dataclasses.replace(model, delta=thresholds)
    return (capacity_model(model, shape["bias_bits"], shape_packed(shape), shape.get(_ROW_KEY)),
            "on" if shape.get(_SPARSE_KEY) else "off")


def check_fits_shape(shape: dict, model: Model) -> None:
    """Raise `HwgenError` naming every `shape_differences` entry when ``model`` cannot be loaded
    into a core of ``shape``."""
    diffs = shape_differences(shape, model)
    if diffs:
        raise HwgenError("the model does not fit this bitstream's shape: " + "; ".join(diffs))


def load_images(shape: dict, model: Model, core: Plan | None = None) -> list[LoadImage]:
    """What to write into a core of ``shape`` so that it computes ``model``: the model's weight
    words (laid out like the core's, `plan.plan_like`) and its biases at the core's bias width.
    ``core``: the core's plan when the caller has it (`hwgen.design.Design`), else
    `capacity_plan`. Raises `HwgenError` naming every difference when the model is not of this
    shape."""
    check_fits_shape(shape, model)
    core = capacity_plan(shape, model) if core is None else core
    if core.delta:  # issue 23: the delta core's memories, laid out by its plan
        from .delta.loadable import delta_load_images

        return delta_load_images(core, model)
    own = plan_like(express_rows(model, shape)[0], core)
    out = []
    for mine, theirs in zip(own.load_images(), core.load_images(), strict=True):
        words = mine.words
        if mine.name == "biases":
            words = tuple(signed_words(list(own.biases) + [0], core.bias_width))
        if (mine.name, len(words)) != (theirs.name, theirs.depth):
            raise HwgenError(f"internal: load image {mine.name} does not match the core's "
                             f"{theirs.name} ({len(words)} vs {theirs.depth} words)")
        out.append(dataclasses.replace(theirs, words=tuple(int(w) for w in words)))
    return out


def load_crc(images: list[LoadImage], word_bytes: int) -> int:
    """CRC-32 (zlib's: reflected, initial and final XOR 0xFFFFFFFF) of a whole load as the link
    writes it: every word of every image, images in index order, each word as ``word_bytes``
    little-endian bytes (docs/uart.md)."""
    crc = 0
    for im in images:
        crc = zlib.crc32(b"".join(int(w).to_bytes(word_bytes, "little") for w in im.words), crc)
    return crc


def write_shape(build_dir, shape: dict) -> Path:
    """Write ``build_dir/shape.json``: the shape and its id (deterministic bytes)."""
    from .fileio import atomic_write_bytes

    Path(build_dir).mkdir(parents=True, exist_ok=True)
    path = Path(build_dir) / SHAPE_FILE
    doc = {"schema": "hwgen-shape", "version": 1, "shape_id": shape_id(shape), "shape": shape}
    atomic_write_bytes(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    return path


def read_shape(build_dir) -> dict:
    """The shape of a loadable build folder (`write_shape`); one clear `HwgenError` for a missing,
    malformed or altered file."""
    path = Path(build_dir) / SHAPE_FILE
    doc = read_versioned_json(path, "hwgen-shape", 1, kind="hwgen shape file",
                              missing="pass the folder of a loadable build ('hwgen build "
                              "--weights spram' or ram writes it)")
    shape = doc.get("shape")
    optional = {_SPARSE_KEY, _ROW_KEY, _DELTA_KEY}
    if not isinstance(shape, dict) or sorted(set(shape) - optional) != sorted(_SHAPE_KEYS):
        raise HwgenError(f"{path}: the shape must have the fields {', '.join(_SHAPE_KEYS)}")
    if doc.get("shape_id") != shape_id(shape):
        raise HwgenError(f"{path}: its shape_id does not match its shape (edited by hand?)")
    return shape
