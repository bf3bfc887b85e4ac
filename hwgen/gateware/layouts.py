"""The accelerator's stream payloads: what one input transfer and one output transfer carry.

Shared by the core (`core.Accelerator`), its sequencer (`sequencer.Sequencer`, which takes the
input transfer) and the host side (`hwgen.host` packs and unpacks the same layouts).
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from ..numerics import derive_widths
from ..spec import Model, TokenInput
from .plan import uint_bits

__all__ = ["input_layout", "output_layout"]


def input_layout(model: Model) -> data.StructLayout:
    """i_stream payload: ``sos`` (bit 0) then ``x`` (I signed input-format codes, element k at
    bits 1 + k*width) or ``token`` (unsigned id)."""
    if isinstance(model.input, TokenInput):
        return data.StructLayout({"sos": 1, "token": unsigned(uint_bits(model.input.vocab))})
    fmt = model.formats.input
    return data.StructLayout(
        {"sos": 1, "x": data.ArrayLayout(signed(fmt.width), model.input.features)}
    )


def output_layout(model: Model) -> data.StructLayout:
    """o_stream payload: ``logits`` (O signed codes, output_frac fraction bits, logit k at bits
    k*width) then, with argmax, ``argmax`` (unsigned class index, lowest index on ties)."""
    w = derive_widths(model).logit_width
    fields = {"logits": data.ArrayLayout(signed(w), model.outputs)}
    if model.head.argmax:
        fields["argmax"] = unsigned(uint_bits(model.outputs))
    return data.StructLayout(fields)
