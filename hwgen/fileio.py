"""Files in and out, safely: output locations checked before the work starts, every output
written atomically (a complete file or none), arrays read without pickle.

- `check_output_file` / `check_output_dir`: called by every command (and API function) that writes,
  before any training, simulation or synthesis, so a typo in ``-o`` costs nothing.
- `atomic_write_bytes` / `atomic_write_text` / `save_npy`: write to a temporary file in the same
  folder, then rename it over the target (``os.replace`` is atomic on POSIX); on any failure the
  temporary file is removed and the target is untouched.
- `load_npy`: a ``.npy`` array, ``allow_pickle=False``, with one-line errors.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from .spec import HwgenError

__all__ = [
    "read_versioned_json",
    "check_output_file",
    "check_output_dir",
    "check_distinct_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_files",
    "npy_bytes",
    "save_npy",
    "load_npy",
]


def _existing_ancestor(p: Path) -> Path:
    q = p
    while not q.exists():
        if q.parent == q:
            break
        q = q.parent
    return q


def check_output_file(path, what: str = "output file") -> Path:
    """``path`` as a Path after checking that a file can be written there: its folder exists and
    is writable and ``path`` is not a folder. Raises `HwgenError` otherwise. Writes nothing."""
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise HwgenError(f"{what} must be a file name, not {str(path)!r}")
    if p.is_dir():
        raise HwgenError(f"{what} {p} is a folder; expected a file name")
    if _special(p):  # a device or FIFO is written in place: its own permission counts
        if not os.access(p, os.W_OK):
            raise HwgenError(f"cannot write {what} {p}: permission denied")
        return p
    parent = p.parent
    if not parent.is_dir():
        raise HwgenError(f"cannot write {what} {p}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HwgenError(f"cannot write {what} {p}: the folder {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK) and not os.access(parent, os.W_OK):
        raise HwgenError(f"cannot write {what} {p}: permission denied")
    return p


def check_output_dir(path, what: str = "output folder") -> Path:
    """``path`` as a Path after checking that it is, or can be created as, a writable folder (the
    nearest existing ancestor must be a writable folder). Creates nothing."""
    p = Path(path)
    if str(path) == "":
        raise HwgenError(f"{what} must be a folder name, not ''")
    if p.exists():
        if not p.is_dir():
            raise HwgenError(f"{what} {p} exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise HwgenError(f"cannot write into {what} {p}: permission denied")
        return p
    anc = _existing_ancestor(p.absolute())
    if not anc.is_dir():
        raise HwgenError(f"cannot create {what} {p}: {anc} is not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise HwgenError(f"cannot create {what} {p}: {anc} is not writable")
    return p


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; raises `HwgenError` (one line) when it cannot."""
    atomic_write_files({path: data})


def _special(p: Path) -> bool:
    """True for an existing target that is not a regular file or a folder (a device such as
    /dev/null or /dev/full, a FIFO): written in place, never replaced by a rename."""
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def atomic_write_files(files: dict) -> None:
    """Write several files, all or none: every content goes to a temporary file next to its
    target first; only when all are written are they renamed over their targets. A target that
    is a folder is refused before anything is written; if a rename still fails, the targets
    already renamed get their previous contents back (or are removed when they were new). On a
    failure the temporary files are removed and `HwgenError` names the file and the reason.

    A target that is a device or a FIFO (``-o /dev/null``, ``/dev/stdout``, ``/dev/full``) is
    written in place, before the renames, and a failed write (e.g. ENOSPC on /dev/full) is an
    error too: the device is never replaced by a regular file."""
    paths = [Path(p) for p in files]
    for p in paths:
        if p.is_dir():
            raise HwgenError(f"cannot write {p}: it is a folder")
    temps: list[tuple[str, Path]] = []
    done: list[tuple[Path, bytes | None]] = []  # renamed targets and their previous bytes
    current = None
    try:
        for p, data in zip(paths, files.values(), strict=True):
            current = p
            if _special(p):
                continue
            fd, tmp = tempfile.mkstemp(dir=p.parent if str(p.parent) else ".",
                                       prefix=f".{p.name}.", suffix=".part")
            temps.append((tmp, p))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
        for p, data in zip(paths, files.values(), strict=True):
            if _special(p):
                current = p
                with open(p, "wb") as f:
                    f.write(data)
        for tmp, p in temps:
            current = p
            several = len(temps) > 1  # one file needs no undo: its rename is the last step
            old = p.read_bytes() if several and p.is_file() else None
            os.replace(tmp, p)
            if several:
                done.append((p, old))
        temps = []
    except OSError as e:
        _roll_back(done)
        raise HwgenError(f"cannot write {current}: {e.strerror or e}") from None
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)


