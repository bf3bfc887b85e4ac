"""The folder of an exploration (``hwgen explore -o DIR``): settings, the trial cache, synthesis
results, Ray Tune's own files and the rendered results.

::

    DIR/exploration.json          settings, the trial list (hash + configuration), run history
    DIR/trials/HASH.json          one record per finished trial (ok, error or stopped)
    DIR/trials/HASH.hwgm          its model file (ok trials)
    DIR/trials/HASH.ckpt          training checkpoint of an unfinished trial (removed when done)
    DIR/synth/HASH-pP-TARGET/     generated Verilog and `hwgen.synth` output of a design
    DIR/ray/                      Ray Tune's experiment folders
    DIR/trials.csv, trials.json   the table of all designs and failed trials
    DIR/front_*.png, summary.md   fronts and recommendations

Every file is written to a temporary name and renamed, so an interrupted exploration never
leaves a half-written record: a record that exists is a finished trial.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..spec import HwgenError

__all__ = ["SETTINGS", "Store"]

SETTINGS = "exploration.json"


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class Store:
    """Paths and atomic reads/writes inside an exploration folder."""

    def __init__(self, root):
        self.root = Path(root)

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def synth(self) -> Path:
        return self.root / "synth"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    def create(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise HwgenError(f"{self.root}: exists and is not a folder")
        self.trials.mkdir(parents=True, exist_ok=True)

    # -- settings --------------------------------------------------------------------------------
    def save_settings(self, settings: dict) -> None:
        _write(self.root / SETTINGS, (json.dumps(settings, indent=1) + "\n").encode())

    def load_settings(self) -> dict:
        path = self.root / SETTINGS
        if not path.is_file():
            raise HwgenError(f"{self.root}: no {SETTINGS}; not an exploration folder "
                             "(written by hwgen explore -o DIR)")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise HwgenError(f"{path}: not readable ({e})") from None

    # -- trials ----------------------------------------------------------------------------------
    def record_path(self, key: str) -> Path:
        return self.trials / f"{key}.json"

    def model_path(self, key: str) -> Path:
        return self.trials / f"{key}.hwgm"

    def checkpoint_path(self, key: str) -> Path:
        return self.trials / f"{key}.ckpt"

    def load_record(self, key: str) -> dict | None:
        """The finished trial's record, or None (never run, or its files are incomplete)."""
        path = self.record_path(key)
        if not path.is_file():
            return None
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if rec.get("status") == "ok" and not self.model_path(key).is_file():
            return None
        return rec

    def save_record(self, record: dict, model: bytes = b"") -> None:
        """Write the model file first, then the record (the record marks the trial finished)."""
        self.trials.mkdir(parents=True, exist_ok=True)
        if record["status"] == "ok":
            _write(self.model_path(record["hash"]), model)
        _write(self.record_path(record["hash"]),
               (json.dumps(record, indent=1) + "\n").encode())

    # -- synthesis -------------------------------------------------------------------------------
    def synth_dir(self, key: str, lanes: int, target: str) -> Path:
        return self.synth / f"{key}-p{lanes}-{target}"

    def load_synth(self, key: str, lanes: int, target: str) -> dict | None:
        """The synthesis result of a design: the `hwgen.synth` report (``status`` ok) or an
        error record; None when it was never synthesized."""
        path = self.synth_dir(key, lanes, target) / "explore_synth.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def save_synth(self, key: str, lanes: int, target: str, result: dict) -> None:
        d = self.synth_dir(key, lanes, target)
        d.mkdir(parents=True, exist_ok=True)
        _write(d / "explore_synth.json", (json.dumps(result, indent=1) + "\n").encode())
