"""Score vs LM requests, drawn with matplotlib: every candidate, the best so far, the winner.

Why matplotlib: it is the well-kept plotting library a reader trusts to get axes, ticks, labels
and legends right, and it writes both the PNG beside the markdown report and the SVG inlined in
the HTML report (text kept as text, so the page stays one file and searchable). It is imported
here only, when a report is drawn, through the object-oriented API (`Figure`, no pyplot): no
global figure state, no GUI backend, safe from worker threads.

The picture: x is the LM requests the run had spent when a candidate was scored (cached ones
included, as the lock counts them), y its dev score. Each candidate is a dot (hollow when
racing stopped it early, on fewer rows), the best fully scored so far is a step line, the
winner a star with its label, zero-shot a dashed line. A run with one candidate still gets
sensible axes: x from 0 to past the point, y over the metric's 0..1 range.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, NamedTuple

BLUE = "#3b6fc4"
ORANGE = "#e07b1f"
GREY = "#7a7a7a"


class Point(NamedTuple):
    """One scored candidate on the plot."""

    requests: int
    score: float
    label: str = ""
    complete: bool = True


def score_figure(
    points: Sequence[Point],
    winner: int | None,
    *,
    title: str,
    metric: str = "score",
    zero_shot: float | None = None,
) -> Any:
    """The matplotlib `Figure` of a run (see the module doc)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    xs = [p.requests for p in points]
    ys = [p.score for p in points]
    max_x = max(xs, default=0)
    if points:
        best: float | None = None
        step_x: list[float] = []
        step_y: list[float] = []
        for p in points:
            if p.complete and (best is None or p.score > best):
                best = p.score
            if best is not None:
                step_x.append(p.requests)
                step_y.append(best)
        if step_x:
            step_x.append(max_x)
            step_y.append(step_y[-1])
            ax.step(step_x, step_y, where="post", color=ORANGE, lw=1.5, label="best so far")
        full = [p for p in points if p.complete]
        raced = [p for p in points if not p.complete]
        ax.scatter(
            [p.requests for p in full],
            [p.score for p in full],
            s=28,
            color=BLUE,
            zorder=3,
            label="candidate",
        )
        if raced:
            ax.scatter(
                [p.requests for p in raced],
                [p.score for p in raced],
                s=28,
                facecolors="none",
                edgecolors=BLUE,
                zorder=3,
                label="stopped early (fewer dev rows)",
            )
    if zero_shot is not None:
        ax.axhline(zero_shot, color=GREY, ls="--", lw=1, label=f"zero-shot {zero_shot:.3f}")
    if winner is not None and 0 <= winner < len(points):
        w = points[winner]
        ax.scatter(
            [w.requests],
            [w.score],
            s=220,
            marker="*",
            color=ORANGE,
            edgecolors="black",
            linewidths=0.6,
            zorder=4,
            label=f"winner: {_short(w.label)} ({w.score:.3f})",
        )
        near_top = w.score >= max([*ys, 1.0]) - 0.05
        ax.annotate(
            f"winner {w.score:.3f}",
            (w.requests, w.score),
            xytext=(10, -16 if near_top else 8),  # below the star when the star is at the top
            textcoords="offset points",
            fontsize=9,
        )
    low = min([*ys, zero_shot if zero_shot is not None else 0.0, 0.0])
    high = max([*ys, zero_shot if zero_shot is not None else 1.0, 1.0])
    pad = (high - low) * 0.06 or 0.05
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(0, max_x * 1.08 + 1 if max_x else 10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("LM requests spent when the candidate was scored (cached included)")
    ax.set_ylabel(f"dev score ({metric})")
    ax.set_title(title, fontsize=11)
    ax.grid(True, color="#e4e4e4", lw=0.8)
    ax.set_axisbelow(True)
    if not points:
        ax.text(0.5, 0.5, "no candidate was scored on dev", ha="center", transform=ax.transAxes)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return fig


def score_vs_calls(points: Sequence[Point], winner: int | None, **options: Any) -> bytes:
    """The figure as PNG bytes (for the markdown report)."""
    fig = score_figure(points, winner, **options)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def score_vs_calls_svg(points: Sequence[Point], winner: int | None, **options: Any) -> str:
    """The figure as an SVG document (text as text; ids salted so a rerun is byte-identical)."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "promptcast"}):
        fig = score_figure(points, winner, **options)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 3] + "..."
