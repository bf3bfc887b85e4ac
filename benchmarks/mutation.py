"""Mutation campaign on hwgen/gateware: how many injected bugs the exact-equality checks catch.

    nice -n 19 python benchmarks/mutation.py --list            # the mutants (sites), per file
    nice -n 19 python benchmarks/mutation.py --killer          # run the killer set on this hwgen
    nice -n 19 python benchmarks/mutation.py --budget 1500 --resume
    nice -n 19 python benchmarks/mutation.py --only plan.py:123:const+1 ...   # named mutants

Own operator set over the Python AST of hwgen/gateware/*.py (not `simulate.py`, the test driver).
Each mutant is one node changed, the module written with `ast.unparse` into a temporary copy of
the whole `hwgen` package, and the killer set run in a subprocess with that copy first on
``PYTHONPATH`` (the worktree is never edited). A mutant whose unparsed source equals the
original's is not a mutant (dropped). Results go to benchmarks/results/mutation.json, one record
per mutant (file, line, operator, status, killing check, seconds); ``--resume`` skips the ones
already recorded. Statuses: ``killed`` (a check failed or raised), ``timeout`` (the killer set
ran past ``--timeout``: a hang, e.g. an output that never comes; counted as killed, listed
apart), ``survived``.

The killer set (`KILLERS`) reuses the suite's own test functions (tests/test_gateware*.py,
test_sparse_core.py, test_load.py), each called with one parameter set, fastest first, stopping
at the first failure: MAC lanes of every encoding, the scaler, multiplier, table and saturation
units, then whole accelerators in amaranth.sim against the golden model covering RNN / GRU /
LSTM, binary / ternary / pow2 / exp / int8, ROM / loadable, dense / 2:4 sparse, paired input
segments, state in RAM / registers, tokens, stalls and two layers.

Sampling: ``--budget`` seconds for the whole campaign; the number of mutants that fit (from the
killer set's measured time) is drawn uniformly per file (proportional to its sites) with
``--seed``; the sample is recorded in the results file.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWARE = ROOT / "hwgen" / "gateware"
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
SKIP_FILES = {"__init__.py", "simulate.py"}


# -- mutation sites ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    """One mutant: ``file`` (name in hwgen/gateware), ``line``, ``col``, ``op`` (operator name)
    and ``index`` (the n-th node the walk visits, which makes a site unique within its file)."""

    file: str
    line: int
    col: int
    op: str
    index: int

    @property
    def key(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.op}:{self.index}"


BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
          ast.BitXor: ast.BitOr, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
          ast.Mult: ast.Add, ast.FloorDiv: ast.Mult}
CMPOPS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
          ast.GtE: ast.Gt}


def _is_docstring(node, parent) -> bool:
    return isinstance(parent, ast.Expr) and isinstance(node, ast.Constant) and isinstance(
        node.value, str)


def _domain(target) -> str | None:
    """``sync`` / ``comb`` for an ``m.d.sync`` / ``m.d.comb`` (or ``m.d[...]``) target."""
    if isinstance(target, ast.Attribute) and target.attr in ("sync", "comb"):
        if isinstance(target.value, ast.Attribute) and target.value.attr == "d":
            return target.attr
    return None


def _mutations(node):
    """The operator names that apply to ``node``."""
    ops = []
    if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
        ops.append("binop")
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in CMPOPS:
        ops.append("cmp")
    if isinstance(node, ast.BoolOp):
        ops.append("boolop")
    if isinstance(node, ast.Constant) and type(node.value) is int:
        ops += ["const+1"] + (["const-1"] if node.value > 0 else [])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.USub, ast.Not)):
        ops.append("unary_drop")
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Mux"
            and len(node.args) == 3):
        ops.append("mux_swap")
    if isinstance(node, ast.AugAssign) and _domain(node.target):
        ops.append("stmt_drop")
        if _domain(node.target) == "sync":
            ops.append("sync_to_comb")
    if isinstance(node, ast.With) and len(node.items) == 1:
        call = node.items[0].context_expr
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("If", "Elif") and call.args):
            ops.append("if_invert")
    if isinstance(node, ast.If):
        ops.append("pyif_invert")
    return ops


def _walk(tree):
    """Every (node, parent) in a fixed order, docstrings and annotations left out."""
    stack = [(tree, None)]
    while stack:
        node, parent = stack.pop()
        if _is_docstring(node, parent):
            continue
        yield node, parent
        children = []
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "decorator_list"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    children.append((child, node))
        stack.extend(reversed(children))


def sites(path: Path) -> list[Site]:
    """Every mutation site of the module at ``path``."""
    tree = ast.parse(path.read_text())
    out = []
    for i, (node, _) in enumerate(_walk(tree)):
        for op in _mutations(node):
            out.append(Site(path.name, node.lineno, node.col_offset, op, i))
    return out


def mutate(source: str, site: Site) -> str:
    """``source`` with ``site`` applied, as `ast.unparse` writes it."""
    tree = ast.parse(source)
    for i, (node, parent) in enumerate(_walk(tree)):  # noqa: B007 - used after the loop
        if i == site.index:
            break
    else:
        raise ValueError(f"no node {site.index}")
    if not (node.lineno == site.line and node.col_offset == site.col):
        raise ValueError(f"site {site.key} moved")
    op = site.op
    if op == "binop":
        node.op = BINOPS[type(node.op)]()
    elif op == "cmp":
        node.ops = [CMPOPS[type(node.ops[0])]()]
    elif op == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif op in ("const+1", "const-1"):
        node.value += 1 if op == "const+1" else -1
    elif op == "unary_drop":
        _replace(parent, node, node.operand)
    elif op == "mux_swap":
        node.args[1], node.args[2] = node.args[2], node.args[1]
    elif op == "stmt_drop":
        _replace(parent, node, ast.Pass())
    elif op == "sync_to_comb":
        node.target.attr = "comb"
    elif op == "if_invert":
        call = node.items[0].context_expr
        # Amaranth's If takes any value (true when non-zero): the inverted condition is
        # "not any bit set", written with the module's own Value.
        call.args[0] = ast.parse(
            f"~__import__('amaranth.hdl', fromlist=['Value']).Value.cast("
            f"{ast.unparse(call.args[0])}).bool()", mode="eval").body
    elif op == "pyif_invert":
        node.test = ast.UnaryOp(ast.Not(), node.test)
    else:
        raise ValueError(op)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def _replace(parent, old, new) -> None:
    for field, value in ast.iter_fields(parent):
        if isinstance(value, list):
            for j, v in enumerate(value):
                if v is old:
                    value[j] = new
                    return
        elif value is old:
            setattr(parent, field, new)
            return
    raise ValueError("node not found in its parent")


def all_sites() -> list[Site]:
    return [s for p in sorted(GATEWARE.glob("*.py")) if p.name not in SKIP_FILES
            for s in sites(p)]


# -- the killer set ------------------------------------------------------------------------------
def _killers():
    """(name, callable) pairs, fastest first; each raises on a mismatch."""
    import test_load as ld
    import test_sparse_core as sp

    import tests.test_gateware as g
    import tests.test_gateware_units as u

    k = []
    for enc in ("binary", "ternary", "pow2", "pow2x3", "exp7", "int8"):
        k.append((f"units.mac[{enc}]", lambda e=enc: u.test_mac_unit(e, 3)))
    k.append(("units.mac_split[ternary,4]", lambda: u.test_mac_unit_split_words("ternary", 4)))
    k.append(("units.mac_split[int8,3]", lambda: u.test_mac_unit_split_words("int8", 3)))
    k.append(("units.scaler[181,-8]", lambda: u.test_const_scaler(181, -8)))
    k.append(("units.scaler[1,2]", lambda: u.test_const_scaler(1, 2)))
    k.append(("units.mul[6,9]", lambda: u.test_pipelined_mul(6, 9)))
    k.append(("units.table", u.test_activation_table_saturates))
    k.append(("units.saturate", u.test_saturate_matches_clip))
    k.append(("units.schedule", u.test_schedule_formula))
    # whole accelerators, exact against the golden model (timing checked where no stalls)
    for args in [("rnn", "ternary", 1, 1, False, False, "ram"),
                 ("gru", "binary", 1, 1, True, False, "registers"),
                 ("lstm", "pow2", 1, 1, True, False, "ram"),
                 ("gru", "exp", 2, 5, False, True, "ram"),
                 ("lstm", "int8", 2, 5, True, False, "registers"),
                 ("rnn", "pow2", 2, 5, True, True, "registers"),
                 ("lstm", "ternary", 1, 4, False, True, "registers"),
                 ("gru", "ternary", 2, 3, False, False, "ram")]:
        k.append((f"core[{'-'.join(map(str, args))}]",
                  lambda a=args: g.test_exact_against_golden(*a)))
    k.append(("core.mixed[rnn-pow2x3-binary-5]",
              lambda: g.test_mixed_encodings("rnn", "pow2x3", "binary", 5)))
    for args in [("rnn", "ternary", 2, 9, 1, 4, False, True, None, "registers"),
                 ("gru", "exp", 4, 11, 2, 8, True, True, None, "ram"),
                 ("gru", "ternary", 8, 30, 1, 24, False, False, "int8", "ram")]:
        k.append((f"paired[{'-'.join(map(str, args))}]",
                  lambda a=args: g.test_paired_input_segments_exact(*a)))
    for args in [("gru", "ternary", 4, 12, 1, 4, False, False, None, False, "ram"),
                 ("rnn", "exp", 3, 7, 1, 6, True, False, None, True, "registers"),
                 ("gru", "ternary", 9, 10, 2, 4, True, True, "int8", False, "ram"),
                 ("lstm", "pow2", 8, 6, 1, 6, False, False, None, True, "registers")]:
        k.append((f"sparse[{'-'.join(map(str, args))}]",
                  lambda a=args: sp.test_sparse_core_exact(*a)))
    k.append(("sparse.paired[rnn-exp-3-9-1-4-tok-stall]",
              lambda: sp.test_sparse_paired_input_segments_exact(
                  "rnn", "exp", 3, 9, 1, 4, True, True, "ram")))
    for args in [("gru", "ternary", 4, 6, 1, None, 3, "spram"),
                 ("lstm", "exp", 3, 5, 2, 7, 4, "ram"),
                 ("gru", "int8", 3, 4, 1, None, 2, "ram")]:
        k.append((f"load[{'-'.join(map(str, args))}]",
                  lambda a=args: ld.test_one_core_runs_every_model_of_its_shape(*a)))
    k.append(("load.sparse[gru-4-spram]",
              lambda: sp.test_loadable_sparse_core_runs_every_2_4_model_of_its_shape(
                  "gru", 4, "spram", False)))
    k.append(("core.edge[gru-5-1-4-2-2-5]",
              lambda: g.test_edge_sizes("gru", 5, 1, 4, 2, 2, 5, "registers")))
    k.append(("core.argmax_ties", g.test_argmax_ties_go_to_the_lowest_index))
    return k


def _delta_killers():
    """The delta gateware's killer set (``--set delta``): the delta units and the whole delta
    core in amaranth.sim against `hwgen.delta.DeltaGolden` / the golden model, fastest first:
    the encoder (1, 3, 4, 8 lanes, thresholds 0 .. 11, input gaps and output stalls) and its
    rates, the column update (every encoding, R = 1 forwarding, permuted rows, gaps) and its
    rate, the cell pass into the cell unit (GRU, LSTM, RNN), one layer timestep after timestep,
    resets anywhere in a timestep (GRU, 2-layer LSTM), and whole accelerators (GRU / LSTM / RNN,
    1-2 layers, thresholds 0, > 0 and 255, stalls on both streams, the manifest's cycle bound)."""
    import test_delta_core as dc
    import test_delta_kill_reset as kr

    k = []
    for args in [(3, 1), (1, 0), (8, 3)]:
        k.append((f"delta.encoder[{args[0]}]",
                  lambda a=args: dc.test_encoder_matches_the_golden_encoder(*a)))
    k.append(("delta.encoder_rates", dc.test_encoder_rates))
    for args in [("ternary", 6, 4), ("exp", 5, 4), ("int8", 4, 2), ("binary", 4, 3),
                 ("pow2", 2, 8), ("ternary", 3, 16)]:
        k.append((f"delta.update[{'-'.join(map(str, args))}]",
                  lambda a=args: dc.test_column_update_is_levels_times_held_values(*a)))
    k.append(("delta.update_rate", dc.test_column_update_rate))
    for args in [("gru", "ternary", 4), ("lstm", "int8", 3), ("rnn", "exp", 6)]:
        k.append((f"delta.cell[{'-'.join(map(str, args))}]",
                  lambda a=args: dc.test_cell_pass_and_cell_unit_give_the_golden_state(*a)))
    for args in [("gru", "ternary", 4, (6, 4)), ("lstm", "int8", 3, (3, 9)),
                 ("rnn", "exp", 2, (0, 0)), ("gru", "binary", 8, (10, 2))]:
        k.append((f"delta.layer[{args[0]}-{args[1]}-{args[2]}]",
                  lambda a=args: dc.test_delta_layer_is_the_golden_delta_network(*a)))
    k.append(("delta.reset[gru-ternary-3-1]",
              lambda: kr.test_a_reset_anywhere_restarts_the_delta_core_exactly(
                  "gru", "ternary", 3, 1, (5, 3), "registers")))
    # (cell, quant, lanes, layers, thresholds, state, hidden, outputs): both state modes
    for args in [("rnn", "ternary", 6, 1, (1, 1), "registers", 6, 3),
                 ("rnn", "int8", 1, 1, (2, 3), "registers", 6, 3),
                 ("gru", "ternary", 4, 1, (6, 4), "registers", 6, 3),
                 ("rnn", "exp", 2, 2, (0, 0), "registers", 6, 3),
                 ("lstm", "int8", 3, 2, (3, 5), "registers", 6, 3),
                 ("lstm", "ternary", 4, 2, (255, 255), "registers", 6, 3),
                 ("gru", "ternary", 4, 1, (6, 4), "ram", 7, 3),
                 ("lstm", "ternary", 2, 2, (255, 255), "ram", 2, 3),
                 ("gru", "int8", 2, 2, (1, 1), "ram", 2, 3)]:
        k.append((f"delta.core[{'-'.join(map(str, args[:4]))}-th{args[4][0]}-{args[5]}]",
                  lambda a=args: dc.test_delta_accelerator_equals_the_golden_model(*a)))
    k.append(("delta.reset[lstm-int8-2-2]",
              lambda: kr.test_a_reset_anywhere_restarts_the_delta_core_exactly(
                  "lstm", "int8", 2, 2, (0, 0), "registers")))
    k.append(("delta.reset[gru-ternary-3-1-ram]",
              lambda: kr.test_a_reset_anywhere_restarts_the_delta_core_exactly(
                  "gru", "ternary", 3, 1, (5, 3), "ram")))
    return k


#: the killer sets (``--set``) and their results files
SETS = {"dense": ("mutation.json", "_killers"), "delta": ("mutation_delta.json", "_delta_killers")}
SET = "dense"


def _results() -> Path:
    return RESULTS.parent / SETS[SET][0]


class CheckHang(Exception):
    """A check of the killer set ran past ``--check-timeout`` (a hang: every check takes
    seconds)."""


def run_killers(times: bool = False, check_timeout: float = 0) -> int:
    """Run the killer set (`SET`) in this process; print ``KILLED <name>`` at the first failure
    (exit 1; a check running past ``check_timeout`` seconds, when given, fails as `CheckHang`)
    or ``SURVIVED`` (exit 0)."""
    import signal

    def hang(*_):
        raise CheckHang(f"no result after {check_timeout:g} s (a hang)")

    signal.signal(signal.SIGALRM, hang)
    import warnings

    warnings.filterwarnings("ignore")
    sys.path += [str(ROOT), str(ROOT / "tests")]  # after PYTHONPATH: the mutant's hwgen wins
    import hwgen

    print("hwgen from", Path(hwgen.__file__).parent, flush=True)
    total = time.perf_counter()
    for name, fn in globals()[SETS[SET][1]]():
        t = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, check_timeout)
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - any failure kills the mutant
            print(f"KILLED {name} {type(e).__name__}: {str(e)[:200]!r}", flush=True)
            return 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if times:
            print(f"{time.perf_counter() - t:7.2f} s  {name}", flush=True)
    print(f"SURVIVED {time.perf_counter() - total:.1f} s", flush=True)
    return 0


