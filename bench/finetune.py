"""Weight optimization on TREC with the real local model (issue 23): zero-shot, prompts
(bootstrap), weights (finetune, local LoRA) and both (better_together), through the CLI.

    PROMPTCAST_TRAIN_PYTHON=/path/to/train-venv/bin/python \\
        .venv/bin/python bench/finetune.py [--train-rows 60 --dev-rows 30 --test-rows 60]

Each stage runs as a user runs it, in one project folder (kept under --work, so a rerun
resumes from its LM cache and trained adapters): `optimize` into its own lock, `build` into its
own tree, then `eval --built` on dev with `--no-cache` (the shipped module, served by the
trained model's own llama.cpp server, re-scored with fresh requests: it must score what the
optimizer measured) and on test. LM calls are the lock's `lm_requests` (every request of the
optimize run, cached or paid) plus the evals' calls; the training wall time is what optimize
printed. Results: bench/results/finetune.md (+ the locks and logs in bench/results/finetune/).

Training rows come from ../shared/data/trec/train.jsonl (rows the example's dev and test sets do
not hold), dev and test from examples/trec/data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PC = ROOT / ".venv" / "bin" / "promptcast"
EXAMPLE = ROOT / "examples" / "trec"
SHARED_TRAIN = ROOT.parent / "shared" / "data" / "trec" / "train.jsonl"
RESULTS = ROOT / "bench" / "results"
BASE_URL = "http://127.0.0.1:8765/v1"
MODEL = "openai/qwen0.5b"
STAGES = ("zero_shot", "bootstrap", "finetune", "better_together", "weights_only")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=60)
    parser.add_argument("--train-offset", type=int, default=1000)
    parser.add_argument("--dev-rows", type=int, default=30)
    parser.add_argument("--test-rows", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/pc-finetune"))
    parser.add_argument("--out", type=Path, default=RESULTS / "finetune.md")
    args = parser.parse_args()
    project = prepare(args)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    results: dict[str, dict[str, Any]] = {}
    keep = RESULTS / "finetune"
    keep.mkdir(parents=True, exist_ok=True)
    record = keep / "results.json"
    if record.exists():
        results = json.loads(record.read_text())
    for stage in stages:
        print(f"== {stage}", flush=True)
        results[stage] = STAGE_RUNNERS[stage](project, args, keep)
        record.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(json.dumps(results[stage], sort_keys=True), flush=True)
    args.out.write_text(report(results, args))
    print(f"wrote {args.out}")
    return 0


def prepare(args: argparse.Namespace) -> Path:
    project = args.work
    project.mkdir(parents=True, exist_ok=True)
    if not (project / "triage").exists():
        shutil.copytree(
            EXAMPLE / "triage", project / "triage", ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(EXAMPLE / "pyproject.toml", project / "pyproject.toml")
    held = set()
    for name in ("dev", "test"):
        for line in (EXAMPLE / "data" / f"{name}.jsonl").read_text().splitlines():
            held.add(json.loads(line)["question"])
    rows = []
    for line in SHARED_TRAIN.read_text().splitlines()[args.train_offset :]:
        row = json.loads(line)
        if row["question"] not in held:
            rows.append(json.dumps({"question": row["question"], "coarse": row["coarse"]}))
        if len(rows) == args.train_rows:
            break
    (project / "train.jsonl").write_text("\n".join(rows) + "\n")
    for name, n in (("dev", args.dev_rows), ("test", args.test_rows)):
        lines = (EXAMPLE / "data" / f"{name}.jsonl").read_text().splitlines()[:n]
        (project / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return project


def pc(project: Path, *args: str, log: Path | None = None) -> str:
    """One promptcast command in the project; its stdout (and stderr, into `log`)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [str(PC), *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ promptcast {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"promptcast {args[0]} failed ({done.returncode})")
    return done.stdout


def evaluate(project: Path, data: str, *extra: str, log: Path) -> dict[str, Any]:
    return evaluate_as(project, data, ["--model", MODEL], *extra, log=log)


def optimize(
    project: Path, name: str, optimizer: str, args: list[str], keep: Path
) -> tuple[dict[str, Any], str]:
    lock = f"{name}.lock.json"
    log = keep / f"{name}.log"
    log.write_text("")
    flags = [f"--optimizer-arg={a}" for a in args]
    start = time.perf_counter()
    out = pc(
        project, "optimize", "--train", "train.jsonl", "--dev", "dev.jsonl", "--optimizer",
        optimizer, "--lock", lock, "--replace-lock", "--model", MODEL, "--api-base", BASE_URL,
        *flags, log=log,
    )  # fmt: skip
    wall = time.perf_counter() - start
    pc(project, "build", "triage", "-o", f"build-{name}", "--lock", lock, log=log)
    shutil.copy(project / lock, keep / lock)
    entry = next(iter(json.loads((project / lock).read_text())["functions"].values()))
    opt = entry["optimization"]
    trained = re.search(r"finetune: trained (\S+) .* in ([0-9.]+)s", out)
    seconds = [float(s) for s in re.findall(r"finetune: trained \S+ .* in ([0-9.]+)s", out)]
    return {
        "dev_optimizer": opt["dev_score_after"],
        "dev_before": opt["dev_score_before"],
        "optimize_lm_requests": opt["lm_requests"],
        "optimize_wall_s": round(wall, 1),
        "training_wall_s": seconds,
        "trained_model": trained.group(1) if trained else None,
        "training": opt.get("training"),
        "demos": len(entry["state"]["demos"]),
        "notes": [line.strip() for line in out.splitlines() if "finetune:" in line],
    }, lock


def served_at(info: dict[str, Any]) -> str:
    training = info.get("training") or {}
    return str(training.get("served_at") or BASE_URL)


def zero_shot(project: Path, args: argparse.Namespace, keep: Path) -> dict[str, Any]:
    log = keep / "zero_shot.log"
    log.write_text("")
    flags = ["--lock", "none.lock.json", "--api-base", BASE_URL]
    return {
        "dev": evaluate(project, "dev.jsonl", *flags, log=log),
        "test": evaluate(project, "test.jsonl", *flags, log=log),
    }


def built_scores(project: Path, name: str, url: str, keep: Path) -> dict[str, Any]:
    log = keep / f"{name}.log"
    built = ["--built", f"build-{name}", "--api-base", url]
    return {
        "dev_built_fresh": evaluate(project, "dev.jsonl", *built, "--no-cache", log=log),
        "test": evaluate(project, "test.jsonl", *built, log=log),
    }


def bootstrap(project: Path, args: argparse.Namespace, keep: Path) -> dict[str, Any]:
    info, _ = optimize(project, "bootstrap", "bootstrap", [], keep)
    return {**info, **built_scores(project, "bootstrap", BASE_URL, keep)}


def finetune(project: Path, args: argparse.Namespace, keep: Path) -> dict[str, Any]:
    info, _ = optimize(
        project, "finetune", "finetune",
        ["trainer=local", f"epochs={args.epochs}", "port=8767", "teacher=zero_shot"], keep,
    )  # fmt: skip
    return {**info, **built_scores(project, "finetune", served_at(info), keep)}


def better_together(project: Path, args: argparse.Namespace, keep: Path) -> dict[str, Any]:
    info, _ = optimize(
        project, "better_together", "better_together",
        ["trainer=local", f"epochs={args.epochs}", "port=8768"], keep,
    )  # fmt: skip
    return {**info, **built_scores(project, "better_together", served_at(info), keep)}


def weights_only(project: Path, args: argparse.Namespace, keep: Path) -> dict[str, Any]:
    """better_together's middle candidate ('p -> w') on test too: the model it trained (on the
    bootstrapped program's passing runs, prompts without demos) called with the zero-shot
    prompt, as `eval` runs an unoptimized step with that model -- the weights' share of the
    gain, apart from the second bootstrap's demos."""
    trained = json.loads((keep / "results.json").read_text())["better_together"]["training"]
    log = keep / "weights_only.log"
    log.write_text("")
    flags = ["--lock", "none.lock.json", "--api-base", str(trained["served_at"])]
    model = ["--model", f"openai/{trained['model']}"]
    return {
        "dev": evaluate_as(project, "dev.jsonl", model, *flags, log=log),
        "test": evaluate_as(project, "test.jsonl", model, *flags, log=log),
        "trained_model": trained["model"],
    }


def evaluate_as(
    project: Path, data: str, model: list[str], *extra: str, log: Path
) -> dict[str, Any]:
    out = pc(project, "eval", "--data", data, "--json", *model, *extra, log=log)
    report = json.loads(out[out.index("{") :])
    return {"score": report["score"], "n": report["n"], "lm_calls": report.get("lm_calls")}


STAGE_RUNNERS = {
    "zero_shot": zero_shot,
    "bootstrap": bootstrap,
    "finetune": finetune,
    "better_together": better_together,
    "weights_only": weights_only,
}


def calls(evaluation: dict[str, Any]) -> str:
    """An eval's LM calls; 0 means every answer came from the project's LM cache."""
    n = evaluation.get("lm_calls")
    return "0 (cached)" if n == 0 else str(n)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# Weight optimization on TREC with qwen0.5b (issue 23)",
        "",
        f"`bench/finetune.py --train-rows {args.train_rows} --dev-rows {args.dev_rows} "
        f"--test-rows {args.test_rows} --epochs {args.epochs}`; local model qwen0.5b "
        "(Qwen2.5-Coder-0.5B-Instruct Q4_K_M) on 2 shared CPU cores; trainer: LoRA r=8 on "
        "q/k/v/o of the last 8 of 24 layers (`trainer=local`), served by llama.cpp over the same "
        "GGUF with `--lora_path`.",
        "",
        "| stage | dev (optimizer) | dev (built module, fresh requests) | test | optimize LM "
        "requests | eval LM calls (dev + test) | training wall | trained on |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stage in STAGES:
        r = results.get(stage)
        if r is None:
            continue
        if stage in ("zero_shot", "weights_only"):
            if stage == "zero_shot":
                name, trained_by = "zero-shot", "- | -"
            else:
                name = f"weights only (`{r['trained_model']}`, zero-shot prompt)"
                trained_by = "better_together's | better_together's"
            lines.append(
                f"| {name} | {r['dev']['score']:.3f} | (same) | {r['test']['score']:.3f} "
                f"({r['test']['n']}) | - | {calls(r['dev'])} + {calls(r['test'])} | {trained_by} |"
            )
            continue
        training = r.get("training") or {}
        size = training.get("training_set", {})
        trained = (
            f"{size.get('conversations')} conversations (~{size.get('tokens')} tokens)"
            if size
            else "-"
        )
        wall = " + ".join(f"{s:.0f} s" for s in r["training_wall_s"]) or "-"
        lines.append(
            f"| {stage} | {r['dev_optimizer']:.3f} | {r['dev_built_fresh']['score']:.3f} | "
            f"{r['test']['score']:.3f} ({r['test']['n']}) | {r['optimize_lm_requests']} | "
            f"{calls(r['dev_built_fresh'])} + {calls(r['test'])} | {wall} | {trained} |"
        )
    chain_log = RESULTS / "finetune" / "better_together.log"
    if chain_log.exists():
        scored = [
            ln.rstrip()
            for ln in chain_log.read_text().splitlines()
            if re.match(r"\s+(p|p -> w|p -> w -> p)\s+\d", ln) or "does not separate" in ln
        ]
        lines += [
            "",
            "better_together's candidates on dev, as optimize printed them (score, 95% interval,"
            " tokens per run):",
            "",
            "```",
            *scored,
            "```",
        ]
    lines += ["", "Notes printed by optimize:", ""]
    for stage in STAGES:
        for note in (results.get(stage) or {}).get("notes", []):
            lines.append(f"- {stage}: {note.removeprefix('finetune: ')}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
