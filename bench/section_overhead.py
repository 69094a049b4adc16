"""Section 2, per-call overhead: render + parse around an LM that answers instantly.

Why: with a real model the LM dominates, but the framework's own cost per call is paid on every
request a service handles, and it is what remains when answers come from a cache. Both systems
call an in-process LM answering from the same table (`answers.py`), so what is timed is each
system's own work: build the messages, call, parse and type the reply. promptcast's side is the
generated code (TREC example and a chain-of-thought twin, built with `--vendor-runtime`);
DSPy's side is `dspy.Predict` / `dspy.ChainOfThought` on `DummyLM`, cache off. Each worker
runs in its own interpreter and reports one per-call figure per repetition; the table shows
medians. Resident memory: RSS after 5k and 10k calls, growth between the two.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchlib import (
    BENCH,
    FIXTURES,
    PC_PYTHON,
    TREC,
    Row,
    SectionResult,
    build,
    median,
    run,
    temp_dir,
)

TARGET = 1 / 20
RSS_GROWTH_TOLERANCE_KIB = 256
"""RSS moves in pages and allocator arenas; more than this between 5k and 10k calls is growth."""


def _worker(python: str | Path, script: str, *args: str) -> dict[str, object]:
    proc = run([python, BENCH / script, *args], cwd=BENCH)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_section(quick: bool, dspy_python: str) -> SectionResult:
    reps = 3 if quick else 9
    with temp_dir("overhead") as tmp:
        predict_tree = build(TREC / "triage", tmp / "predict" / "out")
        cot_tree = build(FIXTURES / "cot" / "triage_cot", tmp / "cot" / "out")
        ours = _worker(
            PC_PYTHON,
            "overhead_promptcast.py",
            f"--predict-tree={predict_tree}",
            f"--cot-tree={cot_tree}",
            f"--calls={1000 if quick else 5000}",
            f"--reps={reps}",
            "--rss-calls=10000",
        )
    theirs = _worker(
        dspy_python,
        "overhead_dspy.py",
        f"--calls={100 if quick else 500}",
        f"--reps={reps}",
        f"--rss-calls={0 if quick else 10000}",
    )
    rows: list[Row] = []
    for key, label in (("predict", "Predict-like call"), ("cot", "ChainOfThought-like call")):
        ours_us = median(ours[f"{key}_us"])  # type: ignore[arg-type]
        dspy_us = median(theirs[f"{key}_us"])  # type: ignore[arg-type]
        row = Row(
            "overhead",
            f"{label}: render + LM (instant table) + parse, per call",
            ours_us,
            dspy_us,
            "µs",
            "<= 1/20",
            note=f"median of {reps} repetitions",
        )
        row.ok = row.ratio is not None and row.ratio <= TARGET
        rows.append(row)
    rss: dict[str, int] = ours["rss_kib"]  # type: ignore[assignment]
    growth = rss["end"] - rss["half"]
    dspy_rss: dict[str, int] | None = theirs.get("rss_kib")  # type: ignore[assignment]
    rows.append(
        Row(
            "overhead",
            "resident memory (RSS) after 10k Predict-like calls",
            rss["end"] / 1024,
            dspy_rss["end"] / 1024 if dspy_rss else None,
            "MiB",
            "no growth",
            ok=growth <= RSS_GROWTH_TOLERANCE_KIB,
            note=(
                f"promptcast: {rss['half'] / 1024:.1f} MiB at 5k, growth 5k->10k {growth} KiB"
                + (
                    f"; DSPy: {dspy_rss['half'] / 1024:.1f} MiB at 5k, growth "
                    f"{dspy_rss['end'] - dspy_rss['half']} KiB (lm.history keeps "
                    f"{theirs.get('lm_history_len')} entries)"
                    if dspy_rss
                    else "; DSPy RSS skipped in --quick"
                )
            ),
        )
    )
    return SectionResult("overhead", rows, {"promptcast": ours, "dspy": theirs})
