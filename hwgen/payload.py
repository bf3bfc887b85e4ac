"""Stream payloads as Python integers, from the bit layout a manifest states (docs/manifest.md).

Benches and host tools never re-derive bit positions: they call `pack` / `unpack` with the
``fields`` list of ``manifest["streams"]["input" | "output"]``, which `fields_of` derives from the
gateware's Amaranth payload layouts.
"""

from __future__ import annotations

from .spec import HwgenError

__all__ = ["pack", "unpack", "field", "fields_of", "as_fields", "payload_bytes"]


def field(fields: list[dict], name: str) -> dict:
    for f in fields:
        if f["name"] == name:
            return f
    raise HwgenError(f"the payload has no field {name!r} (fields: {[f['name'] for f in fields]})")


def _put(value: int, width: int, signed: bool, what: str) -> int:
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if not lo <= value <= hi:
        raise HwgenError(f"{what} = {value} does not fit {width} {'signed ' if signed else ''}bits")
    return value & ((1 << width) - 1)


def _get(word: int, offset: int, width: int, signed: bool) -> int:
    v = (word >> offset) & ((1 << width) - 1)
    return v - (1 << width) if signed and v >> (width - 1) else v


def pack(fields: list[dict], values: dict) -> int:
    """Fields by name (ints, or sequences of ints for array fields) -> one payload integer."""
    word = 0
    for f in fields:
        if f["name"] not in values:
            raise HwgenError(f"payload field {f['name']!r} has no value")
        v = values[f["name"]]
        if "count" in f:
            v = list(v)
            if len(v) != f["count"]:
                raise HwgenError(
                    f"payload field {f['name']!r} needs {f['count']} values, not {len(v)}"
                )
            ew = f["element_width"]
            for k, e in enumerate(v):
                word |= _put(int(e), ew, f["signed"], f"{f['name']}[{k}]") << (f["offset"] + k * ew)
        else:
            word |= _put(int(v), f["width"], f["signed"], f["name"]) << f["offset"]
    return word


def unpack(fields: list[dict], word: int) -> dict:
    """One payload integer -> {field name: int or list of ints}."""
    out = {}
    for f in fields:
        if "count" in f:
            ew = f["element_width"]
            out[f["name"]] = [
                _get(word, f["offset"] + k * ew, ew, f["signed"]) for k in range(f["count"])
            ]
        else:
            out[f["name"]] = _get(word, f["offset"], f["width"], f["signed"])
    return out


def fields_of(layout, base: int = 0) -> list[dict]:
    """The manifest field list of an Amaranth payload layout (what `pack` / `unpack` take):
    ``{"name", "offset", "width", "signed"}``, arrays add ``count`` and ``element_width``."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    out = []
    for name, field in layout:
        shape = field.shape
        entry = {"name": name, "offset": base + field.offset}
        if isinstance(shape, data.ArrayLayout):
            elem = shape.elem_shape
            entry.update(
                count=shape.length,
                element_width=elem.width,
                signed=elem.signed,
                width=shape.size,
            )
        else:
            shape = Shape.cast(shape)
            entry.update(width=shape.width, signed=shape.signed)
        out.append(entry)
    return out


def as_fields(layout) -> list[dict]:
    """A payload's field list: ``layout`` as given when it is one already (a manifest's
    ``streams`` entry: the host needs no Amaranth), else `fields_of` of an Amaranth layout."""
    if isinstance(layout, (list, tuple)) and all(isinstance(f, dict) for f in layout):
        return list(layout)
    return fields_of(layout)


def payload_bytes(layout) -> int:
    """Bytes of one payload on the link: its bits (the highest field end) rounded up to bytes."""
    return -(-max((f["offset"] + f["width"] for f in as_fields(layout)), default=0) // 8)
