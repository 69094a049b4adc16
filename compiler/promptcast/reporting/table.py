"""`eval`'s failure table in the terminal, drawn with rich: whole values, folded, never cut.

Why rich: the plain table cut every cell at 40 characters, so a structured output that was wrong
in one field showed as two truncated JSON blobs. Here each failing example is one row with its
inputs, what was expected and what came back, wrapped to the terminal's width; for a structured
output (a model, a dataclass, a dict) a nested table lists only the fields that differ, by path
(`items[1].qty: 1 -> 3`), expected then got; an error shows its text whole (a ParseError's raw answer
included). Without a terminal (a pipe, CI logs) the same table is printed without colour, at
`COLUMNS` or 120 columns.
"""

from __future__ import annotations

import json
import shutil
from typing import IO, Any

from ..evaluate.diff import differences, expected_value, is_structured
from ..evaluate.evaluate import EvalReport, ExampleResult, jsonable


def show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def failures_renderable(report: EvalReport, limit: int | None = 20) -> Any:
    """The rich renderable of the failures (a Table, or a line when there are none)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows = report.failures
    if not rows:
        return Text("no failures", style="green")
    shown = rows if limit is None else rows[:limit]
    title = f"{len(rows)} of {report.n} examples failed" + (
        f" (first {len(shown)}; --all-failures for all)" if len(shown) < len(rows) else ""
    )
    table = Table(title=title, box=box.SIMPLE_HEAVY, show_lines=True, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("where", overflow="fold", max_width=24)
    table.add_column("inputs", overflow="fold", ratio=3)
    table.add_column("expected", overflow="fold", ratio=2)
    table.add_column("got (a structured one: the fields that differ)", overflow="fold", ratio=3)
    table.add_column("score", justify="right", no_wrap=True)
    for r in shown:
        table.add_row(
            str(r.index),
            r.example.where,
            Text(show(r.example.inputs())),
            Text(show(expected_value(r.example))),
            got_renderable(r),
            f"{r.score:.2f}",
        )
    return table


def got_renderable(result: ExampleResult) -> Any:
    """The returned value, or the error in red, or the differing fields of a structured one."""
    from rich.text import Text

    if result.error:
        return Text(f"ERROR {result.error}", style="red")
    expected = jsonable(expected_value(result.example))
    got = jsonable(result.prediction)
    if not (is_structured(expected) or is_structured(got)):
        return Text(show(got))
    found = differences(expected, got)
    if not found:
        return Text(show(got))
    lines = Text()
    for i, d in enumerate(found):
        if i:
            lines.append("\n")
        lines.append(d.path, style="cyan")
        lines.append(": ")
        lines.append(show(d.expected), style="green")
        lines.append(" -> ")
        lines.append(show(d.got), style="red")
    return lines


def print_failures(report: EvalReport, file: IO[str], limit: int | None = 20) -> None:
    """Print the failure table to `file` (colour only on a terminal)."""
    from rich.console import Console

    width = None if file.isatty() else shutil.get_terminal_size((120, 24)).columns
    console = Console(file=file, width=width, highlight=False, soft_wrap=False)
    console.print(failures_renderable(report, limit))
