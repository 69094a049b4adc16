"""DSPy 3.4.1's side of the multi-stage and ReAct comparison (runs in bench/.venv-dspy).

The same programs as `examples/orders` (`route`: read the order, then pick the shipping tier,
two Predicts joined by Python) and `examples/agent` (`answer`: dspy.ReAct over the same two
tool functions, imported from the example), the same data, metric, model and server; zero-shot
and BootstrapFewShot (2 bootstrapped demos, 0 labeled: only the final output is labeled).
One JSON object per (task, optimizer) on stdout; LM calls counted at the HTTP level.

    bench/.venv-dspy/bin/python bench/dspy_programs.py --task route --limit 40
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
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="dspy-programs-cache-")

import dspy  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from dspy_signatures import Answer, ReadOrder, ShippingTier  # noqa: E402
from dspy_trec import NO_ABORT, TALLY, _instrument_dspy  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES / "agent"))

from planets.tools import calculate, lookup  # noqa: E402


class Route(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.read = dspy.Predict(ReadOrder)
        self.tier = dspy.Predict(ShippingTier)

    def forward(self, message: str) -> dspy.Prediction:
        order = self.read(message=message)
        fields = {k: getattr(order, k) for k in ("item", "quantity", "unit_price", "express")}
        return self.tier(order=fields)


def load(task: str, split: str, limit: int) -> list[dspy.Example]:
    folder = "orders" if task == "route" else "agent"
    path = EXAMPLES / folder / "data" / f"{split}.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()][:limit]
    if task == "route":
        return [
            dspy.Example(message=r["message"], answer=r["tier"]).with_inputs("message")
            for r in rows
        ]
    return [
        dspy.Example(question=r["question"], answer=r["answer"]).with_inputs("question")
        for r in rows
    ]


def metric(task: str) -> Any:
    def route(example: Any, pred: Any, trace: Any = None) -> float:
        return float(str(getattr(pred, "answer", "")).strip() == example.answer)

    def agent(example: Any, pred: Any, trace: Any = None) -> float:
        try:
            got = float(getattr(pred, "answer", "nan"))
        except (TypeError, ValueError):
            return 0.0
        expected = float(example.answer)
        return float(abs(got - expected) <= 0.01 * max(1.0, abs(expected)))

    return route if task == "route" else agent


def program(task: str) -> dspy.Module:
    return (
        Route() if task == "route" else dspy.ReAct(Answer, tools=[lookup, calculate], max_iters=5)
    )


def run(task: str, optimizer: str, args: argparse.Namespace) -> dict[str, Any]:
    score = metric(task)
    train, test = load(task, "train", 1000), load(task, "test", args.limit)
    with CountingProxy(args.api_base) as proxy:
        lm = dspy.LM(
            f"openai/{args.model}",
            api_base=proxy.url,
            api_key="local",
            temperature=0,
            max_tokens=256,
        )
        dspy.configure(lm=lm)
        TALLY.take()
        start = time.perf_counter()
        student = program(task)
        if optimizer == "bootstrap":
            opt = dspy.BootstrapFewShot(
                metric=score, max_bootstrapped_demos=2, max_labeled_demos=0, max_errors=NO_ABORT
            )
            student = opt.compile(student, trainset=train)
        compiled = time.perf_counter()
        compile_calls = proxy.snapshot()["chat"]
        result = dspy.Evaluate(
            devset=test, metric=score, num_threads=args.threads, max_errors=NO_ABORT,
            display_progress=False, provide_traceback=False,
        )(student)  # fmt: skip
        end = time.perf_counter()
        calls = proxy.snapshot()["chat"]
    tally = TALLY.take()
    return {
        "system": "dspy",
        "dspy_version": dspy.__version__,
        "task": task,
        "optimizer": optimizer,
        "n_test": len(test),
        "test_score": round(sum(s for *_, s in result.results) / len(result.results), 4),
        "lm_calls": calls,
        "compile_lm_calls": compile_calls,
        "adapter_fallbacks": tally["adapter_fallbacks"],
        "parse_failures": tally["parse_failures"],
        "compile_wall_s": round(compiled - start, 2),
        "wall_s": round(end - start, 2),
        "answers": [_answer(pred) for _, pred, _ in result.results],
    }


def _answer(pred: Any) -> dict[str, Any]:
    """What one test row came to: the final answer and, for ReAct, the tools it called --
    kept so a low score can be read (a miss by parsing, by arithmetic, or by giving up)."""
    trajectory = getattr(pred, "trajectory", None) or {}
    tools = [v for k, v in sorted(trajectory.items()) if k.startswith("tool_name_")]
    return {"answer": str(getattr(pred, "answer", None))[:200], "tools": tools}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--task", choices=("route", "agent"), required=True)
    p.add_argument("--only", default="predict,bootstrap")
    p.add_argument("--limit", type=int, default=1000, help="test rows")
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument("--threads", type=int, default=8)
    args = p.parse_args(argv)
    _instrument_dspy()
    for optimizer in [o for o in args.only.split(",") if o]:
        print(json.dumps(run(args.task, optimizer, args), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