# -- the campaign --------------------------------------------------------------------------------
def run_mutant(site: Site, work: Path, timeout: float, check_timeout: float = 0) -> dict:
    """Write ``site``'s mutant into ``work``/hwgen, run the killer set on it, restore the file."""
    target = work / "hwgen" / "gateware" / site.file
    original = (GATEWARE / site.file).read_text()
    mutant = mutate(original, site)
    rec = dict(asdict(site), key=site.key)
    if mutant == ast.unparse(ast.parse(original)):
        return dict(rec, status="no-op", by=None, seconds=0.0)
    target.write_text(mutant)
    t = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(work))
    try:
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--killer", "--set", SET,
                            "--check-timeout", str(check_timeout)],
                           env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
        out = p.stdout + p.stderr
        if p.returncode == 0 and "SURVIVED" in out:
            status, by = "survived", None
        else:
            status = "killed"
            by = next((ln.split(" ", 2)[1] for ln in out.splitlines()
                       if ln.startswith("KILLED ")), f"exit {p.returncode}")
            detail = next((ln for ln in out.splitlines() if ln.startswith("KILLED ")),
                          out[-300:])
            rec["detail"] = detail[:300]
    except subprocess.TimeoutExpired:
        status, by = "timeout", None
    finally:
        target.write_text(original)
    return dict(rec, status=status, by=by, seconds=round(time.perf_counter() - t, 1))


