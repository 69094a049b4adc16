"""Section 1, import cost: the generated module + vendored runtime vs `import dspy`.

Why it matters: a process that answers one request (a CLI, a serverless function) pays the
import on every cold start. The measurement itself lives in `import_time.py` (also runnable
alone); this module turns it into table rows.
"""

from __future__ import annotations

from benchlib import PC_PYTHON, Row, SectionResult
from import_time import measure

TARGET = 0.01


def run_section(quick: bool, dspy_python: str) -> SectionResult:
    m = measure(5 if quick else 15, str(PC_PYTHON), dspy_python)
    runs = f"median of {m['runs']} runs (DSPy {m['dspy_runs']})"
    rows = [
        Row(
            "import",
            "import time above a bare interpreter (-X importtime)",
            m["importtime_promptcast_ms"],
            m["importtime_dspy_ms"],
            "ms",
            "<= 1/100",
            note=runs,
        ),
        Row(
            "import",
            "process wall time above a bare interpreter",
            m["wall_promptcast_ms"],
            m["wall_dspy_ms"],
            "ms",
            "<= 1/100",
            note=f"{runs}; bare interpreter {m['bare_ms']:.0f} ms",
        ),
        Row(
            "import",
            "promptcast's own share (above the user's `from typing import Literal`)",
            m["own_promptcast_ms"],
            m["importtime_dspy_ms"],
            "ms",
            "<= 1/100",
            note="the runtime's cost, with what the user's code imports anyway excluded",
        ),
    ]
    for row in rows:
        row.ok = row.ratio is not None and row.ratio <= TARGET
    return SectionResult("import", rows, m)
