"""What both simulators drive, drawn once: the preparation step and the stimulus.

The cocotb bench (`hwgen.cosim`, ``hwgen/benches/bench_accel.py``) and the compiled Verilator
harness (`hwgen.fastsim`) run the same `SimPlan` and must see every transfer on the same clock
edge. Both start with `prepare` (the manifest, the reference model with the model-hash check,
the sequences checked) and drive the one `Stimulus` that `draw` makes of the plan:

- ``ops``: the operation list, ``["x", payload_hex, idle_cycles]`` (one input transfer after that
  many idle cycles: with probability ``in_stall``, 1 .. `MAX_STALL` - 1 cycles), ``["reset",
  cycles]`` (wait until every output is in, then pulse reset) and ``["abort", cycles]`` (pulse
  reset right after the last accepted input, work in flight);
- ``out_stalls``: per output transfer, the cycles ready stays low before it (with probability
  ``out_stall``, 1 .. `MAX_STALL`), one more than there are inputs (the monitor draws before it
  waits for the next output);
- ``epochs`` and ``aborted``: per reset epoch the (sequence, timestep) of each input, and the
  epochs an abort cut short (their outputs may be a prefix).

The draws are those the cocotb bench made itself before (NumPy ``default_rng([seed, 7])`` for the
input idles, Python ``random.Random(seed)`` for the output stalls), so runs stay cycle for cycle
what they were for a given seed.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .golden import check_inputs
from .manifest import check_model_file, load_manifest
from .modelfile import load_model
from .payload import pack
from .spec import HwgenError, Model, TokenInput

__all__ = ["SimPlan", "Prepared", "Stimulus", "MAX_STALL", "prepare", "draw",
           "measured_cycles", "stream_ports"]

#: Longest output backpressure burst in cycles (input idles are at most one cycle shorter).
MAX_STALL = 12


@dataclass
class SimPlan:
    """What to drive: ``sequences`` (each (T, I) input codes or (T,) token ids); ``abort`` maps a
    sequence index to a timestep count after which reset hits with work in flight (the sequence is
    then replayed whole); ``reset_before`` holds sequence indices preceded by an idle reset;
    ``in_stall`` / ``out_stall`` are probabilities of random idle / backpressure bursts."""

    sequences: list[np.ndarray]
    abort: dict[int, int] = field(default_factory=dict)
    reset_before: set[int] = field(default_factory=set)
    in_stall: float = 0.0
    out_stall: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Prepared:
    """A simulation's inputs, checked: the folder, its manifest, the reference model and the
    plan with its sequences checked against the model (a copy: the caller's plan is unchanged)."""

    rtl_dir: Path
    manifest: dict
    model: Model
    plan: SimPlan


@dataclass(frozen=True)
class Stimulus:
    """The drawn stimulus of a plan (module docstring)."""

    ops: list
    epochs: list[list[tuple[int, int]]]
    aborted: frozenset[int]
    out_stalls: tuple[int, ...]

    @property
    def timesteps(self) -> int:
        """Input transfers in all."""
        return sum(len(e) for e in self.epochs)

    def inputs(self) -> list[tuple[int, int, int]]:
        """(sequence, timestep, epoch) of every input op, in plan order."""
        return [(n, t, e) for e, epoch in enumerate(self.epochs) for n, t in epoch]


def prepare(rtl_dir, plan: SimPlan, model: Model | None = None) -> Prepared:
    """The first step of both simulators: read ``rtl_dir``'s manifest, take ``model`` as the
    reference (default: the folder's model file, checked against the manifest's
    ``model_sha256``), check that its outputs are the RTL's and every sequence (at least one
    timestep each, codes in range). Raises `HwgenError` naming what is wrong."""
    rtl_dir = Path(rtl_dir).resolve()
    manifest = load_manifest(rtl_dir)
    if model is None:
        model = load_model(check_model_file(rtl_dir, manifest))
    if manifest["model"]["outputs"] != model.outputs:
        raise HwgenError(
            f"the reference model has {model.outputs} outputs; the RTL has "
            f"{manifest['model']['outputs']}"
        )
    seqs = [check_inputs(model, np.asarray(s)[None])[0] for s in plan.sequences]
    if not seqs or any(len(s) == 0 for s in seqs):
        raise HwgenError("every sequence needs at least one timestep")
    return Prepared(rtl_dir, manifest, model, dataclasses.replace(plan, sequences=seqs))


def stream_ports(manifest: dict) -> dict[str, str]:
    """The port a simulator drives or reads for each role, from the manifest: ``clk``, ``rst``,
    ``i_valid``, ``i_ready``, ``i_payload``, ``o_valid``, ``o_ready``, ``o_payload``."""
    si, so = manifest["streams"]["input"], manifest["streams"]["output"]
    ports = {"clk": manifest["clock"]["port"], "rst": manifest["reset"]["port"]}
    for side, stream in (("i", si), ("o", so)):
        ports.update({f"{side}_{k}": stream[k] for k in ("valid", "ready", "payload")})
    return ports


def draw(manifest: dict, model: Model, plan: SimPlan) -> Stimulus:
    """The stimulus of ``plan`` (module docstring): payloads packed with the manifest's input
    fields, idles and stalls drawn from ``plan.seed``."""
    fields = manifest["streams"]["input"]["fields"]
    token = isinstance(model.input, TokenInput)
    rng = np.random.default_rng([plan.seed, 7])
    ops, epochs, aborted = [], [[]], set()

    def idle():
        if plan.in_stall and rng.random() < plan.in_stall:
            return int(rng.integers(1, MAX_STALL))
        return 0

    def feed(n, seq, count):
        for t in range(count):
            v = {"sos": int(t == 0)}
            v["token" if token else "x"] = int(seq[t]) if token else seq[t].tolist()
            ops.append(["x", format(pack(fields, v), "x"), idle()])
            epochs[-1].append((n, t))

    for n, seq in enumerate(plan.sequences):
        if n in plan.reset_before:
            ops.append(["reset", 2])
            epochs.append([])
        if n in plan.abort:
            feed(n, seq, min(plan.abort[n], len(seq)))
            ops.append(["abort", 2])
            aborted.add(len(epochs) - 1)
            epochs.append([])
        feed(n, seq, len(seq))
    inputs = sum(len(e) for e in epochs)
    return Stimulus(ops, epochs, frozenset(aborted), _out_stalls(plan, inputs + 1))


def _out_stalls(plan: SimPlan, count: int) -> tuple[int, ...]:
    rng = random.Random(plan.seed)
    draws = []
    for _ in range(count):
        stall = plan.out_stall and rng.random() < plan.out_stall
        draws.append(rng.randint(1, MAX_STALL) if stall else 0)
    return tuple(draws)


def measured_cycles(plan: SimPlan, accepted: list[int]) -> tuple[float | None, list[int]]:
    """(steady cycles per timestep, gaps) from the cycles of the accepted inputs: the most common
    gap (a sequence boundary or a reset may add cycles); None with stalls or under two inputs."""
    if plan.in_stall or plan.out_stall or len(accepted) < 2:
        return None, []
    gaps = np.diff(np.asarray(accepted))
    vals, counts = np.unique(gaps, return_counts=True)
    return float(vals[np.argmax(counts)]), gaps.tolist()
