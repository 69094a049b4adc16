"""Section "scale": optimization and batch inference against a hosted-API-like server.

Why: against a hosted model, wall time is set by latency, concurrency and the provider's rate
limit, not CPU. The server (`scale_server.py`) answers every TREC question correctly after
200 ms and, like a provider, allows 600 requests/min (a one-second bucket; 429 + Retry-After
over it), counting requests and 429s at the server.

Optimization: `promptcast optimize --concurrency 64 --requests-per-minute 600` against DSPy
3.4.1 at each of several thread counts (DSPy has no rate limiter; its LM retries 429s itself
with litellm's back-off), DSPy's best kept. Like for like and at equal LM calls: our
`bootstrap` (dev scored before and after) vs `BootstrapFewShot` + `Evaluate` before/after, and
our `random_search` with `racing=false` (every candidate on all of dev, as DSPy does) vs
`BootstrapFewShotWithRandomSearch`, same candidates. Targets: <= 1/4 of DSPy's wall time, and
within 1.2x of the physical limit, max(calls x latency / concurrency, calls / rate).

Batch: `promptcast_runtime.batch` of a built zero-shot TREC module vs DSPy's `Module.batch` of a
zero-shot `Predict`, same rows, same concurrency (64 and 256 threads for DSPy), without a rate
limit (latency-bound) and under the 600/min limit (ours told the limit; DSPy cannot be).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH,
    PC_CLI,
    PC_PYTHON,
    ROOT,
    TREC,
    Row,
    SectionResult,
    build,
    quiet_env,
    run,
    temp_dir,
    trec_project,
)

LATENCY_S = 0.2
RATE_PER_MIN = 600.0
CONCURRENCY = 64
COMMON_ARGS = {"max_bootstrapped_demos": 4, "max_labeled_demos": 16}
WALL_TARGET = 1 / 4
LIMIT_TARGET = 1.2


class Server:
    """The server process; `stats()` reads and resets its counts (chat requests, 429s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.origin = url.removesuffix("/v1")

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.origin + "/_stats") as resp:
            counts = json.load(resp)["counts"]
        urllib.request.urlopen(urllib.request.Request(self.origin + "/_reset", method="POST"))
        chat = int(counts.get("chat", 0))
        limited = int(counts.get("fault:rate_limit", 0))
        return {"requests": chat, "rate_limited": limited, "calls": chat - limited}


@contextmanager
def server(rate: float | None) -> Iterator[Server]:
    cmd = [str(PC_PYTHON), str(BENCH / "scale_server.py"), f"--latency={LATENCY_S}"]
    if rate is not None:
        cmd.append(f"--requests-per-minute={rate}")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        fake = Server(proc.stdout.readline().strip())
        fake.stats()
        yield fake
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def limit_s(calls: float, concurrency: int, rate: float | None) -> float:
    """The physical limit: calls x latency / concurrency, calls / rate, at least one trip."""
    if calls <= 0:
        return 0.0
    bound = max(LATENCY_S, calls * LATENCY_S / concurrency)
    if rate is not None:
        bound = max(bound, calls / (rate / 60.0))
    return bound


# --- optimization -------------------------------------------------------------------------------


def run_ours(fake: Server, optimizer: str, extra: dict[str, Any]) -> dict[str, Any]:
    with temp_dir("scale") as tmp:
        project = trec_project(tmp)
        cmd: list[str | Path] = [
            PC_CLI, "optimize", "triage.classify:question_type",
            "--train", "data/train.jsonl", "--dev", "data/dev.jsonl",
            "--metric", "exact_match", "--label", "coarse", "--optimizer", optimizer,
            "--model", "openai/fake-model", "--api-base", fake.url,
            "--concurrency", str(CONCURRENCY), "--requests-per-minute", f"{RATE_PER_MIN:g}",
            "--lock", project / "lock.json",
        ]  # fmt: skip
        for key, value in {**COMMON_ARGS, **extra}.items():
            cmd += ["--optimizer-arg", f"{key}={value}"]
        start = time.perf_counter()
        proc = run(cmd, cwd=project, env=quiet_env())
        process_s = time.perf_counter() - start
    match = re.search(r"wall ([\d.]+)s", proc.stdout)
    score = re.search(r"dev exact_match: [\d.n/a]+ -> ([\d.]+)", proc.stdout)
    if match is None:
        raise RuntimeError(f"no wall time in promptcast's output:\n{proc.stdout}")
    return {
        "optimize_s": float(match.group(1)),
        "process_s": process_s,
        "dev_after": float(score.group(1)) if score else None,
        **fake.stats(),
    }


