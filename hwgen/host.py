"""Host side of the UART link (docs/uart.md): frames, stream payload packing, running sequences.

Layers, each usable alone:

- `Link` (`hwgen.uart.host_link`, re-exported here): requests and pipelined RUN frames over any
  pyserial-compatible port; every fault a `ProtocolError` naming the frame; no resends.
- `pack` / `unpack`: a payload layout to and from little-endian bytes, so the host never
  re-derives bit positions. A layout is the field list of a manifest
  (``manifest["streams"]["input"]["fields"]``; then nothing here imports Amaranth: a host with
  numpy and pyserial runs a board) or an Amaranth data layout (the accelerator's stream payloads,
  `hwgen.gateware.core.input_layout` / `output_layout`).
- `StreamHost`: runs sequences through a link in RUN frames (or one STEP frame per timestep), the
  first timestep of each sequence with the start-of-sequence flag.
- `first_mismatch`: where hardware and golden outputs differ (sequence, timestep, index).
"""

from __future__ import annotations

import numpy as np

from . import payload
from .spec import HwgenError
from .uart.host_link import DeviceInfo, Link, LoadStatus, _le
from .uart.protocol import Mode, ProtocolError

__all__ = [
    "DeviceInfo",
    "LoadStatus",
    "Link",
    "pack",
    "unpack",
    "StreamHost",
    "open_serial",
    "first_mismatch",
    "ProtocolError",
    "Mode",
]


# -- payload packing --------------------------------------------------------------------------
payload_bytes = payload.payload_bytes


def pack(layout, values: dict) -> bytes:
    """Top-level field name -> integer or integer sequence; returns the payload's bytes
    (little-endian), bit positions from `hwgen.payload` (the manifest's layout)."""
    fields = payload.as_fields(layout)
    unknown = set(values) - {f["name"] for f in fields}
    if unknown:
        names = ", ".join(f["name"] for f in fields)
        raise HwgenError(f"no field {sorted(unknown)[0]!r} in this payload ({names})")
    return payload.pack(fields, values).to_bytes(payload_bytes(layout), "little")


def unpack(layout, raw: bytes) -> dict[str, np.ndarray]:
    """The inverse of `pack`: top-level field name -> int64 array (scalars as shape (1,))."""
    word = int.from_bytes(bytes(raw), "little")
    return {
        k: np.atleast_1d(np.asarray(v, dtype=np.int64))
        for k, v in payload.unpack(payload.as_fields(layout), word).items()
    }


class StreamHost:
    """Runs sequences through a link: RUN frames (or one STEP per timestep), SOS on the first
    timestep of each sequence.

    ``in_layout`` must have a one-bit ``sos`` field and one data field (``x`` or ``token``).
    """

    MODES = ("all", "last", "classes", "step")

    def __init__(self, link: Link, in_layout, out_layout, *, check_device: bool = True):
        self.link, self.in_layout, self.out_layout = link, in_layout, out_layout
        groups = [f["name"] for f in payload.as_fields(in_layout)]
        if "sos" not in groups or len(groups) != 2:
            raise HwgenError("an input layout needs a 'sos' flag and one data field")
        self.data_field = next(n for n in groups if n != "sos")
        self.in_bytes, self.out_bytes = payload_bytes(in_layout), payload_bytes(out_layout)
        if check_device:
            info = link.ping()
            if (info.in_bytes, info.out_bytes) != (self.in_bytes, self.out_bytes):
                raise HwgenError(
                    f"the device was built for {info.in_bytes}-byte inputs and "
                    f"{info.out_bytes}-byte outputs; this model needs {self.in_bytes} and "
                    f"{self.out_bytes}: load the bitstream built for this model"
                )

    def step(self, x, sos: bool) -> dict[str, np.ndarray]:
        raw = self.link.step(pack(self.in_layout, {"sos": int(sos), self.data_field: x}),
                             self.out_bytes)
        return unpack(self.out_layout, raw)

    def run(self, inputs, mode: str | Mode = "all") -> dict[str, np.ndarray]:
        """``inputs`` (B, T, ...) -> output fields stacked as (B, T, n).

        ``mode``: ``"all"`` (default; RUN frames, every output transfer: logits and class),
        ``"classes"`` (RUN frames answering only the class: ``{"argmax": (B, T, 1)}``),
        ``"last"`` (frames end at sequence ends; each sequence's last output: (B, 1, n)) or
        ``"step"`` (one STEP frame per timestep, stop and wait, as protocol version 2)."""
        names = {Mode.ALL: "all", Mode.LAST: "last", Mode.CLASSES: "classes"}
        mode = names.get(mode, mode)
        if mode not in self.MODES:
            raise HwgenError(f"Run mode must be one of {', '.join(self.MODES)}, not {mode!r}")
        x = np.asarray(inputs)
        batch, steps = x.shape[:2]
        if mode == "step":
            out: dict[str, list] = {}
            for b in range(batch):
                for t in range(steps):
                    for name, v in self.step(x[b, t], t == 0).items():
                        out.setdefault(name, []).append(v)
            return {k: np.stack(v).reshape(batch, steps, -1) for k, v in out.items()}
        payloads = [pack(self.in_layout, {"sos": int(t == 0), self.data_field: x[b, t]})
                    for b in range(batch) for t in range(steps)]
        if mode == "classes":
            raw = self.link.run_steps(payloads, Mode.CLASSES)
            classes = np.array([_le(r) for r in raw], dtype=np.int64)
            return {"argmax": classes.reshape(batch, steps, 1)}
        if mode == "last":
            n = (self.link.info or self.link.ping()).max_steps
            per_seq = [min(n, steps - a) for a in range(0, steps, n)]
            raw = self.link.run_steps(payloads, Mode.LAST, frames=per_seq * batch)
            raw = raw[len(per_seq) - 1 :: len(per_seq)]
            steps = 1
        else:
            raw = self.link.run_steps(payloads, Mode.ALL)
        out = {}
        for r in raw:
            for name, v in unpack(self.out_layout, r).items():
                out.setdefault(name, []).append(v)
        return {k: np.stack(v).reshape(batch, steps, -1) for k, v in out.items()}


def open_serial(device: str, baud: int, timeout: float = 0.1):
    """Open a real serial port with pyserial (imported only here)."""
    try:
        import serial
    except ImportError:  # pragma: no cover - pyserial is a dependency
        raise HwgenError("pyserial is not installed: pip install pyserial==3.5") from None
    try:
        return serial.Serial(device, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError) as e:
        raise HwgenError(f"cannot open serial port {device}: {e}") from None


def first_mismatch(got: np.ndarray, want: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first differing element (sequence, timestep, index), or None if equal."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise HwgenError(f"output shapes differ: hardware {got.shape}, golden {want.shape}")
    diff = np.argwhere(got != want)
    return None if diff.size == 0 else tuple(int(i) for i in diff[0])