def sample(sites_: list[Site], n: int, seed: int) -> list[Site]:
    """``n`` sites drawn uniformly within each file, files in proportion to their sites."""
    if n >= len(sites_):
        return list(sites_)
    rng = random.Random(seed)
    by_file: dict[str, list[Site]] = {}
    for s in sites_:
        by_file.setdefault(s.file, []).append(s)
    out = []
    for _, ss in sorted(by_file.items()):
        k = max(1, round(n * len(ss) / len(sites_)))
        out += rng.sample(ss, min(k, len(ss)))
    return out


def _load() -> dict:
    return json.loads(_results().read_text()) if _results().exists() else {}


def _save(data: dict) -> None:
    _results().parent.mkdir(parents=True, exist_ok=True)
    tmp = _results().with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(_results())


def set_sites() -> list[Site]:
    """The sites of the killer set `SET`: every module for ``dense`` (the first campaign's
    sample was drawn before the delta modules existed), the ``delta_*.py`` modules for
    ``delta``."""
    every = all_sites()
    return [s for s in every if s.file.startswith("delta_")] if SET == "delta" else every


def _head() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                       text=True)
    return r.stdout.strip() or "?"


def _draw(args, data: dict, every: list[Site]) -> list[Site]:
    """The sites to run: ``--only``; the recorded sample's sites among ``every`` (``--resume``);
    or a new draw from ``every``, added to the recorded sample with ``--resume`` (a second
    draw over other files: ``--files``), else a new sample."""
    smp = data.get("sample")
    if args.only:
        return [s for s in every if any(s.key.startswith(o) for o in args.only)]
    files = {s.file for s in every}
    if args.resume and smp and any(k.split(":")[0] in files for k in smp["keys"]):
        keys = set(smp["keys"])
        return [s for s in every if s.key in keys]
    chosen = sample(every, int(args.budget / args.per_mutant), args.seed)
    draw = {"files": sorted(files), "drawn": len(chosen), "seed": args.seed,
            "hwgen_commit": _head()}
    if args.resume and smp:
        smp["keys"] += [s.key for s in chosen]
        smp["drawn"] += len(chosen)
        smp["sites_per_file"].update(_count(every))
        smp["sites"] = sum(smp["sites_per_file"].values())
        smp.setdefault("draws", []).append(draw)
    else:
        data["sample"] = {"seed": args.seed, "budget_s": args.budget,
                          "per_mutant_s": args.per_mutant, "sites": len(every),
                          "sites_per_file": _count(every), "drawn": len(chosen),
                          "keys": [s.key for s in chosen], "draws": [draw]}
    return chosen


