"""Parse failures on real model output: lenient (ours) vs strict vs DSPy 3.4.1's adapters.

Why: small models break output formats; promptcast repairs near-valid output in the runtime
instead of paying for a second call. This measures how often that matters, on what the local
qwen0.5b actually writes for the TREC example and the orders extraction example:

1. Zero-shot calls of each example's function on its test rows, with the chat adapter and with
   the JSON adapter, through the engine LM (the prompts that ship; one call per row). The
   completions are cached in `bench/.cache/parse_failures.sqlite` and written to
   `results/raw/<task>_<adapter>_zero_shot.jsonl`, so a rerun parses without calling again.
   `results/raw/trec_qwen0.5b_chat.jsonl` (few-shot completions kept from the optimizer runs)
   is parsed too.
2. Every completion is parsed three ways, with no LM call: our runtime (lenient), the strict
   parser in `strict_parse.py` (the format exactly as asked, no repair), and DSPy's own
   `ChatAdapter.parse` / `JSONAdapter.parse` (`dspy_parse.py parse`, in bench/.venv-dspy).
3. DSPy end to end (`dspy_parse.py run`): its Predict with its own prompts on the same rows,
   model and server, counting ChatAdapter -> JSONAdapter fallbacks (second paid calls) and the
   predictions that still failed.

    python3 bench/parse_failures.py [--api-base URL] [--dspy-run trec,orders]

Writes `results/parse_failures.md` and `.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import BENCH, RESULTS, ROOT, dspy_python

RAW = RESULTS / "raw"
CACHE = BENCH / ".cache" / "parse_failures.sqlite"
TASKS = {
    "trec": ("trec", "triage.classify", "question_type", 100),
    "orders": ("orders", "orders.extract", "read_order", 40),
}
ADAPTERS = ("chat", "json")


def zero_shot_predictors() -> dict[tuple[str, str], Any]:
    """(task, adapter) -> the runtime Predictor of the example's function, zero-shot state."""
    import importlib

    from promptcast.ir import FunctionState
    from promptcast.lockfile import FORMAT_1_LM_PARAMS

    predictors = {}
    for task, (folder, module, name, _) in TASKS.items():
        sys.path.insert(0, str(ROOT / "examples" / folder))
        function = getattr(importlib.import_module(module), name)
        # The sampling these completions were first collected with (greedy, 256 tokens), so
        # reruns hit the cache and stay comparable with the committed results.
        zero_shot = FunctionState.zero_shot(function.signature, FORMAT_1_LM_PARAMS)
        for adapter in ADAPTERS:
            state = dataclasses.replace(zero_shot, adapter=adapter)
            predictors[(task, adapter)] = function.predictor(state)
    return predictors


def collect(api_base: str, model: str, threads: int) -> list[dict[str, Any]]:
    """Zero-shot completions per task and adapter (cached), one call per row.

    Each call is the Predictor's own `forward` -- the request that ships -- and the completion
    text is kept whether it parsed or not (a ParseError carries it).
    """
    from promptcast.engine import LiteLLMLM, LMCache
    from promptcast_runtime.errors import ParseError

    CACHE.parent.mkdir(parents=True, exist_ok=True)
    lm = LiteLLMLM(f"openai/{model}", api_base=api_base, cache=LMCache(CACHE))

    def text_of(predictor: Any, values: dict[str, Any]) -> str:
        try:
            return str(predictor.forward(values, lm).completion.text)
        except ParseError as exc:
            return exc.raw

    rows: list[dict[str, Any]] = []
    for (task, adapter), predictor in zero_shot_predictors().items():
        folder, _, _, limit = TASKS[task]
        data_path = ROOT / "examples" / folder / "data" / "test.jsonl"
        data = [json.loads(x) for x in data_path.read_text().splitlines() if x.strip()][:limit]
        inputs = [{f.name: r[f.name] for f in predictor.signature.inputs} for r in data]
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            texts = list(pool.map(lambda values, p=predictor: text_of(p, values), inputs))
        seconds = time.perf_counter() - start
        part = [
            {"task": task, "adapter": adapter, "row": i, "expected": r, "text": t}
            for i, (r, t) in enumerate(zip(data, texts, strict=True))
        ]
        RAW.mkdir(parents=True, exist_ok=True)
        out = RAW / f"{task}_{adapter}_zero_shot.jsonl"
        out.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in part))
        print(f"{task}/{adapter}: {len(part)} completions in {seconds:.0f} s", file=sys.stderr)
        rows += part
    return rows


def few_shot_rows() -> list[dict[str, Any]]:
    path = RAW / "trec_qwen0.5b_chat.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [
        {"task": "trec", "adapter": "chat", "text": r["text"], "few_shot": True}
        for r in rows
        if r["demos"] > 0
    ]


def parse_all(rows: list[dict[str, Any]]) -> None:
    """Adds `lenient`, `strict`, `dspy` (True: parsed) and our `value` to every row."""
    from strict_parse import strict_chat, strict_json

    from promptcast_runtime.errors import ParseError

    predictors = zero_shot_predictors()
    for row in rows:
        predictor = predictors[(row["task"], row["adapter"])]
        outputs = {f.name: f.annotation for f in predictor.signature.outputs}
        try:
            row["value"] = predictor.build(predictor.parse(row["text"]))
            row["lenient"] = True
        except ParseError as exc:
            row["lenient"], row["value"], row["why"] = False, None, str(exc).splitlines()[0]
        try:
            (strict_chat if row["adapter"] == "chat" else strict_json)(outputs, row["text"])
            row["strict"] = True
        except ValueError:
            row["strict"] = False
    feed = "".join(json.dumps({k: r[k] for k in ("task", "adapter", "text")}) + "\n" for r in rows)
    proc = subprocess.run(
        [dspy_python(), str(BENCH / "dspy_parse.py"), "parse"],
        input=feed,
        capture_output=True,
        text=True,
        cwd=BENCH,
        check=True,
    )
    verdicts = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    assert len(verdicts) == len(rows), proc.stderr[-2000:]
    for row, verdict in zip(rows, verdicts, strict=True):
        row["dspy"] = verdict["ok"]


