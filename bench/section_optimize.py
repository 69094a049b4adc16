"""Section 3, optimization wall time and LM calls against a server with a fixed latency.

Why: with a real provider an optimizer's wall time is mostly waiting on the LM, so what a
framework controls is how many calls it makes and how many it keeps in flight. The fake server
(`fake_server.py`: the tests' OpenAI-compatible server, 200 ms per request, correct labels for
every TREC question, counted at the server) takes the model out of the picture. Both systems
run on the same train/dev files with the same optimizer parameters, at 8 threads where DSPy
allows (its BootstrapFewShot is sequential; its random search evaluates with `num_threads`),
each from an empty cache in a fresh directory, paired in the same repetition.

Three pairs:
- `bootstrap` with `dev_score=false` vs stock `BootstrapFewShot.compile` (neither scores dev);
- `bootstrap` vs `BootstrapFewShot` + `Evaluate` on dev before and after (what promptcast
  does by default, to record both scores in the lock): like for like;
- `random_search` vs `BootstrapFewShotWithRandomSearch`, same number of candidates.

Two wall times: the optimization itself (promptcast's CLI prints it; DSPy's is timed around
`compile`) and the whole process (imports and startup included). The physical limit is
calls x latency / 8, and never under one latency: no client with 8 requests in flight can
finish sooner (4 calls still take one 200 ms round trip, not 100 ms).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH,
    PC_CLI,
    PC_PYTHON,
    ROOT,
    Row,
    SectionResult,
    median,
    quiet_env,
    run,
    temp_dir,
    trec_project,
)

LATENCY_S = 0.2
THREADS = 8
COMMON_ARGS = {"max_bootstrapped_demos": 4, "max_labeled_demos": 16}
WALL_TARGET = 1 / 4
LIMIT_TARGET = 1.2
WEAK_ACCURACY = 1 / 3


@dataclass(frozen=True)
class Pair:
    """One comparison: our optimizer against a DSPy configuration."""

    key: str
    title: str
    ours: str
    dspy: str
    dspy_flags: tuple[str, ...] = ()
    accuracy: float = 1.0
    ours_args: tuple[tuple[str, object], ...] = ()  # more `--optimizer-arg`s for ours


class Server:
    """The fake server process; `calls()` reads and resets its count of chat requests."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.origin = url.removesuffix("/v1")

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.origin + "/_reset", method="POST"))

    def calls(self) -> int:
        with urllib.request.urlopen(self.origin + "/_stats") as resp:
            stats = json.load(resp)
        self.reset()
        return int(stats["counts"].get("chat", 0))


