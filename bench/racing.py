"""Racing vs full evaluation, and what each objective picks (issue 22), on the local model.

    .venv/bin/python bench/racing.py                        # TREC and sentiment, 4 seeds
    .venv/bin/python bench/racing.py --tasks trec --candidates 2 --test-rows 30

For each task (`examples/trec`, `examples/sentiment`: 40 train, 40 dev, 100 test rows), in one
fresh copy of the example:

1. `optimize --optimizer random_search` with racing (the default), then `eval` of the winner on
   the test rows;
2. the same with `racing=false` (every candidate scored on all of dev, as DSPy does);
3. the same full pool re-chosen under `--objective within:0.025` and `--objective
   weighted:0.05` (same seed, so the same candidates: their calls come from the cache).

Same seed, candidate pool and settings in every run. "LM requests" is the lock's count of every
request the optimizer made, cached or not, so the runs compare like for like although later ones
are answered from the cache the earlier ones filled; test calls are counted by `eval`. The front
(dev score vs prompt tokens per call of every fully scored candidate) comes from the full run's
lock. Writes `results/racing.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import PC_CLI, RESULTS, ROOT, quiet_env, temp_dir

TASKS = {
    "trec": ("triage", "triage.classify:question_type"),
    "sentiment": ("reviews", "reviews.sentiment:sentiment"),
}
OBJECTIVES = ("accuracy", "within:0.025", "weighted:0.05")


def make_project(task: str, into: Path, test_rows: int) -> None:
    example = ROOT / "examples" / task
    package, _ = TASKS[task]
    shutil.copytree(example / package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    (into / "data").mkdir()
    for name in ("train.jsonl", "dev.jsonl"):
        shutil.copy(example / "data" / name, into / "data" / name)
    lines = (example / "data" / "test.jsonl").read_text().splitlines(keepends=True)[:test_rows]
    (into / "data" / "test.jsonl").write_text("".join(lines))
    pyproject = (example / "pyproject.toml").read_text()
    (into / "pyproject.toml").write_text(pyproject.replace('optimizer = "bootstrap"', 'optimizer = "random_search"'))


def _pc(project: Path, args: list[str], api_base: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PC_CLI), *args, "--api-base", api_base], cwd=project, env=quiet_env(),
        capture_output=True, text=True, timeout=4 * 3600,
    )  # fmt: skip


def one_run(
    task: str, project: Path, args: argparse.Namespace, *, racing: bool, objective: str
) -> dict[str, Any]:
    _, target = TASKS[task]
    lock = project / f"lock-{'race' if racing else 'full'}-{objective.replace(':', '_')}.json"
    optimize = [
        "optimize", target, "--lock", str(lock), "--threads", str(args.threads),
        "--optimizer-arg", f"num_candidates={args.candidates}",
        "--optimizer-arg", f"racing={'true' if racing else 'false'}",
        "--objective", objective, "--replace-lock",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = _pc(project, optimize, args.api_base)
    optimized = time.perf_counter()
    row: dict[str, Any] = {"task": task, "racing": racing, "objective": objective}
    if proc.returncode != 0:
        row.update(exit_code=proc.returncode, stderr_tail=proc.stderr[-2000:])
        return row
    entry = next(iter(json.loads(lock.read_text())["functions"].values()))
    record = entry["optimization"]
    evaluate = ["eval", target, "--data", "data/test.jsonl", "--json", "--lock", str(lock),
                "--threads", str(args.threads)]  # fmt: skip
    proc = _pc(project, evaluate, args.api_base)
    end = time.perf_counter()
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        row.update(exit_code=proc.returncode, stderr_tail=proc.stderr[-2000:])
        return row
    candidates = record["candidates"]
    row.update(
        winner=record["best_candidate"],
        demos=len(entry["state"]["demos"]),
        dev_score=record["dev_score_after"],
        test_score=report["score"],
        n_test=report["n"],
        lm_requests=record["lm_requests"],
        dev_rows_scored=sum(c["dev_examples"] for c in candidates),
        raced_out=sum(1 for c in candidates if not c["complete"]),
        candidates=candidates,
        test_lm_calls=report["lm_calls"],
        optimize_wall_s=round(optimized - start, 1),
        eval_wall_s=round(end - optimized, 1),
    )
    return row


def front(candidates: list[dict[str, Any]]) -> list[str]:
    """Labels of the locked candidates on the score-vs-tokens front (`optimizers.front`, the
    same rule the optimize report draws)."""
    from promptcast.optimizers.front import Costed
    from promptcast.optimizers.front import front as edge

    full = [
        Costed(c["label"], c["dev_score"], c.get("tokens_per_example", c["prompt_tokens_per_call"]))
        for c in candidates
        if c["complete"] and "prompt_tokens_per_call" in c
    ]
    return [p.label for p in edge(full)]


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# Racing vs full evaluation, and objectives (issue 22)",
        "",
        f"random_search, {args.candidates} seeded candidates + zero-shot, labeled, bootstrap;"
        f" 40 dev rows; first {args.test_rows} test rows; qwen0.5b; `bench/racing.py`.",
        "",
        "| task | racing | objective | winner | demos | dev | test | LM requests (optimize)"
        " | dev rows scored | raced out | optimize s |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        if "winner" not in r:
            lines.append(f"| {r['task']} | {r['racing']} | {r['objective']} | failed |" + " |" * 7)
            continue
        lines.append(
            f"| {r['task']} | {'on' if r['racing'] else 'off'} | {r['objective']} | {r['winner']}"
            f" | {r['demos']} | {r['dev_score']:.3f} | {r['test_score']:.2f} | {r['lm_requests']}"
            f" | {r['dev_rows_scored']} | {r['raced_out']} | {r['optimize_wall_s']} |"
        )
    for r in rows:
        if r.get("racing") is False and r.get("objective") == "accuracy" and "candidates" in r:
            lines += ["", f"## {r['task']}: every candidate (full evaluation)", "",
                      "| candidate | dev | 95% interval | prompt tok/call | completion tok/call | on the front |",
                      "|---|---:|---|---:|---:|---|"]  # fmt: skip
            on = set(front(r["candidates"]))
            for c in r["candidates"]:
                low, high = c.get("interval_95", [None, None])
                lines.append(
                    f"| {c['label']} | {c['dev_score']:.3f} | [{low:.2f}, {high:.2f}]"
                    f" | {c.get('prompt_tokens_per_call', '-')} | {c.get('completion_tokens_per_call', '-')}"
                    f" | {'yes' if c['label'] in on else ''} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tasks", default="trec,sentiment")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--test-rows", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--out", default="racing")
    parser.add_argument(
        "--runs", default="all", choices=("all", "race"),
        help="race: only the raced run (e.g. to compare a new racing rule with a full run on file)",
    )
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for task in args.tasks.split(","):
        with temp_dir(f"racing-{task}") as project:
            make_project(task, project, args.test_rows)
            plan = [(True, "accuracy"), (False, "accuracy")]
            plan += [(False, objective) for objective in OBJECTIVES[1:]]
            if args.runs == "race":
                plan = plan[:1]
            for racing, objective in plan:
                print(f"== {task} racing={racing} objective={objective}", file=sys.stderr, flush=True)
                rows.append(one_run(task, project, args, racing=racing, objective=objective))
                print(markdown(rows[-1:], args).splitlines()[-1], file=sys.stderr, flush=True)
                RESULTS.mkdir(exist_ok=True)
                (RESULTS / f"{args.out}.json").write_text(json.dumps(rows, indent=2) + "\n")
                (RESULTS / f"{args.out}.md").write_text(markdown(rows, args))


if __name__ == "__main__":
    main()
