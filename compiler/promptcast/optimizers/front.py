"""The accuracy-vs-cost front of a run: dev score against tokens per run, every candidate.

Why a second picture: the score-vs-requests plot says what the search spent; this one says what
each candidate would cost *every production call* -- a 16-demo prompt costs several times a
zero-shot one for as long as it ships. The front is the candidates no other beats on both axes
(higher score, fewer tokens per call): any objective's pick lies on it, so the reader sees what
`--objective weighted:W` or `within:X` would trade. Drawn with matplotlib (see plot.py), as SVG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, NamedTuple

from .plot import BLUE, GREY, ORANGE


class Costed(NamedTuple):
    """A fully scored candidate with its cost."""

    label: str
    score: float
    tokens: float


def costed(history: Sequence[Any]) -> list[Costed]:
    """The fully scored candidates whose tokens per call were measured."""
    return [
        Costed(c.label, c.dev_score, c.cost)
        for c in history
        if c.complete and c.prompt_tokens_per_call is not None
    ]


def front(points: Sequence[Costed]) -> list[Costed]:
    """The candidates no other beats on both score and tokens, cheapest first."""
    keep = [
        p
        for p in points
        if not any(
            (o.score >= p.score and o.tokens < p.tokens) or (o.score > p.score and o.tokens <= p.tokens)
            for o in points
        )
    ]
    return sorted(keep, key=lambda p: (p.tokens, -p.score))


def front_svg(history: Sequence[Any], winner: str | None, *, title: str, metric: str = "score") -> str:
    """The picture as an SVG document ("" when no candidate has a measured cost)."""
    import matplotlib
    from matplotlib.figure import Figure

    points = costed(history)
    if not points:
        return ""
    edge = front(points)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "promptcast"}):
        fig = Figure(figsize=(8, 4.2), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.scatter([p.tokens for p in points], [p.score for p in points], s=28, color=BLUE,
                   zorder=3, label="candidate")  # fmt: skip
        ax.step([p.tokens for p in edge], [p.score for p in edge], where="post", color=ORANGE,
                lw=1.5, label="front (no candidate better and cheaper)")  # fmt: skip
        for p in edge:
            ax.annotate(_short(p.label), (p.tokens, p.score), xytext=(6, 4),
                        textcoords="offset points", fontsize=8, color=GREY)  # fmt: skip
        chosen = [p for p in points if p.label == winner]
        if chosen:
            w = chosen[0]
            ax.scatter([w.tokens], [w.score], s=220, marker="*", color=ORANGE, edgecolors="black",
                       linewidths=0.6, zorder=4, label=f"winner ({w.score:.3f}, {w.tokens:.0f} tok)")  # fmt: skip
        ax.set_xlabel("mean tokens per program run (all its LM calls, prompt + completion), on dev")
        ax.set_ylabel(f"dev score ({metric})")
        ax.set_title(title, fontsize=11)
        ax.set_xlim(0, max(p.tokens for p in points) * 1.15 + 1)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, color="#e4e4e4", lw=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 3] + "..."
