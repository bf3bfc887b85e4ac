"""Running an exploration on Ray Tune (the ``explore`` extra), locally or on a cluster.

`explore` resolves the design space against the folder's cache (`hwgen.explore.store`), hands
the trials that have no record yet to a Ray Tune ``Tuner`` (one CPU and one torch thread per
trial; grid search over the listed trials, optional ASHA early stopping on the trainer's valid
metric), writes every finished trial's record and model file as Tune reports it (a driver-side
Tune callback: nothing is lost when the exploration is interrupted, and a cluster's workers need
not share the driver's disk), optionally synthesizes the Pareto-optimal designs as Ray tasks,
and renders the results (`hwgen.explore.report`).

Ray is imported only here and only inside functions: the rest of hwgen never imports it.
Local runs start an embedded Ray with ``num_cpus`` CPUs (no set-up); ``address`` connects to a
running cluster instead (``ray start --head`` on one machine, ``ray start --address=...`` on the
others, hwgen installed on all of them; docs/explore.md).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..spec import HwgenError, check_positive_int
from .designs import COSTS, Platform
from .report import Rendered, collect, render, synth_current
from .space import DatasetRef, TrialConfig, trial_hash
from .store import Store
from .trial import decode_model, encode_model, record_error, run_trial, trial_spec

__all__ = ["RAY_MISSING", "require_ray", "explore", "tune_trainable", "synth_design"]

RAY_MISSING = ("hwgen explore runs on Ray, which is not installed; install the explore extra: "
               "pip install 'hwgen[explore]' (in a checkout: pip install -e '.[explore]')")


def require_ray(address: str | None = None):
    """Import and return ``(ray, ray.tune)``, or raise a `HwgenError` saying how to install it.

    With an ``address`` (a cluster to join) and a token in ``~/.ray/auth_token``, token
    authentication is switched on first (``RAY_AUTH_MODE=token`` unless set): Ray 2.60 clusters
    require it, and a driver that is not told before Ray is imported sends its first request
    without the token and is refused."""
    if address and "RAY_AUTH_MODE" not in os.environ \
            and (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress lines instead
    try:
        import ray
        from ray import tune
    except ImportError:
        raise HwgenError(RAY_MISSING) from None
    return ray, tune


def tune_trainable(config: dict) -> None:
    """The Ray Tune function trainable: runs `run_trial` on ``config["spec"]``, reports the
    trainer's valid metric after every epoch (``valid_tf``, for progress and early stopping)
    and finally the record and the model file (base64) in one result."""
    from ray import tune

    spec = config["spec"]
    worst = config["worst"]

    def on_eval(entry: dict) -> None:
        tune.report({"valid_tf": entry["valid"], "step": entry.get("epoch", entry.get("chars"))})

    record, data = run_trial(spec, on_eval)
    tune.report({
        "valid_tf": record.get("best_valid_train_forward") or worst,
        "record": json.dumps(record),
        "model": encode_model(data),
    })


def synth_design(model_bytes: bytes, lanes: int, target: str, out_dir: str, seeds: int) -> dict:
    """Generate and synthesize one design (`hwgen.export.generate`, `hwgen.synth.synthesize`)
    in ``out_dir``; returns the report's figures with ``status`` ok, or ``status`` error and the
    message. Never raises."""
    from ..export import generate
    from ..modelfile import load_model
    from ..synth import read_rtl_dir, synthesize

    out = Path(out_dir)
    t0 = time.monotonic()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.hwgm").write_bytes(model_bytes)
        generate(load_model(out / "model.hwgm"), out / "rtl", lanes)
        rtl = read_rtl_dir(out / "rtl")
        r = synthesize(list(rtl.sources), rtl.top, target, out / "synth", seeds=seeds,
                       cycles_per_timestep=rtl.cycles_per_timestep)
    except Exception as e:  # noqa: BLE001 - a failed synthesis is recorded, never fatal
        msg = str(e) if isinstance(e, HwgenError) else f"{type(e).__name__}: {e}"
        return {"status": "error", "error": msg, "seconds": round(time.monotonic() - t0, 1)}
    return {
        "status": "ok", "luts": r.luts, "ffs": r.ffs, "bram": r.bram, "dsp": r.dsp,
        "lut_equivalent": r.lut_equivalent, "fmax_mhz": r.fmax_mhz,
        "us_per_timestep_at_fmax": r.us_per_timestep, "seeds": seeds,
        "cycles_per_timestep": rtl.cycles_per_timestep,
        "tool_versions": r.tool_versions, "seconds": round(time.monotonic() - t0, 1),
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _settings(ds: DatasetRef, plat: Platform, configs, keys, lanes, max_latency_us, tolerance,
              search: dict, old: dict | None) -> dict:
    budgets = sorted({c.budget for c in configs})
    return {
        "version": 1,
        "hwgen": __version__,
        "dataset": {**ds.to_json(), "metric": ds.metric},
        "platform": plat.to_json(),
        "lanes": list(lanes),
        "max_latency_us": max_latency_us,
        "tolerance": tolerance,
        "budget": budgets[0] if len(budgets) == 1 else budgets,
        "budget_unit": ds.budget_unit,
        "search": search,
        "trials": [{"hash": k, "label": c.label(), "config": c.to_json()}
                   for k, c in zip(keys, configs, strict=True)],
        "runs": list((old or {}).get("runs", [])),
    }


class _Progress:
    """Progress lines of an exploration (stderr): one per finished trial, and a line naming the
    running trials at most every ``every`` seconds."""

    def __init__(self, total: int, log: Callable[[str], None], every: float = 30.0):
        self.total, self.log, self.every = total, log, every
        self.done = self.failed = self.stopped = 0
        self.t0 = self.last = time.monotonic()
        self.running: dict[str, str] = {}

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.t0:.0f} s"

    def finished(self, label: str, record: dict) -> None:
        self.done += 1
        self.running.pop(record["hash"], None)
        if record["status"] == "ok":
            m = record["metric"]
            text = (f"valid {record['valid']:.4f}  test {record['test']:.4f} {m} (golden), "
                    f"trained in {record['train_seconds']:.0f} s")
        else:
            if record["status"] == "stopped":
                self.stopped += 1
            else:
                self.failed += 1
            text = f"{record['status'].upper()}: {record['error']}"
        el = time.monotonic() - self.t0
        eta = el / self.done * (self.total - self.done)
        self.log(f"[{self.done}/{self.total}] {label}: {text}  ({el:.0f} s, eta {eta:.0f} s)")

    def epoch(self, key: str, label: str, result: dict) -> None:
        self.running[key] = f"{label} @{result.get('step')}: {result['valid_tf']:.3f}"
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.log(f"  running ({self.elapsed()}): " + "; ".join(self.running.values()))


def _make_callback(tune, store: Store, specs: dict, labels: dict, progress: _Progress):
    class Recorder(tune.Callback):
        """Writes each trial's record as Tune reports it (runs in the driver)."""

        def __init__(self):
            self.saved: set[str] = set()

        def _save(self, key: str, record: dict, model: bytes = b"") -> None:
            if key in self.saved:
                return
            self.saved.add(key)
            store.save_record(record, model)
            progress.finished(labels[key], record)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            key = trial.config["spec"]["hash"]
            if "record" in result:
                self._save(key, json.loads(result["record"]), decode_model(result["model"]))
            elif "valid_tf" in result:
                progress.epoch(key, labels[key], result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            key = trial.config["spec"]["hash"]
            last = trial.last_result or {}
            if "record" in last:
                self._save(key, json.loads(last["record"]), decode_model(last["model"]))
            elif key not in self.saved:
                unit = "characters" if specs[key]["dataset"]["kind"] == "charlm" else "epoch"
                v = last.get("valid_tf")
                why = (f"stopped early by ASHA after {unit} {last.get('step')}"
                       + ("" if v is None else f" (valid {v:.4f}, training forward)"))
                self._save(key, record_error(specs[key], why, status="stopped"))

        def on_trial_error(self, iteration, trials, trial, **info):
            key = trial.config["spec"]["hash"]
            err = None
            try:
                err = trial.get_error()
            except Exception:  # noqa: BLE001 - the message is best effort
                pass
            text = str(err).strip().splitlines()[-1] if err else "the trial's process failed"
            self._save(key, record_error(specs[key], f"Ray: {text}"))

    return Recorder()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A clear error now for a ``host:port`` nobody answers on (Ray itself retries for many
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise HwgenError(f"--address must be host:port, 'auto' or ray://host:port, not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise HwgenError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def _init_ray(ray, address: str | None, cpus: int | None) -> tuple[bool, str]:
    """Connect or start Ray; returns (whether we started it, a description of the cluster)."""
    if ray.is_initialized():
        res = ray.cluster_resources()
        return False, f"Ray (running, {res.get('CPU', 0):g} CPUs)"
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1, **kw)
    except Exception as e:  # noqa: BLE001 - Ray's own errors become one line
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise HwgenError(f"cannot start {where}: {str(e).strip().splitlines()[0]}") from None
    res = ray.cluster_resources()
    kind = f"Ray cluster {address}" if address else "local Ray"
    return True, f"{kind}, {res.get('CPU', 0):g} CPUs"


def _check_options(configs, lanes, tolerance, **counts) -> None:
    """`explore`'s argument checks: a clear `HwgenError` for an empty space or lane list, a
    negative tolerance, or a count (``counts``: None or a positive integer) that is not one."""
    if not lanes:
        raise HwgenError(f"lanes must be a non-empty list of positive integers, not {lanes!r}")
    for p in lanes:
        check_positive_int("Each lane count", p)
    if not configs:
        raise HwgenError("the design space is empty: no trial configurations")
    if not tolerance >= 0:
        raise HwgenError(f"the tolerance must be a number >= 0, not {tolerance!r}")
    for name, v in counts.items():
        if v is not None:
            check_positive_int(name, v)


def _run_record(store: Store, pending: list, total: int, started_at: str, t0: float,
                concurrent, cluster: str, interrupted: bool) -> dict:
    """The settings' record of one run: what of ``pending`` finished, failed or stopped."""
    finished = failed = stopped = 0
    for k in pending:
        rec = store.load_record(k)
        finished += rec is not None
        failed += rec is not None and rec["status"] == "error"
        stopped += rec is not None and rec["status"] == "stopped"
    return {
        "started": started_at, "wall_seconds": round(time.monotonic() - t0, 1),
        "ran": finished, "cached": total - len(pending), "failed": failed,
        "stopped": stopped,
        "concurrent": concurrent or "one per CPU", "cluster": cluster,
        "interrupted": interrupted,
    }


def explore(
    out,
    dataset: DatasetRef,
    configs: list[TrialConfig],
    plat: Platform,
    *,
    lanes: list[int],
    max_latency_us: float | None = None,
    tolerance: float = 0.02,
    address: str | None = None,
    cpus: int | None = None,
    concurrent: int | None = None,
    early_stop: bool = False,
    retry_failed: bool = False,
    synth: bool = False,
    synth_max: int = 3,
    synth_seeds: int = 1,
    search: dict | None = None,
    plots: bool = True,
    log: Callable[[str], None] | None = None,
) -> Rendered:
    """Run the exploration of ``configs`` on ``dataset`` for ``plat`` into folder ``out``.

    Trials with a record in ``out`` are not run again (errors and early stops too, unless
    ``retry_failed``); an interrupted trial resumes from its training checkpoint. A failed trial
    is recorded with its error and the others go on. ``concurrent`` bounds the trials running at
    once (default: one per CPU Ray has); ``cpus`` sizes a local Ray (default: all cores).
    ``early_stop`` stops trials whose valid metric falls behind (ASHA; they get no design).
    ``synth`` synthesizes up to ``synth_max`` feasible designs of the Pareto fronts (best valid
    metric first) with ``synth_seeds`` place-and-route seeds. Returns the rendered results.
    Raises `HwgenError` when Ray is missing or cannot start.
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    _check_options(configs, lanes, tolerance, cpus=cpus, concurrent=concurrent,
                   synth_max=synth_max, synth_seeds=synth_seeds)
    if address:
        _check_reachable(address)
    ray, tune = require_ray(address)
    store = Store(out)
    store.create()
    old = None
    try:
        old = store.load_settings()
    except HwgenError:
        pass
    keys = [trial_hash(dataset, c) for c in configs]
    settings = _settings(dataset, plat, configs, keys, lanes, max_latency_us, tolerance,
                         search or {}, old)
    store.save_settings(settings)

    by_key = dict(zip(keys, configs, strict=True))
    pending = []
    for k in keys:
        rec = store.load_record(k)
        if rec is None or (retry_failed and rec["status"] != "ok"):
            pending.append(k)
    t0, started_at = time.monotonic(), _now()
    started, cluster = False, "no Ray (all cached)"
    interrupted = False
    try:
        if pending or synth:
            started, cluster = _init_ray(ray, address, cpus)
        if pending:
            interrupted = _run_trials(tune, store, dataset, by_key, pending, cluster, concurrent,
                                      early_stop, log)
        else:
            log(f"trials: all {len(keys)} cached in {store.trials}; nothing to train")
        if synth and not interrupted:
            _run_synth(ray, store, plat, synth_max, synth_seeds, log)
    finally:
        settings["runs"].append(_run_record(store, pending, len(keys), started_at, t0,
                                            concurrent, cluster, interrupted))
        store.save_settings(settings)
        if started:
            ray.shutdown()
    if interrupted:
        raise KeyboardInterrupt
    return render(out, plots=plots)


def _run_trials(tune, store, dataset, by_key, pending, cluster, concurrent, early_stop,
                log) -> bool:
    """Run the pending trials on Tune; returns True when interrupted."""
    specs = {k: trial_spec(dataset, by_key[k], k, store.checkpoint_path(k)) for k in pending}
    labels = {k: by_key[k].label() for k in pending}
    higher = dataset.higher_is_better
    worst = 0.0 if higher else 1e9
    progress = _Progress(len(pending), log)
    log(f"trials: running {len(pending)} on {cluster}"
        + (f", at most {concurrent} at a time" if concurrent else "")
        + (", ASHA early stopping" if early_stop else ""))
    scheduler, metric, mode = None, None, None
    if early_stop:
        from ray.tune.schedulers import ASHAScheduler

        budget = max(c.budget for c in by_key.values())
        evals = budget if dataset.kind == "classify" else 10  # TrainConfig.evals
        metric, mode = "valid_tf", "max" if higher else "min"
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=evals + 1,
                                  grace_period=max(1, evals // 4), reduction_factor=3)
    tuner = tune.Tuner(
        tune.with_resources(tune_trainable, {"cpu": 1}),
        param_space={"spec": tune.grid_search([specs[k] for k in pending]), "worst": worst},
        tune_config=tune.TuneConfig(metric=metric, mode=mode, scheduler=scheduler,
                                    max_concurrent_trials=concurrent, reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"explore-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(store.ray.resolve()),
            callbacks=[_make_callback(tune, store, specs, labels, progress)],
            verbose=0,
        ),
    )
    try:
        tuner.fit()
    except KeyboardInterrupt:
        log("interrupted: finished trials are kept; run the same command to continue")
        return True
    missing = [k for k in pending if store.load_record(k) is None]
    if missing:
        log(f"interrupted: {len(missing)} trials did not finish; run the same command to "
            "continue")
        return True
    log(f"{progress.done} trials in {progress.elapsed()}, {progress.failed} failed"
        + (f", {progress.stopped} stopped early" if progress.stopped else ""))
    return False


def _run_synth(ray, store: Store, plat: Platform, synth_max: int, synth_seeds: int, log) -> None:
    """Synthesize the best feasible designs of the fronts as Ray tasks (cached per design)."""
    r = collect(store.root)
    higher = r.higher_is_better
    front = [x for x in r.rows if x.get("lanes") is not None and x["feasible"]
             and any(x.get(f"front_{n}") for n in COSTS)]
    front.sort(key=lambda x: (-x["valid"] if higher else x["valid"], x["logic_cells"]))
    chosen = front[:synth_max]
    todo = []
    for x in chosen:
        syn = store.load_synth(x["trial"], x["lanes"], plat.target)
        if syn is None or not synth_current(syn, x["cycles_worst"]):
            todo.append(x)
    if not todo:
        log(f"synthesis: {len(chosen)} front designs already synthesized")
        return
    log(f"synthesis: {len(todo)} of the {len(front)} front designs on {plat.target} "
        f"({synth_seeds} place-and-route seed(s) each) ...")
    task = ray.remote(num_cpus=1)(synth_design)
    refs = {}
    for x in todo:
        data = store.model_path(x["trial"]).read_bytes()
        d = store.synth_dir(x["trial"], x["lanes"], plat.target).resolve()
        refs[task.remote(data, x["lanes"], plat.target, str(d), synth_seeds)] = x
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        x = refs[done[0]]
        res = ray.get(done[0])
        store.save_synth(x["trial"], x["lanes"], plat.target, res)
        what = (f"{res['luts']} LUT4, {res['ffs']} FF, {res['bram']} RAM, Fmax "
                f"{res['fmax_mhz']} MHz" if res["status"] == "ok" else f"ERROR: {res['error']}")
        log(f"  synthesized {x['label']} P={x['lanes']}: {what} ({res['seconds']:.0f} s)")