def campaign(args) -> None:
    every = set_sites()
    if args.files:
        every = [s for s in every if s.file in args.files]
    data = _load() if args.resume or args.rerun_timeouts else {}
    if args.rerun_timeouts:  # run the killer set's timeouts again (longer limits)
        again = data.setdefault("timeouts_rerun", {})
        for k, r in list(data.get("mutants", {}).items()):
            if r["status"] == "timeout":
                again[k] = data["mutants"].pop(k)
        args.only = [k for k, r in again.items() if k not in data["mutants"]] or ["(none)"]
    chosen = _draw(args, data, every)
    results = data.setdefault("mutants", {})
    data["timeout_s"] = args.timeout
    todo = [s for s in chosen if s.key not in results]
    random.Random(args.seed).shuffle(todo)  # a deadline leaves a uniform part of the sample run
    print(f"{len(every)} sites, {len(chosen)} chosen, {len(todo)} to run", flush=True)
    with tempfile.TemporaryDirectory(prefix="hwgen-mut-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "hwgen", work / "hwgen",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "obj_dir"))
        start = time.perf_counter()
        for i, s in enumerate(todo):
            if args.deadline and time.perf_counter() - start > args.deadline:
                print("deadline reached", flush=True)
                break
            rec = run_mutant(s, work, args.timeout, args.check_timeout)
            results[s.key] = rec
            _save(data)
            print(f"[{i + 1}/{len(todo)}] {s.key}: {rec['status']} {rec.get('by') or ''} "
                  f"{rec['seconds']} s", flush=True)
    data["summary"] = summary(results)
    _save(data)
    print(json.dumps(data["summary"], indent=1))


def _count(ss) -> dict:
    out: dict[str, int] = {}
    for s in ss:
        out[s.file] = out.get(s.file, 0) + 1
    return out


#: Survivors examined and argued equivalent (docs/verification.md): key -> why.
EQUIVALENT: dict[str, str] = {
    "gru.py:53:42:const+1:226": (
        "g1 one cycle later: the gate field travels with the issued words, and the word "
        "before a row's recurrent event is the same row's (its input segment or an earlier "
        "recurrent word; a paired row's recurrent segment has >= 2 words); 30 GRU simulations"
        " also pass"
    ),
    "core.py:419:50:const-1:3693": (
        "wr_lane's power-on value 1 -> 0: restart sets wr_word and wr_lane before a "
        "timestep's first h write, so the init value is never used"
    ),
    "plan.py:389:20:const-1:1474": (
        "sigmoid width floor 1 -> 0: the sigmoid table's largest entry is >= 1, so max() "
        "never takes the floor"
    ),
    "store.py:53:24:binop:120": (
        "the store's write address port 2 bits wider: it is driven by addresses of addr_bits "
        "- 1 bits, so the extra bits are 0"
    ),
    "sequencer.py:48:68:const-1:170": (
        "op_layer as range(1) for one layer: its only value is 0, and the core reads op_layer"
        " only with two or more layers"
    ),
    "loadable.py:55:39:const-1:117": (
        "the load port's mem field as range(1) for one memory: its only value is 0 either way"
    ),
    "plan.py:444:44:const+1:2123": (
        "MatrixPlan.id of a recurrent matrix off by one: the field is never read (plans are "
        "keyed by the dict index)"
    ),
    "lstm.py:61:15:cmp:370": (
        "an elaboration-time assert on constants (table latency T = 3 > R = 2): true either "
        "way"
    ),
    "plan.py:137:55:const+1:338": (
        "reshape(-2): NumPy 2.4 takes any negative size as the inferred one, like -1"
    ),
    "sequencer.py:49:19:const+1:172": (
        "op_zero as a 2-bit port: it only takes 0 / 1 (a 1-bit AND) and is the address's top "
        "field, so the extra bit is a 0 above the state address, cut at its width"
    ),
    "plan.py:463:41:const-1:2295": "an odd last row paired with a phantom row R: its recurrent "
    "words slice past the image's end and add nothing; the paired word is the same",
    "sequencer.py:77:45:const+1:379": "the gate counter one bit wider (RNN): it wraps at "
    "gate_last and never reaches 2",
    "sequencer.py:164:67:const-1:958": "start_layer as range(1) for one layer: its only value "
    "is 0 either way; two or more layers are unchanged",
    "lstm.py:63:50:binop:420": "rd_unit 2R = 4 cycles later than needed: a unit's i, f, g, o "
    "rows are consecutive and the g and f rows before its o row last >= 2 + 4 cycles, so the "
    "unit 4 cycles before the o row is the same unit",
    # the campaign's second half (2026-12-07, this session)
    "schedule.py:150:15:const+1:339": (
        "tree_depth's floor 0 -> 1: it applies only for lanes > 1, where ceil(log2 lanes) >= 1"
    ),
    "core.py:485:32:binop:4519": (
        "the argmax tree's level counted down instead of up: it only names the tree's signals"
    ),
    "sequencer.py:164:67:const+1:958": (
        "start_layer as range(max(L, 3)): one bit wider for one or two layers, the same values"
    ),
    "core.py:502:21:const-1:4667": (
        "an elaboration-time assert (head_drain >= 2 -> >= 1): head_drain >= 8 always holds"
    ),
    "core.py:502:15:cmp:4663": (
        "an elaboration-time assert (head_drain >= 2 -> > 2): head_drain >= 8 always holds"
    ),
    "sequencer.py:75:44:const+1:339": (
        "the layer counter as range(L + 2): one bit wider; its values stay 0 .. L (the head) "
        "and every use compares values or truncates to a fixed width (op_layer)"
    ),
    "mac.py:130:43:binop:726": (
        "an exp lane's shifted operand sliced 2 bits wider: for every legal code the shift is at "
        "most exponents - 1, so the product fits the exact width and the extra bits are its sign "
        "(illegal codes never reach a lane); 39 MAC unit / exp tests and proofs also pass"
    ),
    "mac.py:131:32:binop:748": (
        "an exp lane's product register 2 bits wider: it holds the same value, sign-extended; "
        "39 MAC unit / exp tests and proofs also pass"
    ),
    "core.py:303:32:unary_drop:2436": (
        "the bias counter advanced at a row's recurrent event instead of its input event: a "
        "row's bias is read at its input event (the GRU's b_hn at the n row's recurrent one, "
        "which still advances), when one advance per earlier row has happened either way, "
        "since every row's recurrent segment precedes the next row's input segment; 78 tests of "
        "test_gateware / test_sparse_core (paired, edge sizes, every exact run) also pass"
    ),
    "core.py:431:11:cmp:3848": (
        "the h write address gets the layer field for one layer too: it lands above the word "
        "and bank bits, and waddr (addr_bits - 1 bits, exactly word and bank) truncates it"
    ),
}

# the delta gateware (--set delta; the first draw over delta_encoder.py / delta_update.py)
EQUIVALENT.update({
    "delta_encoder.py:95:64:const+1:282": (
        "the hat store's no_rw_check attribute 1 -> 2: Yosys reads it as a boolean, true either "
        "way"
    ),
    "delta_update.py:94:43:const+1:447": (
        "the cell pass's read address port as range(max(R, 3)): one bit wider when R <= 2, "
        "driven by addresses < R (zero-extended) and cut to the memory's address width"
    ),
    "delta_update.py:160:33:const-1:1232": (
        "k1 as range(max(R, 1)): unchanged for R >= 2; for R = 1 it has no bits (always 0), "
        "and k1 is only read after a busy cycle, when k was 0 (the one word) either way"
    ),
    "delta_encoder.py:119:34:const+1:562": (
        "a lane's difference d one bit wider: values and held values are w-bit signed, so "
        "value - hat fits w + 1 bits; the wider d holds the same value, abs(d) and the kept delta "
        "(w + 1 bits) are the same"
    ),
    "delta_update.py:55:67:const+1:254": (
        "reshape(-2): NumPy 2.4 takes any negative size as the inferred one, like -1"
    ),
    "delta_encoder.py:53:44:const+1:107": (
        "the encoder output's column as range(max(chunks * P, 3)): one bit wider only when "
        "chunks * P <= 2; its values stay < chunks * P, compared and subtracted as values and "
        "cut to the update units' column widths"
    ),
    "delta_encoder.py:120:38:const-1:582": (
        "a lane's abs(d) in w bits instead of w + 1: values and held values are w-bit signed, so "
        "abs(value - hat) <= 2^w - 1 fits w bits; compared with theta as values"
    ),
    "delta_update.py:90:84:const+1:421": (
        "the update's end field 2 bits wide: driven by the 1-bit end marker (zero-extended), "
        "read only as accept & end and accept & ~end, where the 1-bit accept cuts the upper bit"
    ),
    "delta_update.py:93:24:const+1:433": (
        "done as a 2-bit port: driven by a 1-bit register (zero-extended), read as a condition "
        "or ANDed into the 1-bit start of the cell pass"
    ),
    "delta_update.py:140:43:const+1:926": (
        "the active column register as range(max(cols, 3)): one bit wider when cols <= 2; it "
        "holds a column < cols and only forms the ROM address col * R + k, the same value"
    ),
    "delta_update.py:139:59:const-1:906": (
        "the word counter k as range(max(R, 1)): unchanged for R >= 2; for R = 1 it has no bits "
        "(always 0), and with one word k is 0 whenever it is read (busy), so last_k, the read "
        "and ROM addresses and k1 are the same"
    ),
    "delta_encoder.py:42:35:const-1:68": (
        "the chunk field as range(max(chunks, 1)): unchanged for chunks >= 2 (a delta layer has "
        "cx + ch >= 2); for one chunk it has no bits and every chunk address is 0 either way"
    ),
    "delta_update.py:129:62:const+1:811": (
        "the delta memory's no_rw_check attribute 1 -> 2: Yosys reads it as a boolean, true "
        "either way"
    ),
    "delta_encoder.py:125:45:const+1:682": (
        "a lane's delta 1 instead of 0 when it is not kept: the emit register hands out only "
        "kept lanes (b_mask = keep, low its lowest set bit), so those deltas are never read"
    ),
    "delta_update.py:140:43:const-1:926": (
        "the active column register as range(max(cols, 1)): unchanged for cols >= 2; for a "
        "one-column matrix it has no bits and the only column is 0 either way"
    ),
    "delta_encoder.py:149:52:const-1:925": (
        "the column base as range(max(chunks * P, 1)): unchanged for chunks * P >= 2 (every "
        "delta layer); for one lane of one chunk it has no bits and the base is 0 either way"
    ),
    "delta_update.py:139:59:const+1:906": (
        "the word counter k as range(max(R, 3)): one bit wider for R <= 2, where it can step to "
        "R (instead of wrapping to 0) after a column's last word; k is read then only into the "
        "ROM address and k1, registers used only while busy, and fwd1 compares k1 (the last "
        "word) with k: unequal either way"
    ),
    # the second draw (delta_core.py, delta_layer.py, delta_cell.py as at main a124f83)
    "delta_layer.py:68:26:const+1:233": (
        "the layer's column strobe as a 2-bit port: driven by a 1-bit expression "
        "(zero-extended), only summed into the core's column counter: the same value"
    ),
    "delta_core.py:142:80:const-1:735": (
        "the head's delta port sw bits instead of sw + 1: the head is fed the top layer's h "
        "values themselves (a dense head, M_o = levels(W_o) h), sw-bit signed, which fit"
    ),
    "delta_core.py:238:75:const+1:2064": (
        "the head readout's lane counter as range(max(P, 3)): one bit wider for P <= 2; it "
        "counts 0 .. P - 1 (advance_word_lane wraps it by value) and indexes the word the same"
    ),
    "delta_update.py:142:68:const+1:972": (
        "the clear counter ck as range(max(R, 3)): one bit wider when R <= 2; it counts 0 .. "
        "R - 1, compared as a value and cut to the memory's address width"
    ),
})


#: Survivors of the killer set killed by another test: key -> (test, "suite" for one already in
#: the CI suite outside the killer set, "new" for one added in tests/test_mutation_killers.py or,
#: once, a parameter added to a suite test).
#: Each checked with ``--verify KEY -- TEST`` (fails on the mutant; passes on the real code).
KILLED_LATER: dict[str, tuple[str, str]] = {
    "plan.py:401:44:binop:1683": (
        "tests/test_estimate.py::test_memory_layout_follows_the_gateware", "suite"),
    "core.py:164:39:unary_drop:889": (
        "tests/test_mutation_killers.py::"
        "test_loadable_memories_ask_for_block_ram_except_spram", "new"),
    "plan.py:396:75:const-1:1595": (
        "tests/test_estimate.py::test_estimate_of_a_64_unit_gru_on_up5k", "suite"),
    "plan.py:387:83:const+1:1454": (
        "tests/test_estimate.py::test_memory_layout_follows_the_gateware", "suite"),
    "sequencer.py:316:48:const-1:2670": (
        "tests/test_mutation_killers.py::"
        "test_paired_rnn_with_an_even_row_count (hangs: the timestep never ends)", "new"),
    "packing.py:125:15:const-1:413": (
        "tests/test_mutation_killers.py::test_sparse_words_refuse_odd_lanes", "new"),
    "sequencer.py:337:52:const-1:3040": (
        "tests/test_gateware.py::"
        "test_edge_sizes[*-rnn-1-1-1-1-None-1] (one output: the output never comes, a"
        " hang)", "suite"),
    "schedule.py:180:41:binop:437": (
        "tests/test_sparse_core.py::"
        "test_sparse_paired_input_segments_exact[registers-lstm-ternary-I8-H17-L2-P8]", "suite"),
    "schedule.py:296:70:const+1:1109": (
        "tests/test_sparse_core.py::"
        "test_a_matrix_that_does_not_pack_runs_at_two_words_a_span[2-repeats1]", "new"),
    "schedule.py:276:26:const-1:899": (
        "tests/test_mutation_killers.py::test_sparse_schedule_refuses_odd_lanes", "new"),
    "plan.py:143:35:const+1:381": (
        "tests/test_mutation_killers.py::test_signed_words_refuses_values_beyond_the_width", "new"),
    "plan.py:555:20:unary_drop:3309": (
        "tests/test_design.py::test_weight_memory_bits_is_the_plans", "suite"),
    "packing.py:104:17:const+1:221": (
        "tests/test_sparse_core.py::test_packable_and_repeats", "suite"),
    "plan.py:615:15:binop:3787": (
        "tests/test_mutation_killers.py::"
        "test_auto_state_storage_follows_the_bit_and_word_limits", "new"),
    "plan.py:387:64:binop:1445": (
        "tests/test_estimate.py::test_memory_layout_follows_the_gateware", "suite"),
    "plan.py:554:8:pyif_invert:3294": (
        "tests/test_design.py::test_weight_memory_bits_is_the_plans", "suite"),
    "sequencer.py:330:37:binop:2884": (
        "tests/test_gateware.py::test_edge_sizes[ram-gru-3-2-1-3-None-2]", "suite"),
    "packing.py:78:11:const+1:113": (
        "tests/test_sparse_core.py::test_every_group_pattern_packs", "suite"),
    # the campaign's second half (2026-12-07, this session)
    "sequencer.py:364:83:const-1:3441": (
        "tests/test_gateware.py::test_edge_sizes[ram-gru-3-2-1-3-None-2]", "suite"),
    "plan.py:115:26:const-1:135": (
        "tests/test_mutation_killers.py::"
        "test_auto_state_storage_follows_the_bit_and_word_limits", "suite"),
    "plan.py:391:8:pyif_invert:1509": (
        "tests/test_estimate.py::test_memory_layout_follows_the_gateware", "suite"),
    "plan.py:214:39:const+1:671": (
        "tests/test_mutation_killers.py::"
        "test_the_state_address_top_bit_selects_the_zero_region", "new"),
}


KILLED_LATER.update({
    "delta_encoder.py:95:64:const-1:282": (
        "tests/test_delta_kill_units.py::"
        "test_the_hat_store_and_delta_memory_waive_read_write_checks[encoder]", "new"),
    "delta_update.py:129:62:const-1:811": (
        "tests/test_delta_kill_units.py::"
        "test_the_hat_store_and_delta_memory_waive_read_write_checks[update]", "new"),
    "delta_update.py:92:24:const+1:429": (
        "tests/test_delta_kill_units.py::"
        "test_a_timestep_without_columns_takes_the_fixed_cycles_with_the_head_after_the_pass "
        "(a 2-bit busy: ~busy is always true, the head stops waiting for its clear, one cycle "
        "faster than the manifest)", "new"),
    "delta_update.py:119:68:cmp:687": (
        "tests/test_delta_kill_units.py::test_a_multi_bit_pow2_column_update (2-bit pow2 "
        "through the multiplier is the same for its legal codes; multi-bit pow2 through the "
        "ternary muxes is wrong)", "new"),
    "delta_cell.py:64:82:const-1:159": (
        "tests/test_delta_kill_units.py::test_the_cell_pass_refuses_a_layer_past_the_last "
        "(a guard: the layer past the last would fail later, inside the plan's matrices)",
        "new"),
    "delta_cell.py:88:15:binop:380": (
        "tests/test_delta_kill_units.py::test_the_cell_pass_latency_is_its_read_to_event_delay "
        "(the documented latency property, read by no caller: now measured)", "new"),
    "delta_core.py:211:37:binop:1717": (
        "tests/test_delta_kill_units.py::"
        "test_a_timestep_without_columns_takes_the_fixed_cycles_with_the_head_after_the_pass "
        "(the head fed two columns past the last: their weights read as 0, the logits right, "
        "two cycles slower than the manifest's fixed cycles)", "new"),
})


def summary(results: dict) -> dict:
    """Per file and in total: killed and timeout (by the killer set), suite / new (killed later,
    `KILLED_LATER`), equivalent (argued, `EQUIVALENT`), survived, no-op; ``score_campaign`` (the
    killer set's kills / non-equivalent mutants) and ``score`` (all kills / non-equivalent)."""
    out: dict[str, dict] = {}
    total = {"killed": 0, "timeout": 0, "suite": 0, "new": 0, "survived": 0, "equivalent": 0,
             "no-op": 0}
    for r in results.values():
        f = out.setdefault(r["file"], dict.fromkeys(total, 0))
        st = r["status"]
        if st == "survived" and r["key"] in EQUIVALENT:
            st = "equivalent"
        elif st == "survived" and r["key"] in KILLED_LATER:
            st = KILLED_LATER[r["key"]][1]
        f[st] += 1
        total[st] += 1
    out["total"] = total
    for f in out.values():
        live = f["killed"] + f["timeout"] + f["suite"] + f["new"] + f["survived"]
        f["score_campaign"] = round((f["killed"] + f["timeout"]) / live, 3) if live else None
        f["score"] = round((live - f["survived"]) / live, 3) if live else None
    return out


def verify(key: str, pytest_args: list[str], timeout: float = 120) -> int:
    """Run pytest (``pytest_args``) on mutant ``key`` in a temporary copy of hwgen/, tests/ and
    pyproject.toml (run from that copy, so nothing resolves to the worktree's hwgen); print
    ``KILLED`` when pytest fails or runs past ``timeout`` seconds (a hang), ``SURVIVED`` when it
    passes. Returns pytest's exit status (124 for a timeout)."""
    site = {s.key: s for s in all_sites()}[key]
    with tempfile.TemporaryDirectory(prefix="hwgen-mut-") as tmp:
        work = Path(tmp)
        for d in ("hwgen", "tests", "benchmarks"):
            shutil.copytree(ROOT / d, work / d,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so", "obj_dir",
                                                          "results"))
        shutil.copy(ROOT / "pyproject.toml", work)
        target = work / "hwgen" / "gateware" / site.file
        target.write_text(mutate(target.read_text(), site))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            p = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                "no:cacheprovider", *pytest_args], cwd=work, env=env,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print("KILLED", key, f"| timeout after {timeout} s (a hang)")
            return 124
    tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
    print("KILLED" if p.returncode else "SURVIVED", key, "|", " / ".join(tail))
    return p.returncode


