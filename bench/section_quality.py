"""Section 4, quality with the real local model: test accuracy and LM calls, both systems.

Why: speed means nothing if the optimized program is worse. Same data (examples/trec,
examples/sentiment), model, server, optimizer parameters, temperature 0, 128 max tokens, 8
threads; LM calls counted at the HTTP level by `counting_proxy.py` on both sides. DSPy's side is
`dspy_trec.py`; ours is the CLI: `optimize` (not for zero-shot), `build --vendor-runtime`,
`eval --built` on the test rows.

The local model answers one request at a time (~1-3 s a call on 2 cores with the prefix cache,
DSPy's fallback second calls included), and the instruction optimizers spend hundreds of calls
whatever the test size, so the section comes in three sizes (`SIZES`, `run.py --size`):

- `quick`: zero-shot and bootstrap, TREC and sentiment, 20 dev + 20 test rows: minutes.
- `hour` (the default): the six optimizers on one task (TREC unless `--task`), 10 dev + 40 test
  rows, COPRO 2 x 2, GEPA at 100 calls: under an hour for both systems.
- `full`: issue #6's comparison: 40 dev + 100 test rows, DSPy's 4 + 16 demos, COPRO 4 x 2, GEPA at
  150 calls: about two hours per task.

Rows carry their size; rows of different sizes, demo budgets or server settings are never
compared. Without a live run the section reads the newest results files in `bench/results/`
(`quality_*.jsonl`, and `dspy_trec_*.jsonl` from an earlier DSPy-only run).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
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
NEW_OPTIMIZERS = ("simba", "knn", "ensemble")
"""Issue 22's optimizers, measured at their own size (`new`) against DSPy's counterparts."""
SIMBA = {"bsize": 8, "num_candidates": 3, "max_steps": 3, "max_demos": 4}
"""Both systems' SIMBA settings: DSPy's defaults (32 x 6 x 8) are ~3,300 calls per run."""
KNN_K = 3
ENSEMBLE_SIZE = 3
MAX_BOOTSTRAPPED = 4
MAX_LABELED = 4
CANDIDATES = 2
MIPRO_AUTO = "light"  # both systems, every size


@dataclass(frozen=True)
class Size:
    """How much of the data and of the instruction optimizers' budgets one run spends.

    COPRO runs `copro_breadth` x `copro_depth` on both sides (DSPy's 10 x 3 is ~1,200 dev
    calls); GEPA is stopped by one budget of LM calls (ours: every call, reflections included,
    `--max-calls`; DSPy's: max_metric_calls, reflections on top). `dev_rows` None: all 40.
    """

    name: str
    test_rows: int
    dev_rows: int | None
    optimizers: tuple[str, ...]
    tasks: tuple[str, ...]
    labeled: int
    copro_breadth: int
    copro_depth: int
    gepa_budget: int

    def label(self) -> str:
        """How the report names rows of this size (the full size is the unmarked one)."""
        dev = 40 if self.dev_rows is None else self.dev_rows
        return f"{self.name}: {dev} dev + {self.test_rows} test rows"


SIZES = {
    "quick": Size("quick", 20, 20, ("predict", "bootstrap"), ("trec", "sentiment"), 4, 4, 2, 150),
    "hour": Size("hour", 40, 10, OPTIMIZERS, ("trec",), MAX_LABELED, 2, 2, 100),
    "full": Size("full", 100, None, OPTIMIZERS, ("trec",), 16, 4, 2, 150),
    "new": Size("new", 40, 20, NEW_OPTIMIZERS, ("trec",), MAX_LABELED, 2, 2, 100),
}


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


def size_suffix(size: Size) -> str:
    """How file and folder names tell a size apart (`_quick`, `_hour`; the full size: none)."""
    return "" if size.name == "full" else f"_{size.name}"


def run_ours(
    name: str,
    api_base: str,
    model: str,
    size: Size,
    labeled: int,
    candidates: int,
    task: str = "trec",
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
    if name == "simba":
        args = dict(SIMBA)
    elif name == "knn":
        args = {"k": KNN_K, "dev_score": False}  # DSPy's KNNFewShot never scores dev either
    elif name == "ensemble":
        args |= {"size": ENSEMBLE_SIZE, "num_candidates": candidates}
    elif name == "bootstrap":
        args["dev_score"] = False  # as DSPy's BootstrapFewShot, which never scores dev
    elif name == "random_search":
        args["num_candidates"] = candidates
    elif name == "mipro":
        args["auto"] = MIPRO_AUTO
    elif name == "copro":
        args = {"breadth": size.copro_breadth, "depth": size.copro_depth}
    elif name == "gepa":
        args = {"max_iterations": 10**6}  # the budget stops it, as DSPy's max_metric_calls
        flags = ["--max-calls", str(size.gepa_budget)]
    folder = f"{task}_{name}_{model}{budget_suffix(labeled)}{server}{size_suffix(size)}"
    measured = compile_and_eval(
        task, package, target, label=label, metric="exact_match",
        optimizer=None if name == "predict" else name, optimizer_args=args,
        api_base=api_base, model=model, test_rows=size.test_rows, dev_rows=size.dev_rows,
        keep=RESULTS / "runs" / folder, optimize_flags=flags,
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
        "candidates": candidates if name in ("random_search", "ensemble") else None,
        "params": {k: v for k, v in args.items() if k not in DEMO_BUDGET}
        | ({"max_calls": size.gepa_budget} if name == "gepa" else {}),
    }


def server_suffix(lm_server: str) -> str:
    """How file and folder names tell a server setting apart (the from-scratch one: none)."""
    return "" if lm_server == "from-scratch" else f"_{lm_server}"


def results_path(task: str, model: str, labeled: int, lm_server: str, size: Size) -> Path:
    """Where one task's rows of one model, demo budget, server setting and size live."""
    prefix = "quality_" if task == "trec" else f"quality_{task}_"
    stem = f"{prefix}{model}{budget_suffix(labeled)}{server_suffix(lm_server)}{size_suffix(size)}"
    return RESULTS / f"{stem}.jsonl"


def run_live(
    size: Size,
    dspy_python: str,
    api_base: str,
    model: str,
    labeled: int,
    candidates: int = CANDIDATES,
    task: str = "trec",
    optimizers: tuple[str, ...] = OPTIMIZERS,
    lm_server: str = "prefix-cache",
    dspy_optimizers: tuple[str, ...] | None = None,
) -> Path:
    """Both systems, the chosen optimizers, sequentially (the server is single-slot anyway).

    `dspy_optimizers` (default: the same) are DSPy's to run. Rows of optimizers not chosen this
    time stay in the results file as they were. Every row is stamped with its size and
    `lm_server`, the server's setting, since it changes the model's arithmetic.
    """
    dspy_optimizers = optimizers if dspy_optimizers is None else dspy_optimizers
    server = server_suffix(lm_server)
    out = results_path(task, model, labeled, lm_server, size)
    rerun = {"promptcast": optimizers, "dspy": dspy_optimizers}
    on_file = [json.loads(x) for x in (out.read_text().splitlines() if out.exists() else [])
               if x.startswith("{")]  # fmt: skip
    kept = [
        json.dumps(r, sort_keys=True) for r in on_file if r["optimizer"] not in rerun[r["system"]]
    ]

    def stamped(row: dict[str, Any]) -> str:
        return json.dumps({**row, "lm_server": lm_server, "size": size.name}, sort_keys=True)

    lines: list[str] = []
    for name in optimizers:
        try:
            row = run_ours(name, api_base, model, size, labeled, candidates, task, server)
        except Exception as exc:  # keep the other optimizers' rows of an hour-long run
            row = {"system": "promptcast", "task": task, "optimizer": name, "model": model,
                   "test_accuracy": None, "lm_calls": None, "error": str(exc)[-500:]}  # fmt: skip
        lines.append(stamped(row))
        out.write_text("\n".join(kept + lines) + "\n")
    if not dspy_optimizers:
        return out
    rows = [f"--test-rows={size.test_rows}"]
    if size.dev_rows is not None:
        rows.append(f"--dev-rows={size.dev_rows}")
    dspy_args = [
        *("--api-base", api_base, "--model", model, f"--candidates={candidates}"),
        *(f"--max-bootstrapped={MAX_BOOTSTRAPPED}", f"--max-labeled={labeled}"),
        f"--task={task}", f"--only={','.join(dspy_optimizers)}", f"--mipro-auto={MIPRO_AUTO}",
        f"--copro-breadth={size.copro_breadth}", f"--copro-depth={size.copro_depth}",
        f"--gepa-budget={size.gepa_budget}", *rows,
        f"--simba-bsize={SIMBA['bsize']}", f"--simba-candidates={SIMBA['num_candidates']}",
        f"--simba-steps={SIMBA['max_steps']}", f"--simba-max-demos={SIMBA['max_demos']}",
        f"--knn-k={KNN_K}", f"--ensemble-size={ENSEMBLE_SIZE}",
    ]  # fmt: skip
    proc = run(
        [dspy_python, BENCH / "dspy_trec.py", *dspy_args],
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
    """The model, demo budget, server and size a row was measured with: rows differing in any
    of them are not compared.

    Rows written before the budget was recorded used DSPy's defaults (4 + 16); rows written
    before `lm_server` was recorded ran on the from-scratch server (the prefix cache came later).
    """
    server = row.get("lm_server", "from-scratch")
    where = f", {row.get('model', 'qwen0.5b')}"
    where += "" if server == "from-scratch" else f", {server} server"
    # Rows from before sizes were recorded say `quick` (20 + 20 rows) or nothing (full).
    size = row.get("size") or ("quick" if row.get("quick", row.get("n_test") == 20) else "full")
    if size != "full":
        where += f", {size}"
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
    size: str | None = None,
    labeled: int | None = None,
    candidates: int = CANDIDATES,
    tasks: tuple[str, ...] | None = None,
    optimizers: tuple[str, ...] | None = None,
    lm_server: str = "prefix-cache",
    dspy_optimizers: tuple[str, ...] | None = None,
) -> SectionResult:
    """Run the section live (`live`) at `size` (default: quick with `quick`, else hour), then
    report every row on file. `labeled`, `tasks`, `optimizers`: None takes the size's."""
    notes = []
    if live:
        chosen = SIZES[size or ("quick" if quick else "hour")]
        for task in tasks or chosen.tasks:
            start = time.perf_counter()
            path = run_live(
                chosen, dspy_python, api_base, model,
                chosen.labeled if labeled is None else labeled, candidates, task,
                optimizers or chosen.optimizers, lm_server, dspy_optimizers,
            )  # fmt: skip
            notes.append(
                f"measured live against {api_base} ({model}) into {path.name}, size "
                f"{chosen.label()}: {time.perf_counter() - start:.0f} s for both systems"
            )
    results, files = read_results()
    by = {(r["task"], r["system"], r["optimizer"], r["setting"]): r for r in results}
    settings = sorted({r["setting"] for r in results})
    rows: list[Row] = []
    every = (*OPTIMIZERS, *NEW_OPTIMIZERS)
    for task, name, budget in [(t, n, b) for t in TASKS for n in every for b in settings]:
        ours = by.get((task, "promptcast", name, budget))
        theirs = by.get((task, "dspy", name, budget))
        if ours is None and theirs is None:
            continue
        if name != "predict":
            stratified = ", ours with stratify=true" if ours and ours.get("stratify") else ""
            name = f"{name} ({budget}{stratified})"
        elif budget != "zero-shot":
            name = f"{name} ({budget.removeprefix('zero-shot, ')})"
        for known in SIZES.values():
            name = name.replace(f"{known.name})", f"{known.label()})")
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
