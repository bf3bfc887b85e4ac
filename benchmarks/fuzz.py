"""Run the fuzz properties of tests/test_fuzz.py with many examples and write the table of cases
by class and outcome into docs/robustness.md (between the markers).

    .venv/bin/python benchmarks/fuzz.py [EXAMPLES]     # default 1000 per property
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "robustness.md"
BEGIN, END = "<!-- fuzz table: begin -->", "<!-- fuzz table: end -->"


def main(examples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "cases.jsonl"
        env = dict(os.environ, HWGEN_FUZZ_EXAMPLES=str(examples), HWGEN_FUZZ_RECORD=str(record))
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_fuzz.py", "-k", "mutated or cli_fuzz"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        print(p.stdout[-2000:])
        rows = [json.loads(line) for line in record.read_text().splitlines()]
    counts = collections.Counter((r["kind"], r["case"], r["outcome"]) for r in rows)
    classes = sorted({(k, c) for k, c, _ in counts})
    lines = [
        f"Measured by `benchmarks/fuzz.py {examples}` ({len(rows)} cases, {seconds:.0f} s on 2 "
        f"cores; the property {'held' if p.returncode == 0 else 'FAILED'}). A *clean error* is "
        "exactly one line `hwgen: error: ...` (CLI, exit 1 or 2, no output file left behind) or "
        "a one-line `ModelFileError` (model file).",
        "",
        "| input | class | cases | valid / ok | clean error | other |",
        "|---|---|---|---|---|---|",
    ]
    for kind, case in classes:
        ok = sum(n for (k, c, o), n in counts.items()
                 if (k, c) == (kind, case) and o in ("ok", "valid model"))
        clean = counts[(kind, case, "clean error")]
        total = sum(n for (k, c, _), n in counts.items() if (k, c) == (kind, case))
        lines.append(f"| {kind} | {case} | {total} | {ok} | {clean} | {total - ok - clean} |")
    table = "\n".join(lines)
    text = DOC.read_text()
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:a] + "\n" + table + "\n" + text[b:])
    print(table)
    sys.exit(p.returncode)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
