"""The report of one optimize run: an HTML page, and a markdown page with a PNG beside it.

Why: a lock says what won; the report says how -- every candidate tried with its dev score and
the requests spent when it was scored, the winner's instruction, demos and prompt against
zero-shot's, and the dev examples it still gets wrong -- so a reviewer can see whether the search
found something or just got lucky. The HTML page (`promptcast.reporting.html`) is the one to
read: self-contained, with the plot inline; the markdown + PNG stay for diff-friendly review in
a pull request. Written atomically next to the lock (`.promptcast/reports/` by default), named
by target, optimizer and seed, so a rerun replaces its own report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .base import OptimizationResult
from .plot import Point, score_vs_calls, score_vs_calls_svg


class ReportPaths(NamedTuple):
    html: Path
    markdown: Path
    png: Path


def report_paths(directory: Path, target: str, optimizer: str, seed: int) -> ReportPaths:
    stem = f"{target.replace(':', '.')}-{optimizer}-seed{seed}"
    return ReportPaths(
        directory / f"{stem}.html", directory / f"{stem}.md", directory / f"{stem}.png"
    )


def write_report(
    result: OptimizationResult,
    directory: Path,
    target: str,
    model: str,
    *,
    prompts: Sequence[Any] = (),
    outcomes: Any = None,
    outcomes_missing: str | None = None,
) -> ReportPaths:
    """Write `<stem>.html`, `<stem>.md` and `<stem>.png` into `directory`; return their paths.

    `prompts` (`reporting.html.PromptPair`) and `outcomes` (`reporting.html.Outcomes`) are what
    the command computed after the run; without them the page says why (`outcomes_missing`).
    """
    from ..fsutil import atomic_write_bytes
    from ..reporting.html import optimize_page

    paths = report_paths(directory, target, result.optimizer, result.seed)
    directory.mkdir(parents=True, exist_ok=True)
    winner = _winner_index(result)
    points = plot_points(result)
    plot = {
        "title": f"{target}: {result.optimizer} (seed {result.seed}), dev score vs LM requests",
        "metric": result.metric,
        "zero_shot": result.dev_score_before,
    }
    atomic_write_bytes(paths.png, score_vs_calls(points, winner, **plot))
    atomic_write_bytes(
        paths.markdown, markdown(result, target, model, paths.png.name, winner).encode()
    )
    page = optimize_page(
        result,
        target=target,
        model=model,
        winner=winner,
        plot_svg=score_vs_calls_svg(points, winner, **plot),
        prompts=prompts,
        outcomes=outcomes,
        outcomes_missing=outcomes_missing,
    )
    atomic_write_bytes(paths.html, page.encode("utf-8"))
    return paths


def plot_points(result: OptimizationResult) -> list[Point]:
    return [
        Point(c.lm_requests, c.dev_score, c.label, getattr(c, "complete", True))
        for c in result.history
    ]


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
        "The HTML report beside this file has every candidate's state, the prompt diff and the"
        " failing dev examples.",
    ]
    if result.stopped:
        lines.append(f"Stopped early: {result.stopped}.")
    if result.history:
        lines += [
            "",
            f"![dev score of each candidate vs LM requests spent; star: the winner]({image})",
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
