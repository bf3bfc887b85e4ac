"""Soak: >= 10^6 randomized timesteps through generated Verilog, exact against the golden model.

A covering list of configurations (every cell type x every weight encoding, lane counts 1 / a
divisor / a non-divisor / all, vector and token inputs, one and two layers, argmax, a mixed
encoding head, two precisions) is generated into its own folder and run with the fast Verilator
path (hwgen.fastsim) in chunks: random sequences (lengths 1..48), random input idles and output
backpressure, idle resets between sequences and resets with work in flight. Every output is
compared with the golden model by exact equality.

Progress is checkpointed after every chunk in a JSON file (default: soak_out/checkpoint.json);
rerunning the same command resumes where it stopped. When the target is reached the totals are
written to docs/performance.md (block soak) with --record.

Usage: nice -n 19 python benchmarks/soak.py [--timesteps 1000000] [--out soak_out] [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.cosim import SimPlan  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.fastsim import fastsim  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats, TokenInput  # noqa: E402

CELLS = ("rnn", "gru", "lstm")
ENCODINGS = ("binary", "ternary", "pow2", "exp", "int8")


@dataclass(frozen=True)
class Config:
    """One generated design of the soak."""

    cell: str
    quant: str
    inputs: int
    hidden: int
    outputs: int
    layers: int
    tokens: int | None
    argmax: bool
    bits: int
    lanes: int
    head_quant: str | None = None
    state: str = "auto"  # where h (and c) live: "auto" (registers at these sizes) or "ram"

    @property
    def name(self) -> str:
        tok = f"-tok{self.tokens}" if self.tokens else ""
        head = f"-head{self.head_quant}" if self.head_quant else ""
        state = "" if self.state == "auto" else f"-{self.state}"
        return (
            f"{self.cell}-{self.quant}{head}-i{self.inputs}-h{self.hidden}-o{self.outputs}"
            f"-l{self.layers}{tok}{'-argmax' if self.argmax else ''}-b{self.bits}-P{self.lanes}"
            f"{state}"
        )

    def model(self, seed: int):
        cell = CellKind(self.cell)
        p = random_float_params(cell, self.inputs, self.hidden, self.outputs,
                                layers=self.layers, tokens=self.tokens, seed=seed)
        head = QuantConfig.parse(self.head_quant) if self.head_quant else None
        return freeze(p, QuantConfig.parse(self.quant),
                      Formats.standard(self.bits, lstm=cell is CellKind.LSTM),
                      head_quant=head, argmax=self.argmax, rng=seed)


def configurations(seed: int = 13, rounds: int = 2) -> list[Config]:
    """The covering list: every cell x every encoding, ``rounds`` times, each time with other
    sizes, lanes (1 / a divisor of H / a non-divisor / all, in turn) and options."""
    rng = np.random.default_rng(seed)
    out = []
    pairs = [(c, q) for c in CELLS for q in ENCODINGS]
    for r in range(rounds):
        for i, (cell, quant) in enumerate(pairs):
            j = i + r * len(pairs)
            inputs, hidden = int(rng.integers(2, 7)), int(rng.integers(3, 11))
            width = max(inputs, hidden)
            divisors = [d for d in range(2, width) if hidden % d == 0] or [2]
            lanes = (1, int(rng.choice(divisors)), 3 if hidden % 3 else 4, width)[(i + r) % 4]
            out.append(Config(
                cell, quant, inputs, hidden, int(rng.integers(2, 6)), 1 + (j % 3 == 2),
                int(rng.integers(5, 20)) if j % 4 == 1 else None, j % 2 == 0,
                8 if j % 5 else 6, min(lanes, width),
                head_quant="int8" if quant in ("binary", "exp") and j % 2 else None,
                state="ram" if (i // 2 + r) % 2 else "auto",
            ))
    return out


def chunk_plan(cfg: Config, model, seed: int, timesteps: int) -> SimPlan:
    """Random sequences totalling about ``timesteps``, with random stalls and resets."""
    rng = np.random.default_rng(seed)
    seqs, total = [], 0
    while total < timesteps:
        T = int(rng.integers(1, 49))
        if isinstance(model.input, TokenInput):
            seqs.append(rng.integers(0, model.input.vocab, T))
        else:
            fmt = model.formats.input
            seqs.append(rng.integers(fmt.min_code, fmt.max_code + 1, (T, model.input.features)))
        total += T
    n = len(seqs)
    reset_before = {k for k in range(1, n) if rng.random() < 0.1}
    abort = {k: int(rng.integers(1, len(seqs[k]) + 1)) for k in range(n) if rng.random() < 0.1}
    return SimPlan(seqs, abort=abort, reset_before=reset_before,
                   in_stall=float(rng.choice([0.0, 0.05, 0.3])),
                   out_stall=float(rng.choice([0.0, 0.1, 0.5])), seed=seed)


def run_soak(out: Path, target: int, chunks: int, configs: list[Config] | None = None,
             log=print) -> dict:
    """Run (or resume) the soak into ``out``; returns the checkpoint dict (its ``totals``)."""
    out.mkdir(parents=True, exist_ok=True)
    ck_path = out / "checkpoint.json"
    configs = configs or configurations()
    ck = json.loads(ck_path.read_text()) if ck_path.is_file() else {}
    if ck.get("target") != target or ck.get("chunks") != chunks:
        ck = {"target": target, "chunks": chunks, "done": {}, "failures": [],
              "configs": [asdict(c) for c in configs]}
    per_chunk = -(-target // (len(configs) * chunks))
    for ci, cfg in enumerate(configs):
        rtl = out / cfg.name
        model = None
        for k in range(chunks):
            key = f"{cfg.name}#{k}"
            if key in ck["done"]:
                continue
            if model is None:
                model = cfg.model(seed=ci)
                generate(model, rtl / "rtl", lanes=cfg.lanes, state=cfg.state)
            plan = chunk_plan(cfg, model, seed=1000 * ci + k, timesteps=per_chunk)
            t0 = time.perf_counter()
            r = fastsim(rtl / "rtl", plan, build_dir=rtl / "build")
            ck["done"][key] = {
                "timesteps": r.timesteps, "cycles": r.cycles, "ok": r.ok,
                "sim_cpu_s": round(r.sim_cpu_s, 3), "wall_s": round(time.perf_counter() - t0, 2),
                "build_s": round(r.build_s, 1),
                "in_stall": plan.in_stall, "out_stall": plan.out_stall,
                "resets": len(plan.reset_before), "aborts": len(plan.abort),
            }
            # back to back (no stalls): the measured cycles per timestep must be the manifest's
            cpt_ok = r.cycles_per_timestep in (None, r.manifest_cycles_per_timestep)
            ck["done"][key]["ok"] = r.ok and cpt_ok
            if not (r.ok and cpt_ok):
                ck["failures"].append(f"{key}: {r.summary()}")
            ck["totals"] = _totals(ck)
            ck_path.write_text(json.dumps(ck, indent=1))
            t = ck["totals"]
            log(f"{key}: {r.summary()} | total {t['timesteps']:,} timesteps, "
                f"{t['mismatches']} mismatches")
    return ck


def _totals(ck: dict) -> dict:
    done = ck["done"].values()
    names = {k.split("#")[0] for k in ck["done"]}
    return {
        "timesteps": sum(d["timesteps"] for d in done),
        "cycles": sum(d["cycles"] for d in done),
        "configurations": len(names),
        "chunks": len(ck["done"]),
        "mismatches": sum(not d["ok"] for d in done),
        "resets": sum(d["resets"] for d in done),
        "aborts": sum(d["aborts"] for d in done),
        "sim_cpu_s": round(sum(d["sim_cpu_s"] for d in done), 1),
        "build_s": round(sum(d["build_s"] for d in done), 1),
    }


def _record(ck: dict, commit: str) -> None:
    t = ck["totals"]
    cfgs = [Config(**c) for c in ck["configs"]]
    cells = sorted({c.cell for c in cfgs})
    encs = sorted({c.quant for c in cfgs} | {c.head_quant for c in cfgs if c.head_quant})
    lanes = sorted({c.lanes for c in cfgs})
    in_ram = sum(c.state == "ram" for c in cfgs)
    text = "\n".join([
        "| timesteps | configurations | chunks | cycles | resets (idle / in flight) | "
        "mismatches | simulator CPU | builds |",
        "|---|---|---|---|---|---|---|---|",
        f"| {t['timesteps']:,} | {t['configurations']} | {t['chunks']} | {t['cycles']:,} | "
        f"{t['resets']:,} / {t['aborts']:,} | {t['mismatches']} | {t['sim_cpu_s']:.0f} s | "
        f"{t['build_s']:.0f} s |",
        "",
        f"Cells {', '.join(cells)}; encodings {', '.join(encs)}; lanes {lanes}; vector and token "
        f"inputs, 1-2 layers, hidden 3-10, with and without argmax, 6- and 8-bit formats; "
        f"state in block RAM (`--state ram`) in {in_ram} of the {len(cfgs)} configurations, "
        f"in registers (`auto` at these sizes) in the others. "
        f"Random sequences of 1-48 timesteps; per chunk an input idle probability of 0 / 0.05 / "
        f"0.3 and an output backpressure probability of 0 / 0.1 / 0.5; about 10% of sequences "
        f"preceded by an idle reset and 10% cut by a reset with work in flight (replayed whole). "
        f"'mismatches': chunks with an output that differs from the golden model, a wrong output "
        f"count, a timeout or (back to back) a cycle count other than the manifest's. "
        f"Run with the fast path on {commit}; "
        f"{versions('verilator', 'amaranth')}.",
    ])
    write_block("performance.md", "soak", text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=1_000_000)
    ap.add_argument("--chunks", type=int, default=6, help="chunks per configuration")
    ap.add_argument("--out", default="soak_out", help="work and checkpoint folder")
    ap.add_argument("--record", action="store_true", help="write the totals into docs/")
    ap.add_argument("--commit", default="", help="the commit/core the run used (for the record)")
    args = ap.parse_args()
    ck = run_soak(Path(args.out), args.timesteps, args.chunks)
    t = ck["totals"]
    print(json.dumps(t))
    for f in ck["failures"]:
        print("FAIL", f)
    if args.record:
        _record(ck, args.commit or "this checkout")
    sys.exit(1 if ck["failures"] else 0)


if __name__ == "__main__":
    main()