def run_dspy(
    fake: Server, python: str, optimizer: str, threads: int, flags: list[str]
) -> dict[str, Any]:
    start = time.perf_counter()
    proc = run(
        [
            python, BENCH / "dspy_optimize.py", "--api-base", fake.url,
            "--optimizer", optimizer, "--threads", str(threads), *flags,
        ],
        cwd=BENCH,
        env=quiet_env(),
    )  # fmt: skip
    process_s = time.perf_counter() - start
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    dev_after = out.get("dev_after")  # DSPy's Evaluate reports a percentage
    return {
        "optimize_s": out["optimize_s"],
        "process_s": process_s,
        "dev_after": None if dev_after is None else dev_after / 100,
        "threads": threads,
        **fake.stats(),
    }


def optimization(quick: bool, python: str, raw: dict[str, Any]) -> list[Row]:
    candidates = 2 if quick else 4
    thread_counts = (8, 32) if quick else (8, 16, 32, 64)
    pairs = [
        ("bootstrap", "bootstrap (dev scored before/after) vs BootstrapFewShot + Evaluate",
         "bootstrap", {}, ["--evaluate-dev"]),
        ("random_search",
         f"random_search racing=false vs BootstrapFewShotWithRandomSearch ({candidates} "
         "candidates)", "random_search",
         {"num_candidates": candidates, "racing": "false"}, [f"--candidates={candidates}"]),
    ]  # fmt: skip
    rows: list[Row] = []
    with server(RATE_PER_MIN) as fake:
        for key, title, optimizer, ours_args, dspy_flags in pairs:
            ours = run_ours(fake, optimizer, ours_args)
            theirs = [run_dspy(fake, python, optimizer, t, dspy_flags) for t in thread_counts]
            best = min(theirs, key=lambda r: r["optimize_s"])
            raw[f"optimize_{key}"] = {"promptcast": ours, "dspy": theirs}
            ours_limit = limit_s(ours["calls"], CONCURRENCY, RATE_PER_MIN)
            dspy_limit = limit_s(best["calls"], best["threads"], RATE_PER_MIN)
            within = ours["optimize_s"] / ours_limit if ours_limit else None
            wall = Row(
                "scale",
                f"{title}: optimization wall time, 200 ms + 600 requests/min",
                ours["optimize_s"],
                best["optimize_s"],
                "s",
                "<= 1/4",
                note=(
                    f"ours at {CONCURRENCY} in flight: {ours['calls']} calls, "
                    f"{ours['rate_limited']} 429s; DSPy best of threads {thread_counts} = "
                    f"{best['threads']}: {best['calls']} calls, {best['rate_limited']} 429s "
                    "(all DSPy runs: "
                    + ", ".join(f"{r['threads']}t {r['optimize_s']:.1f}s" for r in theirs)
                    + ")"
                ),
            )
            wall.ok = wall.ratio is not None and wall.ratio <= WALL_TARGET
            limit = Row(
                "scale",
                f"{title}: optimization wall time / physical limit",
                within,
                best["optimize_s"] / dspy_limit if dspy_limit else None,
                "x",
                "promptcast <= 1.2",
                ok=within is not None and within <= LIMIT_TARGET,
                note=(
                    f"limit max(calls x {LATENCY_S:g} s / concurrency, calls / 10 per s): "
                    f"ours {ours_limit:.1f} s, DSPy {dspy_limit:.1f} s"
                ),
            )
            throttled = Row(
                "scale",
                f"{title}: 429s provoked at the server",
                ours["rate_limited"],
                best["rate_limited"],
                "responses",
                "0",
                ok=ours["rate_limited"] == 0,
                note="DSPy at its best thread count; a provider may throttle a key harder for them",
            )
            calls = Row(
                "scale",
                f"{title}: LM calls answered (429s not counted)",
                ours["calls"],
                best["calls"],
                "calls",
                "equal",
                ok=abs(ours["calls"] - best["calls"]) <= 0.1 * max(best["calls"], 1),
                note=f"dev score after: ours {ours['dev_after']}, DSPy {best['dev_after']}",
            )
            rows += [wall, limit, throttled, calls]
    return rows


# --- batch ----------------------------------------------------------------------------------------


