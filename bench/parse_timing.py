"""Worst-case parse time on adversarial completions of 10 KB and 1 MB.

Why: a completion is untrusted input. A parser whose regexes backtrack (spaces around a
`[[`, a fence followed by spaces) or whose repair re-slices the rest of the text at every
comma is a denial of service: one bad answer can hold a worker for minutes. The target is
linear time, 1 MB under 1 s. Each case runs in its own subprocess with a time cap, so a
catastrophic case of an older runtime is reported as "> cap" instead of hanging the bench.

    .venv/bin/python bench/parse_timing.py [--runtime DIR] [--label NAME] [--cap SECONDS]

`--runtime DIR` scores another `promptcast_runtime` (e.g. `git archive <commit> runtime`
unpacked into DIR). Writes `results/parse_timing_<label>.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"10KB": 10_000, "1MB": 1_000_000}


def _half(n: int, unit: str) -> str:
    return unit * max(1, n // (2 * len(unit)))


CASES: dict[str, Callable[[int], str]] = {
    # remove_markers' echoed-marker pattern (bare answer): spaces on both sides of a `[[`.
    "spaces around [[": lambda n: _half(n, " ") + "[[" + _half(n, " ") + "x",
    "[[ ## then spaces": lambda n: "[[ ## a" + " " * (n - 8) + "x",
    "many [[": lambda n: "[[ " * (n // 3),
    "nested markers": lambda n: "[[ ## " * (n // 12) + "a" + " ## ]]" * (n // 12),
    # the whole-text fence: a fence, then spaces, then no closing fence.
    "fence then spaces": lambda n: "```" + " " * (n - 4) + "x",
    "fence, newline, spaces, fence": lambda n: "```\n" + " \n" * (n // 2 - 4) + "```",
    # JSON repair: a cut-off list, commas followed by spaces, bare words.
    "cut-off JSON list": lambda n: "[" + "1, " * (n // 3),
    "commas then spaces": lambda n: "[" + ("," + " " * 50) * (n // 51),
    "bare words": lambda n: "{" + "a b " * (n // 4),
    "open strings": lambda n: "['" + "x" * (n - 2),
    "deep brackets": lambda n: "[" * n,
    "deep objects": lambda n: '{"a":' * (n // 5),
    # numbers and labels
    "digits": lambda n: "9" * n,
    "digit groups": lambda n: "1," * (n // 2) + "5",
    "spaced numbers": lambda n: "1 " * (n // 2),
    "label words": lambda n: "DESC ENTY " * (n // 10),
    "one label repeated": lambda n: "DESC " * (n // 5),
    "cues without numbers": lambda n: "answer x 1 " * (n // 11),
    "answer is, many numbers": lambda n: "the answer is " + "7 " * (n // 2),
    "think blocks": lambda n: "<think>" * (n // 7),
    "bullets": lambda n: "- a\n" * (n // 4),
}
SCHEMAS = ("capital", "math", "price", "fact", "trec", "items", "numbers", "person", "order")
"""Corpus schemas each case is parsed as (str, int, float, bool, Literal, list, nested, many)."""


def run_case(case: str, size: int) -> float:
    """Seconds for the slowest schema x adapter parse of one case (in this process)."""
    from promptcast_runtime import ParseError, get_adapter
    from tests.corpus_schemas import SCHEMAS as ALL

    text = CASES[case](size)
    worst = 0.0
    for schema in SCHEMAS:
        for adapter in ("chat", "json"):
            start = time.perf_counter()
            try:
                get_adapter(adapter).parse(ALL[schema], text)
            except ParseError:
                pass
            except Exception:  # noqa: BLE001 - reported by the corpus and the tests, not here
                pass
            worst = max(worst, time.perf_counter() - start)
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runtime", help="a folder holding the promptcast_runtime to time")
    p.add_argument("--label", default="after")
    p.add_argument("--cap", type=float, default=60.0, help="seconds a case may take")
    p.add_argument("--one", nargs=2, metavar=("CASE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runtime:
        sys.path.insert(0, str(Path(args.runtime).resolve()))
    sys.path.insert(1 if args.runtime else 0, str(ROOT))
    if args.one:
        print(run_case(args.one[0], int(args.one[1])))
        return 0
    results: dict[str, dict[str, Any]] = {}
    for case in CASES:
        for size_name, size in SIZES.items():
            command = [sys.executable, __file__, "--one", case, str(size)]
            if args.runtime:
                command += ["--runtime", args.runtime]
            try:
                proc = subprocess.run(
                    command, capture_output=True, text=True, timeout=args.cap, check=True
                )
                seconds: float | None = float(proc.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                seconds = None
            results.setdefault(case, {})[size_name] = seconds
            shown = f"> {args.cap:g}" if seconds is None else f"{seconds:.3f}"
            print(f"{case:32} {size_name:>5} {shown} s", file=sys.stderr, flush=True)
    worst = {
        size: max((r[size] if r[size] is not None else float("inf")) for r in results.values())
        for size in SIZES
    }
    out = ROOT / "bench" / "results" / f"parse_timing_{args.label}.json"
    worst_json = {k: (None if v == float("inf") else v) for k, v in worst.items()}  # None: > cap
    out.write_text(
        json.dumps({"cases": results, "worst": worst_json, "cap_s": args.cap}, indent=1) + "\n"
    )
    lines = [f"| case ({args.label}) | 10 KB (s) | 1 MB (s) |", "|---|---|---|"]
    for case, r in results.items():
        cells = [f"> {args.cap:g}" if r[s] is None else f"{r[s]:.3f}" for s in SIZES]
        lines.append(f"| {case} | {cells[0]} | {cells[1]} |")
    cells = [f"> {args.cap:g}" if worst[s] == float("inf") else f"{worst[s]:.3f}" for s in SIZES]
    lines.append(f"| **worst** | {cells[0]} | {cells[1]} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
