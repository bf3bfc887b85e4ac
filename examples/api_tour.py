"""The pipeline from Python: model -> golden inference -> estimate -> Verilog -> simulation.

    .venv/bin/python examples/api_tour.py [OUT_DIR] [--full]

Runs in a few seconds (Icarus, a small random model); --full also synthesizes for the iCE40 UP5K
and builds an iCEBreaker bitstream (minutes). tests/test_examples.py runs it. docs/api.md explains
every call.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from hwgen import HwgenError, api
from hwgen.progress import Progress


def main(out: Path, full: bool) -> None:
    # 1. a model: random here; api.train("digits", hidden=32) trains one (PyTorch),
    #    api.load_model("m.hwgm") reads a file
    model = api.random_model("gru", inputs=6, hidden=8, outputs=3, quant="ternary", seed=1)
    api.save_model(model, out / "m.hwgm")

    # 2. golden inference on real-valued features: quantized by the model's input format
    #    (and normalized first when the model stores a normalization)
    x = np.random.default_rng(0).normal(0.0, 1.0, (4, 5, 6))
    result = api.golden(model, features=x)
    print("golden classes at the last step:", result.classes[:, -1].tolist(),
          f"({result.saturated} values saturated)")
    codes = api.quantize(model, x).codes  # the same codes the hardware will see
    assert np.array_equal(api.golden(model, codes=codes).logits, result.logits)

    # 3. integer codes given as floats are refused, not truncated
    try:
        api.golden(model, codes=codes.astype(np.float64))
    except HwgenError as e:
        print("refused:", e)

    # 4. size for a board: the UART link counted, lanes chosen, time at the board clock
    size = api.estimate(model, board="icebreaker")
    print(f"icebreaker: {size.lanes} lanes, fits {size.fits}, "
          f"{size.us_per_timestep:.2f} us per timestep at {size.clock_mhz:g} MHz")

    # 5. Verilog, then the Verilog in a simulator against the golden model, exactly
    manifest = api.generate(model, out / "rtl", lanes=size.lanes)
    print("cycles per timestep:", manifest["timing"]["cycles_per_timestep"])
    report = api.simulate(out / "rtl", features=x, simulator="icarus", progress=Progress())
    print(report.summary())
    assert report.ok

    if full:  # 6. the real tools (minutes)
        synth = api.synthesize(out / "rtl", "ice40-up5k", seeds=1, progress=Progress())
        print(f"UP5K: {synth.luts} LUT4, Fmax {synth.fmax_mhz} MHz")
        build = api.build(model, "icebreaker", out / "build", progress=Progress())
        print("bitstream:", build.bitstream)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--full"]
    if args:
        folder = Path(args[0])
        folder.mkdir(parents=True, exist_ok=True)
        main(folder, "--full" in sys.argv)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp), "--full" in sys.argv)