def run_batch_ours(
    fake: Server, tree: Path, rows: int, concurrency: int, rate: float | None
) -> dict[str, Any]:
    cmd: list[str | Path] = [
        PC_PYTHON, BENCH / "scale_batch.py", "--tree", tree, "--api-base", fake.url,
        "--rows", str(rows), "--concurrency", str(concurrency),
    ]  # fmt: skip
    if rate is not None:
        cmd += ["--requests-per-minute", f"{rate:g}"]
    out = json.loads(run(cmd, cwd=BENCH, env=quiet_env()).stdout.strip().splitlines()[-1])
    return {**out, **fake.stats()}


def run_batch_dspy(fake: Server, python: str, rows: int, threads: int) -> dict[str, Any]:
    cmd: list[str | Path] = [
        python, BENCH / "dspy_batch.py", "--api-base", fake.url,
        "--rows", str(rows), "--threads", str(threads),
    ]  # fmt: skip
    out = json.loads(run(cmd, cwd=BENCH, env=quiet_env()).stdout.strip().splitlines()[-1])
    return {**out, **fake.stats()}


def batches(quick: bool, python: str, raw: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    free_rows = 500 if quick else 2000
    limited_rows = 150 if quick else 300
    with temp_dir("scale-build") as tmp:
        tree = build(TREC / "triage", tmp / "tree")  # no lock beside it: zero-shot, as DSPy's
        settings = [(None, free_rows, CONCURRENCY), (None, free_rows, 256)]
        settings.append((RATE_PER_MIN, limited_rows, CONCURRENCY))
        for rate, n, concurrency in settings:
            with server(rate) as fake:
                ours = run_batch_ours(fake, tree, n, concurrency, rate)
                theirs = run_batch_dspy(fake, python, n, concurrency)
            where = "600 requests/min" if rate else "no rate limit"
            raw[f"batch_{n}_{concurrency}_{'limited' if rate else 'free'}"] = {
                "promptcast": ours,
                "dspy": theirs,
            }
            bound = limit_s(n, concurrency, rate)
            row = Row(
                "scale",
                f"batch of {n} rows, {concurrency} in flight, 200 ms, {where}: wall time",
                ours["wall_s"],
                theirs["wall_s"],
                "s",
                "< DSPy" if rate is None else "all rows, <= 1.2x limit",
                note=(
                    f"limit {bound:.1f} s (ours {ours['wall_s'] / bound:.2f}x); right answers "
                    f"ours {ours['right']}/{n}, DSPy {theirs['right']}/{n}; 429s ours "
                    f"{ours['rate_limited']}, DSPy {theirs['rate_limited']}"
                ),
            )
            if rate is None:
                row.ok = row.ratio is not None and row.ratio < 1
            else:  # DSPy's time is that of the rows it did not give up on
                row.ok = ours["errors"] == 0 and ours["wall_s"] <= LIMIT_TARGET * bound
            failed = Row(
                "scale",
                f"batch of {n} rows, {concurrency} in flight, 200 ms, {where}: rows failed",
                ours["errors"],
                theirs["errors"],
                "rows",
                "0",
                ok=ours["errors"] == 0,
                note="a row whose call still failed after the client's retries (429s)",
            )
            rows += [row, failed]
    return rows


def run_section(quick: bool, dspy_python: str) -> SectionResult:
    raw: dict[str, Any] = {
        "latency_s": LATENCY_S,
        "requests_per_minute": RATE_PER_MIN,
        "concurrency": CONCURRENCY,
    }
    rows = optimization(quick, dspy_python, raw) + batches(quick, dspy_python, raw)
    notes = [
        "Server: 200 ms a request, 600 requests/min (one-second token bucket, 429 + "
        "Retry-After: 1 over it), counted at the server. Ours: `optimize --concurrency 64 "
        "--requests-per-minute 600`, `batch(..., concurrency=N, requests_per_minute=600)`; "
        "DSPy 3.4.1 as shipped (no limiter; litellm retries 429s, num_retries=3)."
    ]
    return SectionResult("scale", rows, raw, notes)


if __name__ == "__main__":  # run alone: python3 bench/section_scale.py [--quick]
    import sys

    from benchlib import dspy_python as find_dspy

    result = run_section("--quick" in sys.argv, str(find_dspy()))
    for r in result.rows:
        print(f"{r.figure}: ours {r.promptcast} | DSPy {r.dspy} {r.unit} | ok={r.ok} | {r.note}")
    print(json.dumps(result.raw, indent=1, default=str))
