"""The manifest of a delta core (docs/manifest.md, "Delta cores"; issue 23): what
`hwgen.export.build_manifest` writes differently for `DeltaAccelerator`.

- ``timing``: `hwgen.delta.schedule.DeltaSchedule.to_json` (the worst case as
  ``cycles_per_timestep``, the cycles formula's coefficients under ``timing.delta``);
- ``memory``: the dense core's description of the matrices, tables and biases, with the delta
  core's own memories: column-major weight ROMs, the delta memories M_x / M_h, the encoders'
  hat stores, the head's memory and, with ``--state ram``, the block-RAM state (`delta_memory`);
  ``memory.state`` says where h (and c) live and the encoder's lanes;
- ``delta``: the thresholds and the debug counters ``hwgen sim`` reads (`delta_section`).
"""

from __future__ import annotations

from ..numerics import derive_widths
from .design import encoder_lanes, head_lanes, state_in_ram
from .golden import delta_widths
from .resources import state_memories

__all__ = ["delta_memory", "delta_section", "COUNTER_PORTS"]

#: The delta core's debug counters (`DeltaAccelerator` members) by what they count.
COUNTER_PORTS = {"columns": "columns", "cycles": "cycles"}


def _mem(name, kind, width, depth) -> dict:
    return {"name": name, "kind": kind, "width": int(width), "depth": int(depth),
            "bits": int(width) * int(depth)}


def delta_memory(accel, dense: dict) -> dict:
    """The manifest's ``memory`` of the delta core ``accel``, from the dense description
    ``dense`` (`hwgen.export._memory` of the same plan): its matrices, tables and bias entries
    stay; the weight memories, the state and the memory list are the delta core's."""
    model, plan = accel.model, accel.plan
    P, G, H, NO = plan.lanes, model.cell.num_gates, model.hidden, model.outputs
    ph = head_lanes(plan)
    R, Ro = -(-G * H // P), -(-NO // ph)
    mats = plan.matrices
    roms, mems = [], []
    kind = "ram" if plan.loadable else "rom"  # a loadable core's (hwgen.delta.loadable)
    for mid in sorted(mats):
        mp = mats[mid]
        rows, cols = mp.matrix.shape
        lanes = ph if mid == 2 * model.num_layers + 1 else P  # the head's
        words = -(-rows // lanes)
        rom = _mem(f"{mp.name}_columns", kind, lanes * mp.matrix.encoding.bits, cols * words)
        roms.append({**rom, "encoding": mp.matrix.encoding.to_json(), "matrices": [mp.name],
                     "order": "column-major: word j*R + k holds rows k*P .. k*P+P-1 of "
                              "column j", "payload_bits": mp.matrix.memory_bits})
    pe = encoder_lanes(plan)
    for i, w in enumerate(delta_widths(model)):
        vw = max(model.layer_input_format(i).width, model.formats.state.width)
        chunks = -(-model.layer_input_width(i) // pe) + -(-H // pe)
        mems += [_mem(f"layer{i}_m_x", "ram", P * w.mx_width, R),
                 _mem(f"layer{i}_m_h", "ram", P * w.mh_width, R),
                 _mem(f"layer{i}_hats", "ram", pe * vw, chunks)]
    mems.append(_mem("head_m", "ram", ph * derive_widths(model).head_acc_width, Ro))
    mems += [_mem(x.name, x.kind, x.width, x.depth) for x in state_memories(model, plan)]
    if state_in_ram(plan):
        state = {"state": "ram", "state_option": "ram", "encoder_lanes": pe, "head_lanes": ph,
                 "note": f"h (and c) of every layer in block RAM, two banks of {pe} values a "
                         "word, swapped every timestep; the encoder compares a word a cycle"}
    else:
        state = {"state": "registers", "state_option": "registers", "encoder_lanes": pe,
                 "head_lanes": ph,
                 "note": "h (and c) of every layer, old and new, in flip-flops"}
    out = {k: v for k, v in dense.items() if k in ("weight_payload_bits", "matrices", "tables",
                                                  "embedding_bits", "bias_entries")}
    out.update({
        "weight_rom_bits": sum(r["bits"] for r in roms),
        "weight_roms": roms,
        "weights": str(plan.weights),
        "state": state,
        "memories": [{k: r[k] for k in ("name", "kind", "width", "depth", "bits")}
                     for r in roms] + mems,
    })
    return out


def delta_section(accel) -> dict:
    """The manifest's ``delta`` section: thresholds and the debug counter ports."""
    return {
        "core": "delta-v1",
        "thresholds": accel.model.delta.to_json(),
        "counters": {
            "ports": dict(COUNTER_PORTS),
            "width": 32,
            "columns": "processed columns since reset (wrapping); per timestep it equals the "
                       "golden model's count (hwgen.delta.DeltaStats)",
            "cycles": "working cycles since reset (wrapping): all but the cycles waiting for "
                      "an input or for the output to be taken; read in an output's transfer "
                      "cycle it lacks that cycle",
        },
    }
