"""Results of an exploration, rendered from its folder alone (``hwgen explore --report DIR``).

`render` reads the settings and the trial records (`hwgen.explore.store`), computes every
design's estimate (`hwgen.explore.designs`), marks the Pareto fronts, picks the recommended
design per objective and writes:

- ``trials.csv`` and ``trials.json``: one row per design (trial x lane count) and one per trial
  that failed or was stopped early, with its error; ``trials.json`` also holds the settings, the
  recommendations and the run history;
- ``front_logic.png``, ``front_ram.png``, ``front_latency.png``: valid metric against logic, RAM
  blocks and microseconds per timestep, every design drawn, the front joined, the
  recommendations starred (needs matplotlib, in the ``explore`` extra);
- ``summary.md``: the recommendations with the commands that train and build them.

Needs neither Ray nor PyTorch.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..modelfile import load_model
from ..spec import HwgenError
from ..targets import get_target
from .designs import (
    COSTS,
    OBJECTIVES,
    Platform,
    build_command,
    design_rows,
    failed_row,
    logic_label,
    mark_fronts,
    recommend,
    train_command,
)
from .store import Store

__all__ = ["COLUMNS", "Rendered", "collect", "render", "format_summary", "synth_current"]

#: Columns of trials.csv, in order.
COLUMNS = (
    "trial", "label", "status", "cell", "quant", "hidden", "layers", "budget", "seed", "lanes",
    "metric", "valid", "test", "test_float", "train_seconds", "weight_bits", "zero_fraction",
    "cycles", "cycles_worst", "clock_mhz", "us_per_timestep", "luts", "ffs", "logic_cells",
    "bram", "dsp",
    "link_luts", "link_ffs", "uart_us_per_timestep", "board_us_per_timestep",
    "fits", "fast_enough", "feasible", "front_logic", "front_ram", "front_latency",
    "synth_luts", "synth_ffs", "synth_bram", "synth_dsp", "synth_fmax_mhz", "meets_clock",
    "problems", "error", "model", "build_command", "train_command",
)


@dataclass
class Rendered:
    """What `collect` computes: the rows, the recommendations and the settings they came from."""

    settings: dict
    platform: Platform
    rows: list[dict]
    recommendations: dict[str, dict | None]
    missing: list[str]  # trial hashes of the space without a record yet

    @property
    def higher_is_better(self) -> bool:
        return self.settings["dataset"]["kind"] != "charlm"


def _design_name(row: dict) -> str:
    return f"{row['cell']}{row['hidden']}-{row['quant']}-p{row['lanes']}-{row['trial'][:6]}"


def collect(root) -> Rendered:
    """Rows, fronts and recommendations of the exploration in folder ``root``."""
    store = Store(root)
    settings = store.load_settings()
    plat = Platform(**settings["platform"])
    higher = settings["dataset"]["kind"] != "charlm"
    charlm = not higher
    rows, missing = [], []
    for t in settings["trials"]:
        rec = store.load_record(t["hash"])
        if rec is None:
            missing.append(t["hash"])
            continue
        if rec["status"] != "ok":
            rows.append(failed_row(rec))
            continue
        mpath = store.model_path(t["hash"])
        try:
            model = load_model(mpath)
        except HwgenError as e:
            rows.append(failed_row({**rec, "status": "error", "error": f"model file: {e}"}))
            continue
        shown = str(mpath)
        for row in design_rows(rec, model, plat, settings["lanes"], settings.get("max_latency_us")):
            row["model"] = shown
            row["build_command"] = build_command(plat, shown, row["lanes"], _design_name(row))
            syn = store.load_synth(t["hash"], row["lanes"], plat.target)
            if syn is not None and not synth_current(syn, row["cycles_worst"]):
                row["problems"] = "; ".join(x for x in (
                    row["problems"], "synthesis result is of an older accelerator (other cycles "
                    "per timestep): run with --synth again") if x)
            elif syn is not None and syn.get("status") == "ok":
                row.update(
                    synth_luts=syn["luts"], synth_ffs=syn["ffs"], synth_bram=syn["bram"],
                    synth_dsp=syn["dsp"], synth_fmax_mhz=syn["fmax_mhz"],
                    meets_clock=None if syn["fmax_mhz"] is None
                    else syn["fmax_mhz"] >= plat.clock_mhz,
                )
            elif syn is not None:
                row["problems"] = "; ".join(x for x in (row["problems"],
                                                        f"synthesis: {syn['error']}") if x)
            row["train_command"] = train_command(settings["dataset"]["source"], charlm,
                                                 rec["config"], shown)
            rows.append(row)
    designs = [r for r in rows if r.get("lanes") is not None]
    mark_fronts(designs, higher)
    recs = recommend(designs, higher, settings.get("tolerance", 0.0))
    return Rendered(settings, plat, rows, recs, missing)


def synth_current(syn: dict, cycles: int) -> bool:
    """Whether a stored synthesis result is of the accelerator hwgen generates now: its
    manifest's cycles per timestep must equal the current schedule's (a changed generator
    changes them; a result without the figure is from before it was recorded). Failed
    syntheses count as current (their error stands until ``--synth`` runs again)."""
    if syn.get("status") != "ok":
        return True
    return syn.get("cycles_per_timestep") == cycles


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in COLUMNS})
    return buf.getvalue()


def _fmt_metric(v: float, metric: str) -> str:
    return f"{v:.4f}" + ("" if metric == "accuracy" else " bpc")


def format_summary(r: Rendered) -> str:
    """The recommendations as Markdown (printed by the command and written to summary.md)."""
    s = r.settings
    plat = r.platform
    t = get_target(plat.target)
    where = (f"board {plat.board} ({t.name}, {plat.clock_mhz:g} MHz)" if plat.board
             else f"{t.name} at {plat.clock_mhz:g} MHz")
    designs = [x for x in r.rows if x.get("lanes") is not None]
    failed = [x for x in r.rows if x.get("lanes") is None]
    ok_trials = len({x["trial"] for x in designs})
    metric = s["dataset"]["metric"]
    lat = s.get("max_latency_us")
    lines = [
        f"# Exploration: {s['dataset']['source']} on {where}",
        "",
        f"- trials: {len(s['trials'])} in the space, {ok_trials} trained, "
        f"{sum(1 for x in failed if x['status'] == 'error')} failed, "
        f"{sum(1 for x in failed if x['status'] == 'stopped')} stopped early, "
        f"{len(r.missing)} not run yet",
        f"- designs: {len(designs)} (trials x lanes {s['lanes']}), "
        f"{sum(1 for x in designs if x['fits'])} fit {t.name}"
        + (f", {sum(1 for x in designs if x['feasible'])} also within {lat:g} us per timestep"
           if lat is not None else ""),
        f"- selection: golden {metric} on the valid split; reported: golden {metric} on test; "
        f"tolerance for the cost objectives: {s.get('tolerance', 0.0):g}",
        f"- budget per trial: {s['budget']} {s['budget_unit']}",
        "",
    ]
    for run in s.get("runs", []):
        lines.append(
            f"- run of {run['started']}: {run['ran']} trials finished, {run['cached']} cached, "
            f"{run['failed']} failed, "
            + (f"{run['stopped']} stopped early, " if run.get("stopped") else "")
            + f"{run['wall_seconds']:.0f} s wall, "
            f"{run['concurrent']} trial(s) at a time on {run['cluster']}"
            + (" (interrupted)" if run.get("interrupted") else "")
        )
    if s.get("runs"):
        lines.append("")
    lines += _recommended(r, metric, lat)
    lines += _synthesized_table(designs)
    lines += _without_a_model(failed)
    return "\n".join(lines)


def _recommended(r: Rendered, metric: str, lat) -> list[str]:
    """One section per recommended design (objectives that chose the same design share it)."""
    plat = r.platform
    lines: list[str] = []
    titles = {"accuracy": "best valid " + metric, "logic": "least logic",
              "ram": "fewest RAM blocks", "latency": "fastest"}
    groups: dict = {}  # objectives that chose the same design share one entry
    for name in OBJECTIVES:
        row = r.recommendations.get(name)
        key = None if row is None else (row["trial"], row["lanes"])
        groups.setdefault(key, (row, []))[1].append(titles[name])
    for row, names in groups.values():
        lines.append(f"## Recommended: {', '.join(names)}")
        if row is None:
            lines += ["", "No design fits"
                      + (" within the latency bound" if lat is not None else "") + ".", ""]
            continue
        lines += [
            "",
            f"{row['label']}, {row['lanes']} lanes: valid {_fmt_metric(row['valid'], metric)}, "
            f"**test {_fmt_metric(row['test'], metric)}** (golden), "
            f"{row['cycles']} cycles = {row['us_per_timestep']:g} us per timestep"
            + (f" (a delta core: expected on the valid split; worst case {row['cycles_worst']})"
               if row["cycles"] != row["cycles_worst"] else "")
            + (f" ({row['board_us_per_timestep']:g} us on the board, its link the slower)"
               if row.get("board_us_per_timestep", 0) > row["us_per_timestep"] else "") + ", "
            f"{row['logic_cells']} {logic_label(plat.target)} ({row['luts']} LUT4, "
            f"{row['ffs']} FF), {row['bram']} RAM blocks, {row['dsp']} DSP"
            + (f"; synthesized (the accelerator alone, hwgen synth): {row['synth_luts']} LUT4, "
               f"{row['synth_ffs']} FF, {row['synth_bram']} RAM blocks, {row['synth_dsp']} DSP, "
               f"Fmax {row['synth_fmax_mhz']} MHz"
               + ("" if row.get("meets_clock") is None else
                  " (meets " if row["meets_clock"] else " (misses ")
               + ("" if row.get("meets_clock") is None else f"{plat.clock_mhz:g} MHz)")
               if row.get("synth_luts") is not None else ""),
            "",
            "```",
            row["train_command"] + "   # reproduces the model file",
            row["build_command"],
            "```",
            "",
        ]
    return lines


def _synthesized_table(designs: list[dict]) -> list[str]:
    """The table of designs synthesized by the exploration (none: no lines)."""
    lines: list[str] = []
    synthesized = [x for x in designs if x.get("synth_luts") is not None]
    if synthesized:
        lines += [
            "## Synthesized designs (the accelerator alone, `hwgen synth`, no UART link)",
            "",
            "| design | lanes | LUT4 est / synth | FF est / synth | RAM est / synth | DSP est / "
            "synth | Fmax MHz | us / timestep at Fmax |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for x in synthesized:
            f = x["synth_fmax_mhz"]
            lines.append(
                f"| {x['label']} | {x['lanes']} | {x['luts'] - x.get('link_luts', 0)} / "
                f"{x['synth_luts']} | {x['ffs'] - x.get('link_ffs', 0)} / {x['synth_ffs']} | "
                f"{x['bram']} / {x['synth_bram']} | {x['dsp']} / {x['synth_dsp']} | {f} | "
                + (f"{x['cycles'] / f:.2f} |" if f else "- |")
            )
        lines.append("")
    return lines


def _without_a_model(failed: list[dict]) -> list[str]:
    """The trials that produced no model, with why."""
    lines: list[str] = []
    if failed:
        lines.append("## Trials without a model")
        lines.append("")
        for x in failed:
            lines.append(f"- {x['label']} ({x['trial']}): {x['status']}: {x['error']}")
        lines.append("")
    return lines


def _plot(r: Rendered, name: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    col, xlabel = COSTS[name]
    if name == "logic":
        xlabel = f"{logic_label(r.platform.target)} (estimate)"
    designs = [x for x in r.rows if x.get("lanes") is not None]
    metric = r.settings["dataset"]["metric"]
    fig = Figure(figsize=(9.0, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # issue 25: the legend lists the cells and encodings of this run only; size shows lanes
    colors = {c: v for c, v in {"rnn": "tab:green", "gru": "tab:blue", "lstm": "tab:red"}.items()
              if any(x["cell"] == c for x in designs)}
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    quants = sorted({x["quant"] for x in designs})
    mk = {q: markers[i % len(markers)] for i, q in enumerate(quants)}
    lanes = sorted({x["lanes"] for x in designs})

    def size(p):
        return 10.0 + 8.0 * math.log2(p)

    bad = [x for x in designs if not x["feasible"]]
    ax.scatter([x[col] for x in bad], [x["valid"] for x in bad], s=14, c="0.75", marker="x",
               zorder=1)
    for cell in colors:
        for q in quants:
            pts = [x for x in designs if x["feasible"] and x["cell"] == cell and x["quant"] == q]
            ax.scatter([x[col] for x in pts], [x["valid"] for x in pts],
                       s=[size(x["lanes"]) for x in pts], c=colors[cell], marker=mk[q],
                       alpha=0.7, zorder=2)
    front = sorted((x for x in designs if x.get(f"front_{name}")), key=lambda x: x[col])
    ax.step([x[col] for x in front], [x["valid"] for x in front], where="post", c="k", lw=1.2,
            zorder=3)
    chosen: dict = {}  # one star per recommended design, naming every objective that chose it
    for obj, row in r.recommendations.items():
        if row is not None and obj in ("accuracy", name):
            chosen.setdefault((row["trial"], row["lanes"]), (row, []))[1].append(obj)
    if designs:
        lo, hi = min(x[col] for x in designs), max(x[col] for x in designs)
    for row, objs in chosen.values():
        ax.scatter([row[col]], [row["valid"]], s=200, facecolors="none", edgecolors="k",
                   marker="*", zorder=4)
        right = (row[col] > (lo * hi) ** 0.5 if name == "latency" and lo > 0
                 else row[col] > (lo + hi) / 2)
        ax.annotate(f"{', '.join(objs)}: {row['label']}, {row['lanes']} lanes",
                    (row[col], row["valid"]), textcoords="offset points",
                    xytext=(-8 if right else 8, -14), ha="right" if right else "left",
                    fontsize=7, bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    t = get_target(r.platform.target)
    limit = {"logic": t.luts, "ram": t.bram_count}.get(name, r.settings.get("max_latency_us"))
    if limit is not None:
        ax.axvline(limit, c="0.4", ls="--", lw=0.8)
    if name == "latency":
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + ("" if name != "latency" else f", core at {r.platform.clock_mhz:g} MHz"))
    ax.set_ylabel(f"golden {metric}, valid split")
    where = r.platform.board or r.platform.target
    ax.set_title(f"{r.settings['dataset']['source']} on {where}: {metric} vs {name}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], ls="", marker="o", c=colors[c], label=c) for c in colors]
    handles += [Line2D([], [], ls="", marker=mk[q], c="0.2", label=q) for q in quants]
    handles += [Line2D([], [], ls="", marker="o", c="0.5", ms=size(p) ** 0.5,
                       label=f"{p} lane{'s' if p > 1 else ''}") for p in lanes]
    handles += [Line2D([], [], ls="", marker="x", c="0.6", label="infeasible")] if bad else []
    handles += [Line2D([], [], c="k", label="Pareto front")]
    if limit is not None:
        handles.append(Line2D([], [], ls="--", c="0.4", lw=0.8, label={
            "logic": "device", "ram": "device"}.get(name, "latency bound")))
    handles.append(Line2D([], [], ls="", marker="*", mfc="none", mec="k", ms=12,
                          label="recommended"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)


def render(root, *, plots: bool = True) -> Rendered:
    """Write trials.csv, trials.json, the front PNGs (when ``plots`` and matplotlib is
    installed) and summary.md into ``root``; returns what was rendered."""
    r = collect(root)
    root = Path(root)
    (root / "trials.csv").write_text(_csv(r.rows))
    doc = {
        "settings": r.settings,
        "columns": list(COLUMNS),
        "rows": r.rows,
        "recommendations": {k: None if v is None else {"trial": v["trial"], "lanes": v["lanes"]}
                            for k, v in r.recommendations.items()},
        "missing": r.missing,
    }
    (root / "trials.json").write_text(json.dumps(doc, indent=1) + "\n")
    (root / "summary.md").write_text(format_summary(r) + "\n")
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise HwgenError("the front plots need matplotlib; install the explore extra: "
                             "pip install 'hwgen[explore]' (in a checkout: "
                             "pip install -e '.[explore]')") from None
        for name in COSTS:
            _plot(r, name, root / f"front_{name}.png")
    return r
