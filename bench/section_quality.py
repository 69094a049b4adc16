"""Section 4, quality with the real local model: test accuracy and LM calls, both systems.

Why: speed means nothing if the optimized program is worse. Same data (examples/trec), model,
server, optimizer parameters (by default the example's 4 bootstrapped + 4 labeled demos and 2
random-search candidates, `--labeled`/`--candidates` to change; DSPy's defaults are 16 labeled),
temperature 0, 128 max tokens, 8 threads; LM calls counted at the HTTP level by
`counting_proxy.py` on both sides. DSPy's side is `dspy_trec.py` unchanged; ours is the CLI:
`optimize` (not for zero-shot), `build --vendor-runtime`, `eval --built` on the test rows.

The local model answers one request at a time (~10 s per long prompt on 2 cores), so a full run
takes over an hour; it is run only when asked (`run.py --section quality`). Without a live run
the section reads the newest results files in `bench/results/` (`quality_*.jsonl`, and
`dspy_trec_*.jsonl` from an earlier DSPy-only run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH,
    RESULTS,
    Row,
    SectionResult,
    quiet_env,
    run,
)
from promptcast_cli import compile_and_eval

OPTIMIZERS = ("predict", "bootstrap", "random_search", "mipro", "copro", "gepa")
MAX_BOOTSTRAPPED = 4
MAX_LABELED = 4
CANDIDATES = 2
# Instruction optimizers, both systems alike: MIPROv2's light preset; COPRO at breadth x depth
# 4 x 2 (DSPy's 10 x 3 is ~1,200 dev calls); GEPA stopped by one budget of LM calls (ours: every
# call, reflections included, `--max-calls`; DSPy's: max_metric_calls, reflections on top).
MIPRO_AUTO = "light"
COPRO_BREADTH, COPRO_DEPTH = 4, 2
GEPA_BUDGET = 150


TASKS = {
    # task (examples/<task>): (package, target, label column)
    "trec": ("triage", "triage.classify:question_type", "coarse"),
    "sentiment": ("reviews", "reviews.sentiment:sentiment", "label"),
}


DEMO_BUDGET = ("max_bootstrapped_demos", "max_labeled_demos")
INSTRUCTIONS_ONLY = ("copro", "gepa")  # no demos: the demo budget does not apply


def budget_suffix(labeled: int) -> str:
    """How file names tell a non-default labeled-demo budget apart (`_labeled16`)."""
    return "" if labeled == MAX_LABELED else f"_labeled{labeled}"


def run_ours(
    name: str,
    api_base: str,
    model: str,
    test_rows: int,
    labeled: int,
    candidates: int,
    task: str = "trec",
    dev_rows: int | None = None,
    server: str = "",
) -> dict[str, Any]:
    """One optimizer through the CLI in a fresh copy of the example (`promptcast_cli`).

    `server`: the results-file suffix of the LM server's setting, so the run's lock and report
    are kept apart from those measured under another setting."""
    package, target, label = TASKS[task]
    args: dict[str, object] = {
        "max_bootstrapped_demos": MAX_BOOTSTRAPPED,
        "max_labeled_demos": labeled,
    }
    flags: list[str] = []
    if name == "random_search":
        args["num_candidates"] = candidates
    elif name == "mipro":
        args["auto"] = MIPRO_AUTO
    elif name == "copro":
        args = {"breadth": COPRO_BREADTH, "depth": COPRO_DEPTH}
    elif name == "gepa":
        args = {"max_iterations": 10**6}  # the budget stops it, as DSPy's max_metric_calls
        flags = ["--max-calls", str(GEPA_BUDGET)]
    measured = compile_and_eval(
        task, package, target, label=label, metric="exact_match",
        optimizer=None if name == "predict" else name, optimizer_args=args,
        api_base=api_base, model=model, test_rows=test_rows, dev_rows=dev_rows,
        keep=RESULTS / "runs" / f"{task}_{name}_{model}{budget_suffix(labeled)}{server}",
        optimize_flags=flags,
    )  # fmt: skip
    return {
        "system": "promptcast",
        "task": task,
        "optimizer": name,
        "model": model,
        **{k: v for k, v in measured.items() if k != "score"},
        "test_accuracy": measured["score"],
        "max_bootstrapped": 0 if name in ("predict", *INSTRUCTIONS_ONLY) else MAX_BOOTSTRAPPED,
        "max_labeled": 0 if name in ("predict", *INSTRUCTIONS_ONLY) else labeled,
        "candidates": candidates if name == "random_search" else None,
        "params": {k: v for k, v in args.items() if k not in DEMO_BUDGET}
        | ({"max_calls": GEPA_BUDGET} if name == "gepa" else {}),
    }


def run_live(
    quick: bool,
    dspy_python: str,
    api_base: str,
    model: str,
    labeled: int = MAX_LABELED,
    candidates: int = CANDIDATES,
    task: str = "trec",
    optimizers: tuple[str, ...] = OPTIMIZERS,
    lm_server: str = "prefix-cache",
    dspy_optimizers: tuple[str, ...] | None = None,
) -> Path:
    """Both systems, the chosen optimizers, sequentially (the server is single-slot anyway).

    `dspy_optimizers` (default: the same) are DSPy's to run. Rows of optimizers not chosen this
    time stay in the results file as they were. Every row
    is stamped with `lm_server`, the server's setting, since it changes the model's arithmetic.
    """
    dspy_optimizers = optimizers if dspy_optimizers is None else dspy_optimizers
    prefix = "quality_" if task == "trec" else f"quality_{task}_"
    server = "" if lm_server == "from-scratch" else f"_{lm_server}"
    out = (
        RESULTS
        / f"{prefix}{model}{budget_suffix(labeled)}{server}{'_quick' if quick else ''}.jsonl"
    )
    test_rows, dev_rows = (20, 20) if quick else (100, None)  # dspy_trec.py --quick: the same
    rerun = {"promptcast": optimizers, "dspy": dspy_optimizers}
    on_file = [json.loads(x) for x in (out.read_text().splitlines() if out.exists() else [])
               if x.startswith("{")]  # fmt: skip
    kept = [
        json.dumps(r, sort_keys=True) for r in on_file if r["optimizer"] not in rerun[r["system"]]
    ]

    def stamped(row: dict[str, Any]) -> str:
        return json.dumps({**row, "lm_server": lm_server, "quick": quick}, sort_keys=True)

    lines: list[str] = []
    for name in optimizers:
        try:
            row = run_ours(
                name, api_base, model, test_rows, labeled, candidates, task, dev_rows, server
            )
        except Exception as exc:  # keep the other optimizers' rows of an hour-long run
            row = {"system": "promptcast", "task": task, "optimizer": name, "model": model,
                   "test_accuracy": None, "lm_calls": None, "error": str(exc)[-500:]}  # fmt: skip
        lines.append(stamped(row))
        out.write_text("\n".join(kept + lines) + "\n")
    if not dspy_optimizers:
        return out
    dspy_args = [
        *("--api-base", api_base, "--model", model, f"--candidates={candidates}"),
        *(f"--max-bootstrapped={MAX_BOOTSTRAPPED}", f"--max-labeled={labeled}"),
        f"--task={task}", f"--only={','.join(dspy_optimizers)}", f"--mipro-auto={MIPRO_AUTO}",
        f"--copro-breadth={COPRO_BREADTH}", f"--copro-depth={COPRO_DEPTH}",
        f"--gepa-budget={GEPA_BUDGET}",
    ]  # fmt: skip
    proc = run(
        [dspy_python, BENCH / "dspy_trec.py", *dspy_args, *(["--quick"] if quick else [])],
        cwd=BENCH,
        env=quiet_env(),
        timeout=8 * 3600,
    )
    lines += [stamped(json.loads(x)) for x in proc.stdout.splitlines() if x.startswith("{")]
    out.write_text("\n".join(kept + lines) + "\n")
    return out


def read_results() -> tuple[list[dict[str, Any]], list[str]]:
    """Every result line on file, newest file last; later lines win per (system, optimizer)."""
    files = sorted(RESULTS.glob("dspy_trec_*.jsonl")) + sorted(
        RESULTS.glob("quality_*.jsonl"), key=lambda p: p.stat().st_mtime
    )
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                row["file"] = path.name
                row.setdefault("task", "trec")  # files from before sentiment was added
                row["setting"] = setting(row)
                rows[(row["task"], row["system"], row["optimizer"], row["setting"])] = row
    return list(rows.values()), [p.name for p in files]


def setting(row: dict[str, Any]) -> str:
    """The demo budget a row was measured with: rows of different budgets are not compared.

    Rows written before the budget was recorded used DSPy's defaults (4 + 16); rows written
    before `lm_server` was recorded ran on the from-scratch server (the prefix cache came later).
    """
    server = row.get("lm_server", "from-scratch")
    where = "" if server == "from-scratch" else f", {server} server"
    if row.get("quick", row.get("n_test") == 20):  # --quick rows: 20 dev, 20 test rows
        where += ", quick"
    if row["optimizer"] == "predict":
        return f"zero-shot{where}"
    if row["optimizer"] in INSTRUCTIONS_ONLY:
        return f"instructions only{where}"
    bootstrapped, labeled = row.get("max_bootstrapped"), row.get("max_labeled")
    b = 4 if bootstrapped is None else bootstrapped
    return f"{b}+{16 if labeled is None else labeled} demos{where}"


def run_section(
    quick: bool,
    dspy_python: str,
    live: bool = False,
    api_base: str = "",
    model: str = "",
    labeled: int = MAX_LABELED,
    candidates: int = CANDIDATES,
    tasks: tuple[str, ...] = ("trec",),
    optimizers: tuple[str, ...] = OPTIMIZERS,
    lm_server: str = "prefix-cache",
    dspy_optimizers: tuple[str, ...] | None = None,
) -> SectionResult:
    notes = []
    if live:
        for task in tasks:
            path = run_live(
                quick, dspy_python, api_base, model, labeled, candidates, task, optimizers,
                lm_server, dspy_optimizers,
            )  # fmt: skip
            notes.append(f"measured live against {api_base} ({model}) into {path.name}")
    results, files = read_results()
    by = {(r["task"], r["system"], r["optimizer"], r["setting"]): r for r in results}
    settings = sorted({r["setting"] for r in results})
    rows: list[Row] = []
    for task, name, budget in [(t, n, b) for t in TASKS for n in OPTIMIZERS for b in settings]:
        ours = by.get((task, "promptcast", name, budget))
        theirs = by.get((task, "dspy", name, budget))
        if ours is None and theirs is None:
            continue
        if name != "predict":
            stratified = ", ours with stratify=true" if ours and ours.get("stratify") else ""
            name = f"{name} ({budget}{stratified})"
        elif budget != "zero-shot":
            name = f"{name} ({budget.removeprefix('zero-shot, ')})"
        name = name.replace("quick)", "quick: 20 dev + 20 test rows)")
        source = ", ".join(sorted({r["file"] for r in (ours, theirs) if r}))
        sizes = ", ".join(
            sorted({f"n={r['n_test']}" for r in (ours, theirs) if r and "n_test" in r})
        )
        failed = "; ".join(
            f"{r['system']} failed: {r['error'][:160]}"
            for r in (ours, theirs)
            if r and "error" in r
        )
        acc = [r.get("test_accuracy") if r else None for r in (ours, theirs)]
        calls = [r.get("lm_calls") if r else None for r in (ours, theirs)]
        rows.append(
            Row(
                "quality",
                f"{task} {name}: test accuracy (higher is better)",
                acc[0],
                acc[1],
                "",
                ">= DSPy",
                ok=(acc[0] >= acc[1]) if acc[0] is not None and acc[1] is not None else None,
                note="; ".join(x for x in (sizes, source, failed) if x),
            )
        )
        rows.append(
            Row(
                "quality",
                f"{task} {name}: LM calls (optimize + test evaluation)",
                calls[0],
                calls[1],
                "calls",
                "<= DSPy",
                ok=(calls[0] <= calls[1])
                if calls[0] is not None and calls[1] is not None
                else None,
                note=source,
            )
        )
    if not any(r.promptcast is not None for r in rows):
        notes.append(
            "promptcast's side has not been measured with the real model yet: "
            "run `python3 bench/run.py --section quality` while the local model is free"
        )
    return SectionResult("quality", rows, {"results": results, "files": files}, notes)
