"""``hwgen run``: stream inputs through the accelerator over a serial port and check every output
against the golden model."""

from __future__ import annotations

import sys

import numpy as np

from ..golden import GoldenModel, quantize_inputs
from ..host import Link, StreamHost, first_mismatch, open_serial
from ..modelfile import load_model
from ..spec import HwgenError, TokenInput
from ._common import load_npy, positive_int

SIM_DIVISOR = 4


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run inputs on a board over UART and compare with the golden model",
        description="Send each timestep as a STEP frame (docs/uart.md), collect the logits and "
        "compare them with the golden model, bit for bit. --port sim runs the same board-level "
        "design (UART link + accelerator) in amaranth.sim instead of a real board.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm) the bitstream was built from")
    p.add_argument("--port", required=True, metavar="DEVICE",
                   help="serial device (e.g. /dev/ttyUSB1), or 'sim' for a simulated board")
    p.add_argument("--inputs", required=True, metavar="X.npy",
                   help="float inputs (batch, time, features) or token ids (batch, time)")
    p.add_argument("--baud", type=positive_int, default=115200, metavar="B",
                   help="baud rate (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="seconds to wait for each reply (default: %(default)s)")
    p.add_argument("--lanes", type=positive_int, default=4, metavar="P",
                   help="lanes of the simulated accelerator with --port sim (default: %(default)s)")
    p.add_argument("-o", "--output", metavar="Y.npy", help="write the hardware's logits here")
    p.set_defaults(func=run)


def run(args) -> int:
    model = load_model(args.model)
    x = load_npy(args.inputs)
    if isinstance(model.input, TokenInput):
        if not np.issubdtype(x.dtype, np.integer) or x.ndim != 2:
            raise HwgenError(f"{args.inputs}: a token model needs integer ids (batch, time)")
        codes = x.astype(np.int64)
    else:
        if x.ndim != 3 or x.shape[2] != model.input.features:
            raise HwgenError(f"{args.inputs}: has shape {x.shape}; this model needs "
                             f"(batch, time, {model.input.features})")
        codes, saturated = quantize_inputs(model, x)
        if saturated:
            print(f"hwgen: warning: {saturated} input values saturated", file=sys.stderr)
    from ..gateware.core import input_layout, output_layout

    if args.port == "sim":
        from ..gateware.core import Accelerator
        from ..uart.board import LinkedCore
        from ..uart.sim import SimSerial

        port = SimSerial(LinkedCore(Accelerator(model, args.lanes), SIM_DIVISOR), SIM_DIVISOR,
                         timeout=0.1)
        timeout = max(args.timeout, 30.0)  # simulated time runs ~10^4 x slower than a board
    else:
        port, timeout = open_serial(args.port, args.baud), args.timeout
    try:
        host = StreamHost(Link(port, timeout=timeout), input_layout(model), output_layout(model))
        out = host.run(codes)
    finally:
        port.close()
    logits = out["logits"]
    if args.output:
        np.save(args.output, logits)
    golden = GoldenModel(model).run(codes)
    bad = first_mismatch(logits, golden.logits)
    B, T = codes.shape[:2]
    if bad is not None:
        b, t, k = bad
        raise HwgenError(
            f"hardware and golden model differ: sequence {b}, timestep {t}, logit {k}: "
            f"hardware {logits[b, t, k]}, golden {golden.logits[b, t, k]}"
        )
    if "argmax" in out and first_mismatch(out["argmax"][..., 0], golden.classes) is not None:
        raise HwgenError("hardware and golden model agree on the logits but not on the argmax")
    print(f"{B} sequences x {T} timesteps: hardware logits equal the golden model's (bit-exact)")
    return 0