def _roll_back(done: list[tuple[Path, bytes | None]]) -> None:
    """Undo the renames of a failed `atomic_write_files`: previous contents back, new files
    removed (best effort: a failure here leaves the file as the set wrote it)."""
    for p, old in reversed(done):
        try:
            if old is None:
                p.unlink(missing_ok=True)
            else:
                p.write_bytes(old)
        except OSError:
            pass


def check_distinct_output(output, *inputs, what: str = "output file") -> None:
    """Refuse an ``output`` path that names one of the ``inputs`` (the same file, through any
    spelling or link): writing it would destroy an input before (or while) it is read."""
    out = Path(output)
    for i in inputs:
        if i is None:
            continue
        i = Path(i)
        same = (os.path.samefile(out, i) if out.exists() and i.exists()
                else out.absolute() == i.absolute())
        if same and not _special(out):
            raise HwgenError(f"the {what} {out} is the input file {i}: it would be overwritten; "
                             "choose another output name")


def atomic_write_text(path, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def npy_bytes(array) -> bytes:
    """The ``.npy`` file of ``array`` (no pickle)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def save_npy(path, array) -> None:
    """Save ``array`` as ``.npy`` at exactly ``path`` (no suffix added), atomically, no pickle."""
    atomic_write_bytes(path, npy_bytes(array))


def load_npy(path, what: str = "") -> np.ndarray:
    """Load a ``.npy`` array without pickle; a one-line `HwgenError` for a missing, unreadable,
    corrupt or object (pickled) array."""
    p = Path(path)
    if not p.exists():
        raise HwgenError(f"{p}: no such file")
    if not p.is_file():
        raise HwgenError(f"{p}: not a file")
    try:
        a = np.load(p, allow_pickle=False, mmap_mode=None)
    except Exception as e:  # any failure to decode a foreign file: one line, no traceback
        why = " ".join(f"{type(e).__name__}: {e}".split())
        raise HwgenError(f"{p}: not a readable .npy array ({why})") from None
    if not isinstance(a, np.ndarray):
        a.close()  # an NpzFile holds its file open
        raise HwgenError(f"{p}: holds several arrays (an .npz archive); expected one .npy array")
    return a


def read_versioned_json(path, schema: str, version: int, *, missing: str, kind: str) -> dict:
    """A JSON object written by hwgen with ``"schema": schema`` and ``"version": version``: the
    one reader of hwgen's versioned JSON files (manifest, shape, build report). `HwgenError`
    for a missing file (``missing``: what to do), unreadable or invalid JSON, another schema
    (``kind``: what the file should be, e.g. "hwgen manifest") or another version."""
    p = Path(path)
    if not p.is_file():
        raise HwgenError(f"{p}: missing; {missing}")
    try:
        doc = json.loads(p.read_bytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise HwgenError(f"{p}: not valid JSON ({' '.join(str(e).split())})") from None
    except OSError as e:
        raise HwgenError(f"{p}: cannot read ({e.strerror or e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise HwgenError(f"{p}: not a {kind} (schema {schema!r})")
    v = doc.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v != version:
        raise HwgenError(f"{p}: {kind.removeprefix('hwgen ')} version {v!r}; this hwgen reads "
                         f"version {version}")
    return doc
