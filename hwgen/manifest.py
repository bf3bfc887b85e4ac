"""The manifest of a generated accelerator (docs/manifest.md): its schema constants, and reading
one back with every field a consumer uses checked for type (``hwgen sim``, ``hwgen synth``).

The schema is machine-checked: ``hwgen/schemas/manifest.schema.json`` (JSON Schema 2020-12,
shipped as package data) lists every key of every object, its type and range; `check_schema`
holds a manifest to it, and runs on every manifest written (`hwgen.export.write_design`) and
read (`load_manifest`), so docs/manifest.md, the generator and the readers agree.

`load_manifest` refuses, with one line naming the field, a manifest that is not JSON, of another
schema or version, or whose fields have the wrong type; `check_model_file` verifies that the
folder's model file is the one the hardware was generated from (``model_sha256``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from importlib import resources
from pathlib import Path

from .fileio import read_versioned_json
from .spec import HwgenError

__all__ = ["MANIFEST_SCHEMA", "MANIFEST_VERSION", "load_manifest", "check_model_file",
           "check_schema", "json_schema"]

MANIFEST_SCHEMA = "hwgen-manifest"
MANIFEST_VERSION = 2
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a plain file name inside the folder
_SHA = re.compile(r"[0-9a-f]{64}")


@functools.cache
def json_schema() -> dict:
    """The manifest's JSON Schema (``hwgen/schemas/manifest.schema.json``, package data)."""
    text = resources.files("hwgen.schemas").joinpath("manifest.schema.json").read_text()
    return json.loads(text)


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_schema(manifest: dict, where) -> None:
    """Raise `HwgenError` unless ``manifest`` (as JSON: tuples are arrays) satisfies the
    manifest's JSON Schema; the one line names ``where``, the field (dotted path) and what is
    wrong with it."""
    from jsonschema.exceptions import best_match

    doc = json.loads(json.dumps(manifest))
    error = best_match(_validator().iter_errors(doc))
    if error is None:
        return
    path = ".".join(str(k) for k in error.absolute_path) or "(top level)"
    what = " ".join(error.message.split())
    if len(what) > 200:
        what = what[:200] + "..."
    raise HwgenError(f"{where}: field '{path}' does not match the manifest schema "
                     f"(hwgen/schemas/manifest.schema.json): {what}")


def _field(m, path: str, kind, p: Path):
    v = m
    for key in path.split("."):
        if not isinstance(v, dict) or key not in v:
            raise HwgenError(f"{p}: field '{path}' is missing; regenerate with 'hwgen generate'")
        v = v[key]
    if kind is int:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
        want = "a positive integer"
    elif isinstance(kind, re.Pattern):
        ok = isinstance(v, str) and kind.fullmatch(v) is not None
        want = {_NAME: "a Verilog identifier", _FILE: "a file name in the folder",
                _SHA: "64 lower-case hex digits"}[kind]
    else:
        ok = isinstance(v, kind)
        want = f"a JSON {'object' if kind is dict else 'array'}"
    if not ok:
        raise HwgenError(f"{p}: field '{path}' must be {want}, not {v!r}")
    return v


def load_manifest(rtl_dir) -> dict:
    """Read ``rtl_dir/manifest.json`` and check its schema (docs/manifest.md); returns the dict."""
    p = Path(rtl_dir) / "manifest.json"
    if not p.is_file():
        raise HwgenError(f"{rtl_dir}: no manifest.json; generate the RTL with 'hwgen generate'")
    m = read_versioned_json(p, MANIFEST_SCHEMA, MANIFEST_VERSION, kind="hwgen manifest",
                            missing="generate the RTL with 'hwgen generate'")
    _field(m, "top", _NAME, p)
    files = _field(m, "verilog", list, p)
    if not files or not all(isinstance(f, str) and _FILE.fullmatch(f) for f in files):
        raise HwgenError(f"{p}: field 'verilog' must list file names in the folder, not {files!r}")
    _field(m, "model_file", _FILE, p)
    _field(m, "model_sha256", _SHA, p)
    _field(m, "lanes", int, p)
    _field(m, "model.outputs", int, p)
    _field(m, "timing.cycles_per_timestep", int, p)
    for path in ("clock.port", "reset.port"):
        _field(m, path, _NAME, p)
    for side in ("input", "output"):
        for key in ("valid", "ready", "payload"):
            _field(m, f"streams.{side}.{key}", _NAME, p)
        _field(m, f"streams.{side}.payload_width", int, p)
        fields = _field(m, f"streams.{side}.fields", list, p)
        for f in fields:
            ok = (isinstance(f, dict) and isinstance(f.get("name"), str)
                  and all(isinstance(f.get(k), int) and not isinstance(f.get(k), bool)
                          and f[k] >= 0 for k in ("offset", "width")))
            if not ok:
                raise HwgenError(f"{p}: field 'streams.{side}.fields' holds a malformed entry "
                                 f"{f!r}")
    _check_stream_fields(m, p)
    check_schema(m, p)
    return m


def _check_stream_fields(m: dict, p: Path) -> None:
    """The payload fields the benches read (issue 25: an emptied list was a traceback in sim):
    input ``sos`` and one data field (``x`` or ``token``), output ``logits`` with one element
    per model output."""
    def names(side):
        return {f["name"]: f for f in m["streams"][side]["fields"]}

    def bad(side, what):
        raise HwgenError(f"{p}: field 'streams.{side}.fields' {what}; regenerate with "
                         "'hwgen generate'")

    inp, out = names("input"), names("output")
    if "sos" not in inp or len(set(inp) & {"x", "token"}) != 1:
        bad("input", f"must hold 'sos' and one of 'x' or 'token', not {sorted(inp)}")
    logits = out.get("logits")
    if logits is None:
        bad("output", f"must hold 'logits', not {sorted(out)}")
    if logits.get("count") != m["model"]["outputs"]:
        bad("output", f"'logits' must count {m['model']['outputs']} outputs (model.outputs), "
                      f"not {logits.get('count')!r}")


def check_model_file(rtl_dir, manifest: dict) -> Path:
    """The folder's model file, after checking that its sha256 is the manifest's
    ``model_sha256`` (else the RTL and the model it would be checked against differ)."""
    path = Path(rtl_dir) / manifest["model_file"]
    if not path.is_file():
        raise HwgenError(f"{path}: missing (named by the manifest's 'model_file')")
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise HwgenError(f"{path}: cannot read ({e.strerror or e})") from None
    if digest != manifest["model_sha256"]:
        raise HwgenError(
            f"{path} is not the model this RTL was generated from (its sha256 differs from the "
            "manifest's model_sha256); regenerate with 'hwgen generate', or pass the reference "
            "model with --model"
        )
    return path
