"""Reasoning demos on object_counting (issue 22): does bootstrap keep the chain of thought?

    .venv/bin/python bench/cot_demos.py                  # 100 test rows, every setting
    .venv/bin/python bench/cot_demos.py --rows 20 --settings zero-shot,complete

`examples/counting` (BIG-bench object_counting, `@pc.chain_of_thought -> int`), its 40 training
rows, scored on the first `--rows` rows of the shared test split, against the local qwen0.5b:

- `zero-shot`: promptcast, no demos;
- `complete`: `optimize --optimizer bootstrap` with `reasoning=complete` (the default: the
  teacher runs the step zero-shot, the labeled top-up is rationalized);
- `dspy-fill`: the same with `reasoning=dspy` (labeled demos without reasoning, DSPy's fill);
- `dspy`: DSPy 3.4.1's BootstrapFewShot on `dspy.ChainOfThought` (bench/dspy_cot_counting.py in
  bench/.venv-dspy), and `dspy-zero-shot` for its uncompiled program.

The same demo budget (`--bootstrapped`, `--labeled`: 4 + 4, the example's), sampling
(temperature 0, max_tokens 1024) and metric everywhere; our bootstraps pass `dev_score=false`,
so neither side spends calls on dev (DSPy's BootstrapFewShot never scores). Each promptcast
setting runs in a fresh copy of the example (empty cache) behind `counting_proxy.py`, so LM calls
and completion tokens are what reached the server; "tokens per answer" is the test phase's
completion tokens / test rows (a step that stopped reasoning shows ~10-30, one that reasons
~100+). Writes `results/cot_demos.json` and `.md`.
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
from counting_proxy import CountingProxy

EXAMPLE = ROOT / "examples" / "counting"
SHARED_TEST = ROOT.parent / "shared" / "data" / "object_counting" / "test.jsonl"
TARGET = "counting.count:count_objects"
TREC = ROOT / "examples" / "trec"
TREC_TARGET = "triage.classify:question_type"
DSPY_PYTHON = ROOT / "bench" / ".venv-dspy" / "bin" / "python"
SETTINGS = ("zero-shot", "complete", "dspy-fill", "dspy-zero-shot", "dspy")


def make_project(into: Path, rows: int, task: str = "counting") -> None:
    """A fresh copy of the example whose test file is the first `rows` test rows (TREC: the
    example's step made `@pc.chain_of_thought`)."""
    if task == "trec":
        shutil.copytree(TREC / "triage", into / "triage", ignore=shutil.ignore_patterns("__pycache__"))
        source = into / "triage" / "classify.py"
        text = source.read_text()
        assert "@pc.predict\n" in text
        source.write_text(text.replace("@pc.predict\n", "@pc.chain_of_thought\n"))
        (into / "data").mkdir()
        for name in ("train.jsonl", "dev.jsonl"):
            shutil.copy(TREC / "data" / name, into / "data" / name)
        lines = (TREC / "data" / "test.jsonl").read_text().splitlines(keepends=True)[:rows]
        (into / "data" / "test.jsonl").write_text("".join(lines))
        shutil.copy(TREC / "pyproject.toml", into / "pyproject.toml")
        return
    shutil.copytree(
        EXAMPLE / "counting", into / "counting", ignore=shutil.ignore_patterns("__pycache__")
    )
    (into / "data").mkdir()
    for name in ("train.jsonl", "dev.jsonl"):
        shutil.copy(EXAMPLE / "data" / name, into / "data" / name)
    lines = SHARED_TEST.read_text().splitlines(keepends=True)[:rows]
    (into / "data" / "test.jsonl").write_text("".join(lines))
    shutil.copy(EXAMPLE / "pyproject.toml", into / "pyproject.toml")


def _pc(project: Path, args: list[str], api_base: str, model: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(PC_CLI), *args, "--model", model, "--api-base", api_base]
    return subprocess.run(
        cmd, cwd=project, env=quiet_env(), capture_output=True, text=True, timeout=4 * 3600
    )


def target(args: argparse.Namespace) -> str:
    return TREC_TARGET if args.task == "trec" else TARGET


def run_promptcast(setting: str, args: argparse.Namespace) -> dict[str, Any]:
    """Optimize (unless zero-shot) then eval the test rows, each phase counted at the proxy."""
    with CountingProxy(args.api_base) as proxy, temp_dir("cotdemos") as project:
        make_project(project, args.rows, args.task)
        row: dict[str, Any] = {"setting": setting, "system": "promptcast"}
        start = time.perf_counter()
        if setting != "zero-shot":
            policy = "complete" if setting == "complete" else "dspy"
            optimize = [
                "optimize", target(args), "--optimizer", "bootstrap", "--threads", str(args.threads),
                "--optimizer-arg", f"max_bootstrapped_demos={args.bootstrapped}",
                "--optimizer-arg", f"max_labeled_demos={args.labeled}",
                "--optimizer-arg", "dev_score=false",
                "--optimizer-arg", f"reasoning={policy}",
            ]  # fmt: skip
            proc = _pc(project, optimize, proxy.url, args.model)
            if proc.returncode != 0:
                row.update(exit_code=proc.returncode, stderr_tail=proc.stderr[-2000:])
                return row
            lock = json.loads((project / "promptcast.lock.json").read_text())
            demos = next(iter(lock["functions"].values()))["state"]["demos"]
            row["demos"] = len(demos)
            row["demos_with_reasoning"] = sum(1 for d in demos if d.get("reasoning"))
            row["notes"] = proc.stderr[-1500:]
        compile_counts = proxy.snapshot()
        proxy.counts.reset()
        compiled = time.perf_counter()
        evaluate = [
            "eval", target(args), "--data", "data/test.jsonl", "--json", "--threads",
            str(args.threads),
        ]
        proc = _pc(project, evaluate, proxy.url, args.model)
        end = time.perf_counter()
        test_counts = proxy.snapshot()
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        row.update(exit_code=proc.returncode, stderr_tail=proc.stderr[-2000:])
        return row
    row.update(
        n_test=report["n"],
        test_score=report["score"],
        correct=report["n"] - len(report["failures"]),
        parse_failures=sum(1 for f in report["failures"] if (f["error"] or "").startswith("Parse")),
        compile_lm_calls=compile_counts["chat"],
        test_lm_calls=test_counts["chat"],
        test_completion_tokens=test_counts["completion_tokens"],
        completion_tokens_per_answer=round(test_counts["completion_tokens"] / max(1, report["n"]), 1),
        compile_wall_s=round(compiled - start, 1),
        test_wall_s=round(end - compiled, 1),
    )
    return row


def run_dspy(setting: str, args: argparse.Namespace) -> dict[str, Any]:
    with temp_dir("cotdemos-dspy") as folder:
        make_project(folder, args.rows, args.task)
        cmd = [
            str(DSPY_PYTHON), str(ROOT / "bench" / "dspy_cot_counting.py"),
            "--api-base", args.api_base, "--model", args.model.removeprefix("openai/"),
            "--train", str(folder / "data" / "train.jsonl"),
            "--test", str(folder / "data" / "test.jsonl"),
            "--optimizer", "none" if setting == "dspy-zero-shot" else "bootstrap",
            "--max-bootstrapped-demos", str(args.bootstrapped),
            "--max-labeled-demos", str(args.labeled),
            "--threads", str(args.threads), "--task", args.task,
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, cwd=ROOT / "bench", capture_output=True, text=True, timeout=4 * 3600
        )
    try:
        row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"setting": setting, "system": "dspy", "exit_code": proc.returncode,
                "stderr_tail": proc.stderr[-2000:]}  # fmt: skip
    row["setting"] = setting
    row.pop("answers", None)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| setting | test accuracy | correct | demos (with reasoning) | completion tokens / answer"
        " | parse failures | compile LM calls | test LM calls | compile s | test s |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        if "test_score" not in r:
            lines.append(f"| {r['setting']} | failed (exit {r.get('exit_code')}) |" + " |" * 8)
            continue
        demos = f"{r['demos']} ({r['demos_with_reasoning']})" if "demos" in r else "0"
        lines.append(
            f"| {r['setting']} | {r['test_score']:.2f} | {r['correct']}/{r['n_test']} | {demos}"
            f" | {r['completion_tokens_per_answer']} | {r.get('parse_failures', '-')}"
            f" | {r['compile_lm_calls']} | {r['test_lm_calls']} | {r['compile_wall_s']}"
            f" | {r['test_wall_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="openai/qwen0.5b")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrapped", type=int, default=4)
    parser.add_argument("--labeled", type=int, default=4)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", default="cot_demos")
    parser.add_argument("--task", choices=("counting", "trec"), default="counting")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for setting in args.settings.split(","):
        if setting not in SETTINGS:
            parser.error(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")
        print(f"== {setting}", file=sys.stderr, flush=True)
        run = run_dspy if setting.startswith("dspy") and setting != "dspy-fill" else run_promptcast
        rows.append(run(setting, args))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        RESULTS.mkdir(exist_ok=True)
        record = {
            "task": (
                "TREC, the example's step as @pc.chain_of_thought vs dspy.ChainOfThought"
                if args.task == "trec"
                else "object_counting, @pc.chain_of_thought -> int vs dspy.ChainOfThought"
            ),
            "rows": args.rows,
            "model": args.model,
            "demo_budget": {"bootstrapped": args.bootstrapped, "labeled": args.labeled},
            "settings": rows,
        }
        (RESULTS / f"{args.out}.json").write_text(json.dumps(record, indent=2) + "\n")
        md = [
            f"# Reasoning demos on {'TREC' if args.task == 'trec' else 'object_counting'} (issue 22)",
            "",
            f"First {args.rows} rows of the shared test split; 40 training rows; {args.model};"
            f" demo budget {args.bootstrapped} bootstrapped + {args.labeled} labeled in all;"
            " temperature 0, max_tokens 1024. `bench/cot_demos.py`.",
            "",
            table(rows),
            "",
        ]
        (RESULTS / f"{args.out}.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
