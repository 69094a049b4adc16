"""PNG plots of `results/latest.json`, one per section (run in bench/.venv-plot: matplotlib).

Why log scales: the two systems differ by two to four orders of magnitude on most figures, so
a linear axis would show one bar and nothing else. Every bar is labelled with its value.

    bench/.venv-plot/bin/python bench/plots.py bench/results/latest.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median as med
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"promptcast": "#2b7bba", "DSPy": "#d9822b", "limit": "#888888"}


def _bars(ax: Any, labels: list[str], series: dict[str, list[float | None]], log: bool) -> None:
    n = len(series)
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(labels))]
        heights = [v if v is not None else 0 for v in values]
        bars = ax.bar(xs, heights, width, label=name, color=COLORS.get(name))
        for bar, value in zip(bars, values, strict=True):
            if value is not None:
                ax.annotate(
                    f"{value:.3g}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)


def _row_series(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[float | None]]]:
    labels = [_short(r["figure"]) for r in rows]
    return labels, {
        "promptcast": [r["promptcast"] for r in rows],
        "DSPy": [r["dspy"] for r in rows],
    }


def _short(figure: str, width: int = 28) -> str:
    words, lines, line = figure.split(), [], ""
    for word in words:
        if len(line) + len(word) > width and line:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:4])


def plot_simple(
    name: str, section: dict[str, Any], unit_filter: str, title: str, out: Path
) -> None:
    rows = [r for r in section["rows"] if r["unit"] == unit_filter and r["dspy"]]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(max(5, 2.6 * len(rows)), 4.5))
    labels, series = _row_series(rows)
    _bars(ax, labels, series, log=True)
    ax.set_ylabel(f"{unit_filter} (log scale)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)


def plot_optimize(section: dict[str, Any], out: Path) -> None:
    raw = section["raw"]
    latency, threads = raw["latency_s"], raw["threads"]
    keys = [
        k
        for k in ("bootstrap", "bootstrap_eval", "random_search", "random_search_weak")
        if k in raw
    ]
    if not keys:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = {"bootstrap": "bootstrap\n(DSPy stock)", "bootstrap_eval": "bootstrap\n(+dev eval)",
              "random_search": "random search",
              "random_search_weak": "random search\n(1/3 right)"}  # fmt: skip

    walls: dict[str, list[float | None]] = {"promptcast": [], "DSPy": [], "limit": []}
    calls: dict[str, list[float | None]] = {"promptcast": [], "DSPy": []}
    for key in keys:
        ours = raw[key]["promptcast"]
        theirs = raw[key]["dspy"]
        walls["promptcast"].append(med([r["optimize_s"] for r in ours]))
        walls["DSPy"].append(med([r["optimize_s"] for r in theirs]))
        ours_calls = med([r["calls"] for r in ours])
        walls["limit"].append(ours_calls * latency / threads)
        calls["promptcast"].append(ours_calls)
        calls["DSPy"].append(med([r["calls"] for r in theirs]))
    names = [labels[k] for k in keys]
    _bars(ax1, names, walls, log=False)
    ax1.set_ylabel("optimization wall time (s)")
    ax1.set_title(f"wall time; limit = promptcast's calls x {latency:g} s / {threads}", fontsize=9)
    _bars(ax2, names, calls, log=False)
    ax2.set_ylabel("LM calls at the server")
    ax2.set_title("LM calls", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "optimize.png", dpi=110)
    plt.close(fig)


def main() -> None:
    path = Path(sys.argv[1])
    out = path.parent
    data = json.loads(path.read_text())["sections"]
    if "import" in data:
        plot_simple("import", data["import"], "ms", "import cost above a bare interpreter", out)
    if "overhead" in data:
        plot_simple("overhead", data["overhead"], "µs", "per-call overhead (render + parse)", out)
    if "optimize" in data:
        plot_optimize(data["optimize"], out)
    if "footprint" in data:
        plot_simple("footprint", data["footprint"], "MB", "deployment footprint", out)
    if "scale" in data:
        plot_simple("scale", data["scale"], "s", "wall time, 200 ms + 600 requests/min", out)
    print("\n".join(str(p) for p in sorted(out.glob("*.png"))))


if __name__ == "__main__":
    main()