def score(row: dict[str, Any]) -> float:
    """The example's own metric on our (lenient) value; 0 for a parse failure.

    (`zero_shot_predictors` has put the examples on sys.path.)
    """
    if row["value"] is None:
        return 0.0
    if row["task"] == "trec":
        return float(row["value"] == row["expected"]["coarse"])
    from orders.metrics import order_fields

    return order_fields(row["expected"], row["value"])[0]


def earlier_dspy_runs(done: set[str]) -> list[dict[str, Any]]:
    """DSPy rows not rerun now: from the last parse_failures.json, and TREC's zero-shot
    Predict from the quality benchmark (`quality_*.jsonl`, the same 100 test rows)."""
    rows: dict[str, dict[str, Any]] = {}
    previous = RESULTS / "parse_failures.json"
    if previous.exists():
        for row in json.loads(previous.read_text()).get("dspy_end_to_end", []):
            rows[row["task"]] = row
    for path in sorted(RESULTS.glob("quality_*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("system") == "dspy" and row.get("optimizer") == "predict":
                rows["trec"] = {
                    "task": "trec",
                    "n": row["n_test"],
                    "score": row["test_accuracy"],
                    "lm_calls": row["lm_calls"],
                    "adapter_fallbacks": row["adapter_fallbacks"],
                    "parse_failures": row["parse_failures"],
                    "source": path.name,
                }
    return [row for task, row in sorted(rows.items()) if task not in done]


def summarize(rows: list[dict[str, Any]], dspy_runs: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        label = f"{row['task']} {row['adapter']}" + (" few-shot" if row.get("few_shot") else "")
        groups.setdefault(label, []).append(row)
    table = []
    for label, part in groups.items():
        n = len(part)
        zero_shot = not part[0].get("few_shot")
        table.append(
            {
                "completions": label,
                "n": n,
                "lenient_failures": sum(not r["lenient"] for r in part),
                "strict_failures": sum(not r["strict"] for r in part),
                "dspy_adapter_failures": sum(not r["dspy"] for r in part),
                "score_lenient": round(sum(score(r) for r in part) / n, 4) if zero_shot else None,
                "lenient_reasons": sorted({r["why"] for r in part if not r["lenient"]})[:5],
            }
        )
    return {"parsed": table, "dspy_end_to_end": dspy_runs}


def markdown(summary: dict[str, Any], command: str) -> str:
    lines = [
        "# Parse failures on real qwen0.5b output",
        "",
        f"`{command}`. Each completion parsed with no LM call: our runtime (lenient), a strict",
        "parser (`strict_parse.py`: the format exactly as asked), DSPy 3.4.1's adapter parse.",
        "Zero-shot rows: one promptcast call per row (n calls, never a second one); few-shot",
        "rows: completions kept from the optimizer runs. Score: the example's metric on our",
        "lenient parse (a parse failure scores 0).",
        "",
        "| completions | n | lenient (ours) | strict | DSPy adapter | score (ours, lenient) |",
        "|---|---|---|---|---|---|",
    ]

    def pct(r: dict[str, Any], key: str) -> str:
        return f"{r[key]} ({100 * r[key] / r['n']:.0f}%)"

    for r in summary["parsed"]:
        sc = "" if r["score_lenient"] is None else f"{r['score_lenient']:.3f}"
        lines.append(
            f"| {r['completions']} | {r['n']} | {pct(r, 'lenient_failures')} | "
            f"{pct(r, 'strict_failures')} | {pct(r, 'dspy_adapter_failures')} | {sc} |"
        )
    if summary["dspy_end_to_end"]:
        lines += [
            "",
            "DSPy end to end (its own prompts, same rows/model/server):",
            "",
            "| task | n | LM calls | fallback 2nd calls | still failed | score |",
            "|---|---|---|---|---|---|",
        ]
        for d in summary["dspy_end_to_end"]:
            lines.append(
                f"| {d['task']} | {d['n']} | {d['lm_calls']} | {d['adapter_fallbacks']} | "
                f"{d['parse_failures']} | {d['score']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument(
        "--dspy-run",
        default="",
        help="tasks DSPy runs end to end now (comma list of trec,orders); the others are read"
        " from the last results and TREC's from the quality benchmark's `predict` row",
    )
    args = p.parse_args(argv)
    rows = collect(args.api_base, args.model, args.threads) + few_shot_rows()
    parse_all(rows)
    dspy_runs = []
    for task in [t for t in args.dspy_run.split(",") if t]:
        proc = subprocess.run(
            [
                dspy_python(), str(BENCH / "dspy_parse.py"), "run", "--task", task,
                "--limit", str(TASKS[task][3]), "--api-base", args.api_base, "--model", args.model,
            ],
            capture_output=True, text=True, cwd=BENCH, check=True,
        )  # fmt: skip
        dspy_runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    dspy_runs += earlier_dspy_runs({d["task"] for d in dspy_runs})
    summary = summarize(rows, dspy_runs)
    command = "python3 bench/parse_failures.py " + " ".join(argv or sys.argv[1:])
    (RESULTS / "parse_failures.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = markdown(summary, command.strip())
    (RESULTS / "parse_failures.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    project_python = ROOT / ".venv" / "bin" / "python"
    if Path(sys.prefix).resolve() != project_python.parent.parent.resolve():
        sys.exit(subprocess.call([str(project_python), __file__, *sys.argv[1:]]))
    sys.exit(main())
