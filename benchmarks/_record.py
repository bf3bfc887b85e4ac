"""Shared by the benchmark scripts: tool versions and writing a result block into a docs page."""

from __future__ import annotations

import platform
import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def versions(*packages: str) -> str:
    parts = [f"Python {platform.python_version()}"]
    for p in ("numpy", *packages):
        try:
            parts.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{p} (not installed)")
    return ", ".join(parts)


def write_block(doc: str, name: str, text: str) -> None:
    """Replace what stands between <!-- name:begin --> and <!-- name:end --> in docs/<doc>."""
    path = ROOT / "docs" / doc
    body = path.read_text()
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(body):
        raise SystemExit(f"docs/{doc} has no <!-- {name}:begin/end --> markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip() + "\n" + m.group(2), body))
    print(f"wrote docs/{doc} ({name})")
