"""Writes `results/latest.md` (the table) and `results/latest.json` (rows + raw measurements).

Why a separate module: the table format is the benchmark's public face (the issue asks for
figure, promptcast, DSPy, ratio, target), and it should not be tangled with measuring.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from benchlib import ROOT, SectionResult, fmt

TITLES = {
    "import": "1. Import cost",
    "overhead": "2. Per-call overhead (in-process LM answering instantly from a table)",
    "optimize": "3. Optimization against a fake server (200 ms latency, deterministic answers)",
    "quality": "4. Quality with the real local model (TREC, sentiment)",
    "footprint": "5. Deployment footprint",
    "scale": "6. Scale: optimize and batch under 200 ms latency and 600 requests/min",
}


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[ok]


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if value < 0.01:
        return f"{value:.4f} (1/{1 / value:,.0f})"
    return f"{value:.3f}" + (f" (1/{1 / value:.1f})" if value < 1 else "")


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def markdown(sections: Sequence[SectionResult], command: str, meta: dict[str, str]) -> str:
    lines = [
        "# promptcast vs DSPy 3.4.1: benchmark results",
        "",
        f"`{command}` at commit {meta['commit']} on {meta['machine']}. Both systems are measured",
        "in the same run; every figure is a median of repetitions (counts are exact). Ratio =",
        "promptcast / DSPy: lower is better, except accuracy. See `bench/README.md` for what",
        "each figure measures and `bench/results/*.png` for the plots.",
        "",
    ]
    for section in sections:
        lines += [f"## {TITLES.get(section.name, section.name)}", ""]
        lines += ["| figure | promptcast | DSPy | ratio | target | | notes |"]
        lines += ["|---|---:|---:|---:|---|---|---|"]
        for row in section.rows:
            lines.append(
                f"| {row.figure} | {fmt(row.promptcast, row.unit)} | {fmt(row.dspy, row.unit)} "
                f"| {_ratio(row.ratio)} | {row.target} | {_verdict(row.ok)} | {row.note} |"
            )
        for note in section.notes:
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)


def write(
    sections: Sequence[SectionResult], out_dir: Path, command: str, extra_notes: str = ""
) -> Path:
    meta = {"commit": _commit(), "machine": f"{platform.machine()}, {_cpus()} CPUs, Python "
            f"{platform.python_version()}"}  # fmt: skip
    md = out_dir / "latest.md"
    md.write_text(markdown(sections, command, meta) + (extra_notes or ""))
    record = {
        "command": command,
        **meta,
        "sections": {
            s.name: {"rows": [r.to_json() for r in s.rows], "raw": s.raw, "notes": s.notes}
            for s in sections
        },
    }
    (out_dir / "latest.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return md


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
