"""The report of one optimize run: a markdown page and a PNG of score vs LM calls.

Why: a lock says what won; the report says how -- every candidate tried with its dev score and
the requests spent when it was scored, the winner's instruction and demos -- so a reviewer can
see whether the search found something or just got lucky. Written atomically next to the lock
(`.promptcast/reports/` by default), named by target, optimizer and seed, so a rerun replaces
its own report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import OptimizationResult
from .plot import score_vs_calls


def report_paths(directory: Path, target: str, optimizer: str, seed: int) -> tuple[Path, Path]:
    stem = f"{target.replace(':', '.')}-{optimizer}-seed{seed}"
    return directory / f"{stem}.md", directory / f"{stem}.png"


def write_report(
    result: OptimizationResult, directory: Path, target: str, model: str
) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.png` into `directory`; return their paths."""
    from ..fsutil import atomic_write_bytes

    md_path, png_path = report_paths(directory, target, result.optimizer, result.seed)
    directory.mkdir(parents=True, exist_ok=True)
    winner = _winner_index(result)
    points = [(c.lm_requests, c.dev_score) for c in result.history]
    atomic_write_bytes(png_path, score_vs_calls(points, winner))
    atomic_write_bytes(md_path, markdown(result, target, model, png_path.name, winner).encode())
    return md_path, png_path


def _winner_index(result: OptimizationResult) -> int | None:
    for i, record in enumerate(result.history):
        if record.label == result.best_label:
            return i
    return None


def markdown(
    result: OptimizationResult, target: str, model: str, image: str, winner: int | None
) -> str:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        f"# {target}: {result.optimizer} (seed {result.seed})",
        "",
        f"Model `{model}`, metric `{result.metric}`, parameters `{json.dumps(result.params)}`.",
        f"Dev score {fmt(result.dev_score_before)} (zero-shot) -> {fmt(result.dev_score_after)}"
        f" (winner: {result.best_label or 'zero-shot'}); {result.usage.requests} LM requests,"
        f" {result.usage.prompt_tokens}+{result.usage.completion_tokens} tokens.",
    ]
    if result.stopped:
        lines.append(f"Stopped early: {result.stopped}.")
    if result.history:
        lines += [
            "",
            f"![dev score of each candidate vs LM requests spent; orange: best so far]({image})",
            "",
            "| # | candidate | dev score | LM requests so far |",
            "|---:|---|---:|---:|",
        ]
    else:
        lines += ["", "No candidate was scored on dev: nothing to plot or tabulate."]
    for i, record in enumerate(result.history):
        mark = " **(winner)**" if i == winner else ""
        label = record.label.replace("|", "\\|")
        lines.append(f"| {i + 1} | {label}{mark} | {record.dev_score:.3f} | {record.lm_requests} |")
    for note in result.notes:
        lines.append(f"\n- {note}")
    for qualname, state in sorted(result.states.items()):
        lines += ["", f"## {qualname}", "", f"Adapter `{state.adapter}`. Instruction:", ""]
        lines += [f"> {line}" if line else ">" for line in state.instructions.splitlines()]
        lines += ["", f"{len(state.demos)} demo(s):", ""]
        for demo in state.demos:
            lines.append(f"- `{_one_line(demo)}`")
    return "\n".join(lines) + "\n"


def _one_line(demo: dict[str, Any], width: int = 160) -> str:
    text = json.dumps(demo, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."