@contextmanager
def fake_server(latency: float, accuracy: float = 1.0) -> Iterator[Server]:
    proc = subprocess.Popen(
        [
            str(PC_PYTHON),
            str(BENCH / "fake_server.py"),
            f"--latency={latency}",
            f"--accuracy={accuracy}",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield Server(proc, proc.stdout.readline().strip())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ours(server: Server, optimizer: str, extra: dict[str, Any]) -> dict[str, float]:
    """`promptcast optimize` in a fresh copy of the TREC project (empty `.promptcast/`)."""
    with temp_dir("optimize") as tmp:
        project = trec_project(tmp)
        args = {**COMMON_ARGS, **extra}
        cmd: list[str | Path] = [
            PC_CLI, "optimize", "triage.classify:question_type",
            "--train", "data/train.jsonl", "--dev", "data/dev.jsonl",
            "--metric", "exact_match", "--label", "coarse", "--optimizer", optimizer,
            "--model", "openai/fake-model", "--api-base", server.url,
            "--threads", str(THREADS), "--lock", project / "lock.json",
        ]  # fmt: skip
        for key, value in args.items():
            cmd += ["--optimizer-arg", f"{key}={value}"]
        start = time.perf_counter()
        proc = run(cmd, cwd=project, env=quiet_env())
        process_s = time.perf_counter() - start
    match = re.search(r"wall ([\d.]+)s", proc.stdout)
    if match is None:
        raise RuntimeError(f"no wall time in promptcast's output:\n{proc.stdout}")
    return {"optimize_s": float(match.group(1)), "process_s": process_s, "calls": server.calls()}


def run_dspy(
    server: Server, python: str, optimizer: str, flags: tuple[str, ...]
) -> dict[str, float]:
    start = time.perf_counter()
    proc = run(
        [
            python, BENCH / "dspy_optimize.py", "--api-base", server.url,
            "--optimizer", optimizer, "--threads", str(THREADS), *flags,
        ],
        cwd=BENCH,
        env=quiet_env(),
    )  # fmt: skip
    process_s = time.perf_counter() - start
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"optimize_s": out["optimize_s"], "process_s": process_s, "calls": server.calls()}


def pairs(candidates: int) -> list[Pair]:
    return [
        Pair(
            "bootstrap",
            "bootstrap dev_score=false vs BootstrapFewShot (stock): neither scores dev",
            "bootstrap",
            "bootstrap",
            ours_args=(("dev_score", False),),
        ),
        Pair(
            "bootstrap_eval",
            "bootstrap vs BootstrapFewShot + dev evaluation before/after (like for like)",
            "bootstrap",
            "bootstrap",
            ("--evaluate-dev",),
        ),
        Pair(
            "random_search",
            f"random_search vs BootstrapFewShotWithRandomSearch ({candidates} candidates)",
            "random_search",
            "random_search",
            (f"--candidates={candidates}",),
        ),
        # A second scenario, beside (not instead of) the all-correct one: a model right on a
        # third of the questions, so bootstrapping walks most of the training set. DSPy walks
        # it one example at a time; promptcast in waves of 8.
        Pair(
            "random_search_weak",
            f"random_search vs BootstrapFewShotWithRandomSearch ({candidates} candidates), "
            f"answers right on {WEAK_ACCURACY:.0%} of questions",
            "random_search",
            "random_search",
            (f"--candidates={candidates}",),
            accuracy=WEAK_ACCURACY,
        ),
    ]


def limit_s(calls: float) -> float:
    """The physical limit of `calls` requests at THREADS in flight: at least one round trip."""
    if calls <= 0:
        return 0.0
    return max(LATENCY_S, calls * LATENCY_S / THREADS)


def run_section(quick: bool, dspy_python: str) -> SectionResult:
    reps = 1 if quick else 3
    candidates = 2 if quick else 8
    raw: dict[str, Any] = {"latency_s": LATENCY_S, "threads": THREADS, "reps": reps}
    rows: list[Row] = []
    for pair in pairs(candidates):
        with fake_server(LATENCY_S, pair.accuracy) as server:
            server.reset()
            ours_extra = {"num_candidates": candidates} if pair.ours == "random_search" else {}
            ours_extra.update(dict(pair.ours_args))
            runs: dict[str, list[dict[str, float]]] = {"promptcast": [], "dspy": []}
            for rep in range(reps):
                # Alternate who goes first, so drift on a shared machine favours neither.
                order = ("promptcast", "dspy") if rep % 2 == 0 else ("dspy", "promptcast")
                for system in order:
                    if system == "promptcast":
                        runs[system].append(run_ours(server, pair.ours, ours_extra))
                    else:
                        runs[system].append(
                            run_dspy(server, dspy_python, pair.dspy, pair.dspy_flags)
                        )
            raw[pair.key] = runs
            rows += _rows(pair, runs, reps)
    return SectionResult("optimize", rows, raw)


def _rows(pair: Pair, runs: dict[str, list[dict[str, float]]], reps: int) -> list[Row]:
    med = {s: {k: median([r[k] for r in rs]) for k in rs[0]} for s, rs in runs.items()}
    ours, theirs = med["promptcast"], med["dspy"]
    ours_limit, dspy_limit = limit_s(ours["calls"]), limit_s(theirs["calls"])
    within = ours["optimize_s"] / ours_limit if ours_limit else None
    wall = Row(
        "optimize",
        f"{pair.title}: optimization wall time",
        ours["optimize_s"],
        theirs["optimize_s"],
        "s",
        "<= 1/4",
        note=(
            f"median of {reps}; limit (calls x {LATENCY_S:g} s / {THREADS}): promptcast "
            f"{ours_limit:.2f} s ({within:.2f}x of it), DSPy {dspy_limit:.2f} s"
        ),
    )
    wall.ok = wall.ratio is not None and wall.ratio <= WALL_TARGET
    process = Row(
        "optimize",
        f"{pair.title}: whole process wall time (imports, startup)",
        ours["process_s"],
        theirs["process_s"],
        "s",
        note=f"median of {reps}",
    )
    calls = Row(
        "optimize",
        f"{pair.title}: LM calls at the server",
        ours["calls"],
        theirs["calls"],
        "calls",
        "<= DSPy",
        ok=ours["calls"] <= theirs["calls"],
    )
    limit = Row(
        "optimize",
        f"{pair.title}: optimization wall time / physical limit",
        within,
        theirs["optimize_s"] / dspy_limit if dspy_limit else None,
        "x",
        "promptcast <= 1.2",
        ok=within is not None and within <= LIMIT_TARGET,
        note="each system against the limit of its own call count",
    )
    return [wall, process, calls, limit]
