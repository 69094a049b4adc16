"""Our side of a real-model comparison: an example compiled and scored through the CLI.

Both `section_quality.py` (TREC, sentiment) and `programs.py` (orders route, planets agent)
measure promptcast the way a user runs it: a fresh copy of the example (so `.promptcast/` starts
empty), `optimize` (unless zero-shot), `build`, then `eval --built` on the first test rows --
the shipped module is what gets scored -- with LM calls counted at an HTTP proxy.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchlib import PC_CLI, ROOT, quiet_env, run, temp_dir
from counting_proxy import CountingProxy


def compile_and_eval(
    example: str,
    package: str,
    target: str,
    *,
    label: str,
    metric: str,
    optimizer: str | None,
    optimizer_args: Mapping[str, object],
    api_base: str,
    model: str,
    test_rows: int,
    dev_rows: int | None = None,
    keep: Path | None = None,
    optimize_flags: Sequence[str] = (),
) -> dict[str, Any]:
    """Score examples/<example> zero-shot (`optimizer` None) or after `optimizer`.

    `dev_rows`: score candidates on the first rows of the dev set only (quick runs).
    `optimize_flags`: more `optimize` flags (e.g. `--max-calls N`).
    `keep`: a folder to copy the run's lock and optimize report into, so the demos and
    instructions behind a score can be read after the temporary project is gone.
    """
    source = ROOT / "examples" / example
    with CountingProxy(api_base) as proxy, temp_dir(f"pc-{example}") as project:
        shutil.copytree(
            source / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copytree(source / "data", project / "data")
        if dev_rows is not None:
            dev = project / "data" / "dev.jsonl"
            dev.write_text(_first_rows(dev, dev_rows))
        test = project / "test.jsonl"
        test.write_text(_first_rows(source / "data" / "test.jsonl", test_rows))
        common = ["--model", f"openai/{model}", "--api-base", proxy.url, "--threads", "8"]
        start = time.perf_counter()
        lock: list[str | Path] = []
        if optimizer is not None:
            lock = ["--lock", "promptcast.lock.json"]
            cmd: list[str | Path] = [
                PC_CLI, "optimize", target, "--train", "data/train.jsonl",
                "--dev", "data/dev.jsonl", "--metric", metric, "--label", label,
                "--optimizer", optimizer, *lock, *common, *optimize_flags,
            ]  # fmt: skip
            for key, value in optimizer_args.items():
                cmd += ["--optimizer-arg", f"{key}={value}"]
            run(cmd, cwd=project, env=quiet_env(), timeout=6 * 3600)
        compile_calls = proxy.snapshot()["chat"]
        if keep is not None and optimizer is not None:
            _keep_evidence(project, keep)
        run([PC_CLI, "build", package, "-o", "out", "--vendor-runtime", *lock], cwd=project)
        mid = time.perf_counter()
        proc = run(
            [
                PC_CLI, "eval", target, "--data", test, "--metric", metric, "--label", label,
                "--built", "out", "--json", *common,
            ],
            cwd=project, env=quiet_env(), timeout=6 * 3600,
        )  # fmt: skip
        end = time.perf_counter()
        report = json.loads(proc.stdout)
        counts = proxy.snapshot()
    return {
        "n_test": report["n"],
        "score": report["score"],
        "parse_failures": report["errors"],
        "lm_calls": counts["chat"],
        "compile_lm_calls": compile_calls,
        "eval_lm_calls": counts["chat"] - compile_calls,
        "compile_wall_s": round(mid - start, 2),
        "eval_wall_s": round(end - mid, 2),
        "wall_s": round(end - start, 2),
        "prompt_tokens": counts["prompt_tokens"],
        "completion_tokens": counts["completion_tokens"],
    }


def _first_rows(path: Path, rows: int) -> str:
    """The first `rows` lines of a JSONL file, as text."""
    return "".join(path.read_text().splitlines(keepends=True)[:rows])


def _keep_evidence(project: Path, keep: Path) -> None:
    """Copy the lock and the reports of one optimize run into `keep` (replacing older ones)."""
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    shutil.copy2(project / "promptcast.lock.json", keep / "promptcast.lock.json")
    reports = project / ".promptcast" / "reports"
    if reports.is_dir():
        shutil.copytree(reports, keep / "reports")
