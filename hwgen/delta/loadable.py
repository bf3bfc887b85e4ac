"""Loadable delta cores (issue 23, ``--weights ram``): what a delta bitstream loads, and what it
fixes (docs/delta.md, "Loadable weights"; docs/manifest.md, "load").

A loadable delta core is the delta core of its shape's capacity model (`hwgen.shape`, as a
loadable dense core: every weight at its encoding's largest magnitude, every bias at the largest
``bias_bits`` hold, so its widths hold any model of the shape), with its model memories written
at run time through the dense core's load port (`hwgen.gateware.loadable`,
`hwgen.gateware.delta_weights`). Loaded, in load-port index order (`delta_load_images`):

- per layer l: ``layer<l>_wx`` and ``layer<l>_wh``, the weight codes column-major as the column
  update reads them (`hwgen.gateware.delta_update.column_words`: word ``j*R + k`` holds the codes
  of rows ``k*P .. k*P+P-1`` of column j in the plan's row order, R = ceil(G*H / P)), then
  ``layer<l>_rows``, one word per gate row in that order (`hwgen.gateware.delta_cell.row_layout`:
  its input-part bias, its recurrent-part bias (a GRU n row's b_hn, else 0), gate, unit);
- ``head_w``: the head's codes column-major on the head's lanes (`hwgen.delta.design.head_lanes`,
  rows in natural order), ``head_bias``: one bias a word.

Fixed by the bitstream (the shape, `hwgen.shape.shape_of`, with the thresholds under ``delta``):
sizes, cell, encodings and scales (the scalers are constants), formats and tables, lanes, state
storage, bias width, and the delta thresholds theta_x / theta_h (constants of the encoders'
comparisons). A model that differs in any of them is refused naming each difference
(`hwgen.shape.shape_differences`).

Only ``ram``: ``spram`` is refused (`SPRAM_REASON`). Where synthesis puts the memories:
`loadable_placement`.
"""

from __future__ import annotations

from ..spec import HwgenError

__all__ = ["SPRAM_REASON", "delta_load_images", "check_delta_weights", "loadable_placement",
           "image_layouts"]

#: Why the delta core takes no ``--weights spram`` (module docstring).
SPRAM_REASON = (
    "the delta core reads every matrix's weight columns from its own memory, the input and "
    "recurrent updates and the head in the same cycles, so it needs one single-port RAM per "
    "matrix (2 per layer and the head's); the UP5K has 4 SPRAM blocks of 16-bit words, and "
    "a delta core's weight memories are small (a column of codes per word) and fit its block "
    "RAM: use --weights ram")


def check_delta_weights(weights: str) -> None:
    """Refuse ``spram`` for the delta core (`SPRAM_REASON`); ``rom`` and ``ram`` pass."""
    if weights == "spram":
        raise HwgenError("this model is a delta network; the delta core does not support "
                         f"--weights spram: {SPRAM_REASON}")


def delta_load_images(plan, model=None) -> list:
    """The load images of the delta core of ``plan`` (`hwgen.delta.design.delta_plan`, its
    ``delta`` flag set) holding ``model``'s weights and biases (default: the plan's own model;
    another model of the same shape for a load, `hwgen.shape.load_images`, which checks the
    shape first): `plan.LoadImage` list in load-port index order (module docstring)."""
    from ..gateware.delta_cell import row_layout
    from ..gateware.delta_update import column_words
    from ..gateware.delta_weights import image_name, row_words
    from ..gateware.plan import LoadImage, signed_words
    from .design import head_lanes

    model = plan.model if model is None else model
    P, L = plan.lanes, model.num_layers
    layout = row_layout(plan)
    out = []

    def add(name, width, words):
        out.append(LoadImage(len(out), name, int(width), tuple(int(w) for w in words), False))

    for i in range(L):
        for mid, mat in ((2 * i, model.layers[i].wx), (2 * i + 1, model.layers[i].wh)):
            mp = plan.matrices[mid]
            add(image_name(mp.name), P * mat.encoding.bits,
                column_words(mat, P, mp.row_order))
        add(f"layer{i}_rows", layout.size,
            [layout.const(r).as_value().value for r in row_words(plan, i, model)])
    w = model.head.w
    add("head_w", head_lanes(plan) * w.encoding.bits, column_words(w, head_lanes(plan)))
    add("head_bias", plan.bias_width, signed_words(list(model.head.bias), plan.bias_width))
    return out


def loadable_placement(mem, family) -> str | None:
    """Where synthesis puts a memory of a loadable delta core that `hwgen.delta.resources`
    places differently from a ROM core's (`hwgen.gateware.delta_weights`): the weight columns
    in block RAM (``ram_style`` block: their word is registered right after the read), the row
    memory (read asynchronously into a multiplexer) in distributed RAM on ECP5 and flip-flops
    on iCE40, the head's biases in flip-flops; None for any other memory."""
    from ..targets import Family

    if mem.kind == "rom":
        return None
    if mem.name.endswith("_columns"):
        return "bram"
    if mem.name.endswith("_rows"):
        return "lutram" if family is Family.ECP5 else "logic"
    return "logic" if mem.name == "head_bias" else None


def image_layouts(plan) -> dict:
    """Per load image of the delta core of ``plan`` (by name): what the manifest's ``load``
    section adds to it so that an independent testbench can lay out another model's words:
    ``layout`` (a sentence) and, for a row memory, ``fields`` (its word's fields, as a stream
    payload's: `hwgen.payload.fields_of`)."""
    from ..gateware.delta_cell import row_layout
    from ..gateware.delta_weights import image_name
    from ..payload import fields_of
    from .design import head_lanes

    model = plan.model
    head_id = 2 * model.num_layers + 1
    issue = "row g*H + u at position u*G + g (unit-major, G gates, H units)"
    out = {}
    for mid in sorted(plan.matrices):
        mp = plan.matrices[mid]
        P = head_lanes(plan) if mid == head_id else plan.lanes
        enc = mp.matrix.encoding
        R = -(-mp.matrix.shape[0] // P)
        order = "rows in natural order" if mid == head_id else issue
        out[image_name(mp.name)] = {"layout": (
            f"{mp.name} column-major, {P} {enc.bits}-bit {enc.kind.value} codes a word: word "
            f"j*{R} + k holds positions k*{P} .. k*{P}+{P - 1} of column j, position k*{P}+i "
            f"in bits i*{enc.bits} .. i*{enc.bits}+{enc.bits - 1} ({order}; positions past the "
            "last row: code 0)")}
    for i in range(model.num_layers):
        out[f"layer{i}_rows"] = {
            "layout": f"one word per gate row of layer {i}, word p for position p ({issue}): "
                      "bias_x its input-part bias, bias_h its recurrent-part bias (b_hn on a "
                      "GRU's n rows, else 0), gate g, unit u",
            "fields": fields_of(row_layout(plan))}
    out["head_bias"] = {"layout": f"word o: the bias of output o, {plan.bias_width}-bit two's "
                                  "complement"}
    return out