def table(data: dict) -> str:
    """The docs/verification.md block: per file and in total, and the survivors' fate."""
    summ = summary(data.get("mutants", {}))
    smp = data.get("sample", {})
    ran = sum(v for k, v in summ["total"].items() if not k.startswith("score"))
    lines = [
        f"{ran} mutants run of {smp.get('drawn', '?')} drawn (seed {smp.get('seed')}, uniform per "
        f"file, in random order) from {smp.get('sites', '?')} sites; killer set timeout "
        f"{data.get('timeout_s', '?')} s.",
        "",
        "| file | sites | run | killed | timeout | killed later: suite / new test | equivalent "
        "| survived | score (killer set) | score (all tests) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sites_ = smp.get("sites_per_file", {})
    for f in sorted(summ, key=lambda x: (x == "total", x)):
        r = summ[f]
        n = sum(v for k, v in r.items() if not k.startswith("score"))
        pct = [("-" if v is None else f"{100 * v:.0f}%") for v in (r["score_campaign"],
                                                                   r["score"])]
        lines.append(
            f"| {f} | {sites_.get(f, sum(sites_.values()) if f == 'total' else '?')} | {n} | "
            f"{r['killed']} | {r['timeout']} | {r['suite']} / {r['new']} | {r['equivalent']} | "
            f"{r['survived']} | {pct[0]} | {pct[1]} |")
    lines += ["", "Survivors of the killer set and their fate:", "",
              "| mutant | fate |", "|---|---|"]
    for k, r in sorted(data.get("mutants", {}).items()):
        if r["status"] != "survived":
            continue
        if k in EQUIVALENT:
            fate = f"equivalent: {EQUIVALENT[k]}"
        elif k in KILLED_LATER:
            test, where = KILLED_LATER[k]
            fate = f"killed by `{test}` ({'suite' if where == 'suite' else 'new test'})"
        else:
            fate = "**survives** (not yet examined)"
        lines.append(f"| `{k}` | {fate} |")
    return "\n".join(lines)


def show(keys) -> None:
    """Print each mutant's diff against the unparsed original."""
    import difflib

    every = {s.key: s for s in all_sites()}
    for k in keys:
        s = every[k]
        src = (GATEWARE / s.file).read_text()
        a, b = ast.unparse(ast.parse(src)).splitlines(), mutate(src, s).splitlines()
        print("==", k)
        for line in difflib.unified_diff(a, b, n=1, lineterm=""):
            if not line.startswith(("---", "+++")):
                print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--killer", action="store_true", help="run the killer set on this hwgen")
    ap.add_argument("--times", action="store_true", help="with --killer: time each check")
    ap.add_argument("--list", action="store_true", help="count the sites per file and operator")
    ap.add_argument("--budget", type=float, default=1800, help="campaign seconds")
    ap.add_argument("--per-mutant", type=float, default=30, help="expected seconds per mutant")
    ap.add_argument("--timeout", type=float, default=240, help="seconds before a mutant hangs")
    ap.add_argument("--deadline", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--check-timeout", type=float, default=0,
                    help="a check of the killer set running past this many seconds fails as a "
                    "hang (0: no limit but --timeout)")
    ap.add_argument("--rerun-timeouts", action="store_true",
                    help="run the recorded timeouts again (their records kept under "
                    "timeouts_rerun)")
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--only", nargs="*", help="site key prefixes (file:line:...)")
    ap.add_argument("--set", choices=sorted(SETS), default="dense",
                    help="the killer set (and its results file): dense (mutation.json) or delta"
                    " (the delta_*.py modules, mutation_delta.json)")
    ap.add_argument("--files", nargs="*", help="draw only from these modules (delta_update.py "
                    "...); with --resume, a new draw is added to the recorded sample")
    ap.add_argument("--show", nargs="*", help="print these mutants' diffs")
    ap.add_argument("--verify", metavar="KEY",
                    help="run pytest (the arguments after --) on this mutant")
    ap.add_argument("--summary", action="store_true", help="recompute the recorded summary")
    ap.add_argument("--record", action="store_true",
                    help="with the summary, write the table into docs/verification.md")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    global SET
    SET = args.set
    if args.verify:
        verify(args.verify, rest, args.timeout)
        return
    if args.show:
        show(args.show)
        return
    if args.summary or args.record:
        data = _load()
        data["summary"] = summary(data.get("mutants", {}))
        _save(data)
        print(json.dumps(data["summary"]["total"]))
        if args.record:
            sys.path.insert(0, str(Path(__file__).parent))
            from _record import write_block

            write_block("verification.md", "mutation" if SET == "dense" else "mutation-delta",
                        table(data))
        return
    if args.killer:
        sys.exit(run_killers(args.times, args.check_timeout))
    if args.list:
        ss = all_sites()
        print(json.dumps(_count(ss), indent=1), len(ss))
        ops: dict[str, int] = {}
        for s in ss:
            ops[s.op] = ops.get(s.op, 0) + 1
        print(ops)
        return
    campaign(args)


if __name__ == "__main__":
    main()
