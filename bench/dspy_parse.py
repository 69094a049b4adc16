"""DSPy 3.4.1's side of the parse-failure comparison (runs in bench/.venv-dspy).

Two jobs, both for `parse_failures.py`:

- `parse`: stdin JSONL of `{"task": "trec"|"orders", "adapter": "chat"|"json", "text": ...}`
  (completions our prompts got from the model); stdout JSONL `{"ok": bool, "error": str}` from
  DSPy's own `ChatAdapter.parse` / `JSONAdapter.parse` on each text, with no LM call.
- `run`: DSPy's Predict end to end on a task's test rows (its own prompts, the same model and
  server, behind `counting_proxy.py`): calls, ChatAdapter -> JSONAdapter fallbacks (a second
  paid call each), predictions that still failed, and the task score. One JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="dspy-parse-cache-")

import dspy  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from dspy_signatures import QuestionType, ReadOrder  # noqa: E402
from dspy_trec import NO_ABORT, TALLY, _instrument_dspy  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


SIGNATURES: dict[str, type[dspy.Signature]] = {"trec": QuestionType, "orders": ReadOrder}


def parse_texts() -> None:
    adapters = {"chat": dspy.ChatAdapter(), "json": dspy.JSONAdapter()}
    for line in sys.stdin:
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            adapters[row["adapter"]].parse(SIGNATURES[row["task"]], row["text"])
            out = {"ok": True, "error": ""}
        except Exception as exc:  # noqa: BLE001 -- any failure is a parse failure here
            out = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        print(json.dumps(out), flush=True)


def _rows(task: str, limit: int) -> list[dspy.Example]:
    path = EXAMPLES / ("trec" if task == "trec" else "orders") / "data" / "test.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()][:limit]
    if task == "trec":
        return [
            dspy.Example(question=r["question"], answer=r["coarse"]).with_inputs("question")
            for r in rows
        ]
    return [dspy.Example(**r).with_inputs("message") for r in rows]


def _score(task: str, example: dspy.Example, pred: dspy.Prediction, trace: Any = None) -> float:
    if task == "trec":
        return float(str(getattr(pred, "answer", "")).strip() == example.answer)
    right = 0
    item = getattr(pred, "item", None)
    right += isinstance(item, str) and item.strip().lower() == example.item.lower()
    right += getattr(pred, "quantity", None) == example.quantity
    price = getattr(pred, "unit_price", None)
    right += isinstance(price, (int, float)) and abs(float(price) - example.unit_price) < 0.005
    right += getattr(pred, "express", None) == example.express
    return right / 4


def run_task(task: str, api_base: str, model: str, limit: int, threads: int) -> dict[str, Any]:
    _instrument_dspy()
    examples = _rows(task, limit)
    with CountingProxy(api_base) as proxy:
        lm = dspy.LM(
            f"openai/{model}", api_base=proxy.url, api_key="local", temperature=0, max_tokens=256
        )
        dspy.configure(lm=lm)
        TALLY.take()
        start = time.perf_counter()
        result = dspy.Evaluate(
            devset=examples,
            metric=lambda e, p, t=None: _score(task, e, p, t),
            num_threads=threads,
            max_errors=NO_ABORT,
            display_progress=False,
            provide_traceback=False,
        )(dspy.Predict(SIGNATURES[task]))
        wall = time.perf_counter() - start
        counts = proxy.snapshot()
    tally = TALLY.take()
    return {
        "system": "dspy",
        "dspy_version": dspy.__version__,
        "task": task,
        "n": len(examples),
        "score": round(sum(s for *_, s in result.results) / len(result.results), 4),
        "lm_calls": counts["chat"],
        "adapter_fallbacks": tally["adapter_fallbacks"],
        "parse_failures": tally["parse_failures"],
        "wall_s": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("job", choices=("parse", "run"))
    p.add_argument("--task", choices=tuple(SIGNATURES), default="orders")
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--threads", type=int, default=8)
    args = p.parse_args(argv)
    if args.job == "parse":
        parse_texts()
    else:
        row = run_task(args.task, args.api_base, args.model, args.limit, args.threads)
        print(json.dumps(row, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
