"""The first delta accelerator's Verilog in Icarus Verilog: stream sequences through it, with
random input gaps and output stalls and, optionally, resets before chosen sequences; returns
every logit (docs/delta.md). Needs ``iverilog`` / ``vvp`` on the PATH and Amaranth's Verilog
export (Yosys); the design builds with ``-g2005`` (docs/simulation.md, "Traps")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..numerics import derive_widths
from ..spec import HwgenError, Model

__all__ = ["icarus_run"]

BENCH = """
`timescale 1ns/1ps
module bench;
  reg clk = 0, rst = 1;
  always #5 clk = ~clk;
  reg [{iw}-1:0] stim [0:{n}-1];
  reg resets [0:{n}-1];
  reg did_reset = 0;
  reg in_valid = 0, out_ready = 0;
  reg [{iw}-1:0] in_payload = 0;
  wire in_ready, out_valid, columns;
  wire [{ow}-1:0] out_payload;
  integer i = 0, got = 0, f, seed = {seed};
  delta_top dut(.clk(clk), .rst(rst), .i_stream__valid(in_valid), .i_stream__ready(in_ready),
    .i_stream__payload(in_payload), .o_stream__valid(out_valid), .o_stream__ready(out_ready),
    .o_stream__payload(out_payload), .columns(columns));
  initial begin
    $readmemh("stim.hex", stim);
    $readmemb("resets.bin", resets);
    f = $fopen("out.txt", "w");
    repeat (3) @(posedge clk);
    rst <= 0;
  end
  always @(posedge clk) if (!rst) begin
    out_ready <= ($random(seed) & 3) != 0;
    if (out_valid && out_ready) begin
      $fdisplay(f, "%h", out_payload);
      got = got + 1;
      if (got == {n}) begin $fclose(f); $finish; end
    end
    if (in_valid && in_ready) begin
      in_valid <= 0;
      i = i + 1;
    end else if (!in_valid && i < {n} && (($random(seed) & 3) != 0)) begin
      if (resets[i] && !did_reset) begin
        if (got == i) begin  // a reset between sequences, once every earlier output is out
          rst <= 1;
          @(posedge clk);
          @(posedge clk);
          rst <= 0;
          did_reset <= 1;
        end
      end else begin
        in_payload <= stim[i];
        in_valid <= 1;
        did_reset <= 0;
      end
    end
  end
  initial begin #{timeout}; $display("TIMEOUT after %0d outputs", got); $finish; end
endmodule
"""



def icarus_run(model: Model, lanes: int, sequences, workdir, *, seed: int = 1,
               resets=(), timeout_s: float = 3600) -> np.ndarray:
    """Logits (total timesteps, outputs) of `DeltaAccelerator` (``model``, ``lanes``) on
    ``sequences`` (each (T, features) input codes, run from a start of sequence), simulated in
    Icarus from the Verilog in ``workdir``; a reset precedes each sequence index in ``resets``
    (once every earlier output is out)."""
    from amaranth.back import verilog

    from ..gateware.delta_core import DeltaAccelerator

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise HwgenError("Icarus Verilog (iverilog, vvp) is not on the PATH")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    fmt, F, n_out = model.formats.input, model.input.features, model.outputs
    lw = derive_widths(model).logit_width
    words, flags = [], []
    for s_i, s in enumerate(sequences):
        for t, v in enumerate(np.asarray(s)):
            w = int(t == 0)
            for k, a in enumerate(v):
                w |= (int(a) & ((1 << fmt.width) - 1)) << (1 + k * fmt.width)
            words.append(w)
            flags.append(int(t == 0 and s_i in resets))
    n = len(words)
    (work / "stim.hex").write_text("\n".join(f"{w:x}" for w in words) + "\n")
    (work / "resets.bin").write_text("\n".join(str(r) for r in flags) + "\n")
    dut = DeltaAccelerator(model, lanes)
    (work / "delta_top.v").write_text(verilog.convert(dut, name="delta_top"))
    (work / "bench.v").write_text(BENCH.format(iw=1 + F * fmt.width, ow=n_out * lw, n=n, seed=seed,
                                               timeout=n * 200_000))  # 20,000 cycles a step
    subprocess.run(["iverilog", "-g2005", "-o", "sim", "bench.v", "delta_top.v"], cwd=work,
                   check=True, capture_output=True)
    run = subprocess.run(["vvp", "-n", "sim"], cwd=work, capture_output=True, text=True,
                         timeout=timeout_s)
    if "TIMEOUT" in run.stdout:
        raise HwgenError(f"Icarus: {run.stdout.strip()}")
    rows = []
    for line in (work / "out.txt").read_text().split():
        v = int(line, 16)
        row = [(v >> (k * lw)) & ((1 << lw) - 1) for k in range(n_out)]
        rows.append([x - (1 << lw) if x >> (lw - 1) else x for x in row])
    return np.array(rows, np.int64).reshape(-1, n_out)
