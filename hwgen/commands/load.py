"""``hwgen load``: write a model into a board running a loadable bitstream (no rebuild)."""

from __future__ import annotations

from .. import api
from ._common import command, emit, progress_for


def register(sub) -> None:
    p = command(sub, "load", "load a model into a board built with --weights spram / ram",
                "Write the model's weights, biases (and embedding) into a board whose bitstream "
                "keeps them in RAM ('hwgen build --weights spram' or ram), over the UART "
                "(docs/uart.md): the board verifies a CRC-32 over the whole load and refuses to "
                "compute until a load succeeds. Any model of the bitstream's shape (cell, sizes, "
                "encodings, scales, formats, lanes: the build folder's shape.json) loads; "
                "another shape is refused, naming every difference. A board that already holds "
                "the model is left as it is (--force loads anyway).", run,
                "model", "port", "baud", "timeout", "quiet")
    p.add_argument("--build", required=True, metavar="DIR",
                   help="the build folder of the bitstream on the board (its shape.json)")
    p.add_argument("--force", action="store_true", help="load even if the board holds the model")


def run(args) -> int:
    r = api.load(args.model, args.port, args.build, baud=args.baud, timeout=args.timeout,
                 force=args.force, progress=progress_for(args))
    if r.loaded:
        text = (f"loaded {r.words} words in {r.seconds:.1f} s; the board verified CRC-32 "
                f"0x{r.crc:08x} (shape 0x{r.shape_id:08x})")
    else:
        text = f"the board already holds this model (CRC-32 0x{r.crc:08x}); nothing written"
    emit(args, {"loaded": r.loaded, "words": r.words, "crc32": r.crc, "seconds": r.seconds,
                "shape_id": r.shape_id}, text,
         next_=[f"hwgen run {args.model} --port {args.port} --build {args.build} --inputs X.npy"])
    return 0
