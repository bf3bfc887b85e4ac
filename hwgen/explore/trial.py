"""One trial of an exploration: train quantization-aware, evaluate with the golden model.

`run_trial` is what a Ray Tune trial runs (`hwgen.explore.runner`), and it runs as well without
Ray (a plain function of a JSON-able spec). It needs PyTorch (the ``train`` extra).

Protocol (docs/explore.md): the trainer keeps the parameters with the best **valid** metric of
its training forward (`hwgen.train.trainer.train`); the frozen model is then measured with the
**golden model** (the integer arithmetic of the hardware) on the valid split, which the
exploration uses for selection, and on the test split, which it reports.
"""

from __future__ import annotations

import base64
import math
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from ..report import weights_summary
from ..spec import HwgenError
from .space import DatasetRef, TrialConfig

__all__ = ["trial_spec", "run_trial", "record_error"]


def trial_spec(ds: DatasetRef, cfg: TrialConfig, key: str, checkpoint: Path | None) -> dict:
    """The JSON-able description of a trial that `run_trial` takes (and Ray Tune carries)."""
    return {
        "hash": key,
        "dataset": ds.to_json(),
        "config": cfg.to_json(),
        "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
    }


def record_error(spec: dict, error: str, seconds: float = 0.0, status: str = "error") -> dict:
    """The record of a trial that did not produce a model (``status`` error or stopped)."""
    return {
        "hash": spec["hash"],
        "config": spec["config"],
        "dataset": spec["dataset"]["ident"],
        "status": status,
        "error": error,
        "seconds": round(seconds, 2),
        "node": platform.node(),
    }


def run_trial(spec: dict, on_eval: Callable[[dict], None] | None = None) -> tuple[dict, bytes]:
    """Train and evaluate the trial ``spec`` (from `trial_spec`).

    Returns ``(record, model_file_bytes)``; the record holds the golden metric on valid and
    test, the float forward's, the training forward's test metric, the training time and the
    weight statistics. Any failure returns a record with ``status`` ``error`` and the message,
    and empty bytes: a failed trial never raises. ``on_eval`` gets every per-epoch (or
    per-evaluation) history entry of the trainer. With a ``checkpoint`` path in the spec,
    training resumes from it when it exists (an interrupted trial continues); it is removed
    when the trial finishes.
    """
    t0 = time.monotonic()
    try:
        return _run(spec, on_eval, t0)
    except HwgenError as e:
        return record_error(spec, str(e), time.monotonic() - t0), b""
    except Exception as e:  # noqa: BLE001 - a failed trial is recorded, never fatal
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        return record_error(spec, f"{type(e).__name__}: {e}{where}", time.monotonic() - t0), b""


def _run(spec: dict, on_eval, t0: float) -> tuple[dict, bytes]:
    from ..train import require_torch

    require_torch()
    from ..modelfile import to_bytes
    from ..train.datasets import load_dataset
    from ..train.evaluate import evaluate
    from ..train.trainer import TrainConfig, set_threads, train

    set_threads(1)
    ds_ref = spec["dataset"]
    cfg = TrialConfig.from_json(spec["config"])
    ds = load_dataset(ds_ref["source"])
    charlm = ds.kind == "charlm"
    tc = TrainConfig(
        dataset=ds_ref["source"], cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers,
        quant=cfg.quant, epochs=None if charlm else cfg.budget,
        budget_chars=cfg.budget if charlm else None, seed=cfg.seed, batch=cfg.batch,
        lr=float(cfg.lr), bits=cfg.bits, delta=cfg.delta,
    )
    ckpt = Path(spec["checkpoint"]) if spec.get("checkpoint") else None
    if ckpt is not None:
        try:  # a cluster's worker may not have the driver's folder: then no checkpoint
            ckpt.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            ckpt = None
    r = train(tc, ds, checkpoint=ckpt, resume=True, quiet=True, on_eval=on_eval)
    valid = evaluate(r.model, ds, "valid", max_chars=tc.valid_chars if charlm else None)
    model = r.model
    mats = model.matrices()
    n = sum(m.codes.size for _, m in mats)
    data = to_bytes(model)
    record = {
        "hash": spec["hash"],
        "config": spec["config"],
        "dataset": ds_ref["ident"],
        "status": "ok",
        "error": None,
        "metric": r.metrics.metric,
        "valid": valid.golden_value,
        "valid_float": valid.float_value,
        "test": r.metrics.golden_value,
        "test_float": r.metrics.float_value,
        "test_train_forward": r.torch_test,
        "best_valid_train_forward": None if math.isnan(r.best_valid) else r.best_valid,
        "valid_count": valid.count,
        "test_count": r.metrics.count,
        "train_seconds": round(r.seconds, 2),
        "seconds": round(time.monotonic() - t0, 2),
        "weight_bits": model.weight_memory_bits,
        "zero_fraction": round(float(sum(m.sparsity * m.codes.size for _, m in mats) / n), 4),
        "encoding": weights_summary(model),
        "model_bytes": len(data),
        "node": platform.node(),
    }
    if model.delta is not None and valid.columns is not None and not charlm:  # issue 23
        record["delta_valid"] = {"columns": valid.columns,
                                 "sos_fraction": len(ds.valid.y) / int(ds.valid.lengths.sum())}
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()
    return record, data


def encode_model(data: bytes) -> str:
    """Model file bytes as text for a Tune result (a cluster's driver may not share our disk)."""
    return base64.b64encode(data).decode("ascii")


def decode_model(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


__all__ += ["encode_model", "decode_model"]
