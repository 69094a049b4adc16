"""Per-call overhead worker, promptcast side: generated code calling an instant in-process LM.

Run by `section_overhead.py` with the project's interpreter; prints one JSON object. The built
trees (TREC Predict and its chain-of-thought twin, `--vendor-runtime`) go first on sys.path, so
the generated modules import the vendored runtime exactly as a deployment would.

    python bench/overhead_promptcast.py --predict-tree OUT1 --cot-tree OUT2 [--calls N --reps R]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from answers import AnswerTable, questions
from call_timing import rss_kib, time_calls


class TableLM:
    """An LM answering instantly from the shared table (promptcast's LM protocol)."""

    def __init__(self, reasoning: bool) -> None:
        self.table = AnswerTable(reasoning)

    def complete(self, messages: Sequence[dict[str, str]], **params: Any) -> str:
        return self.table(messages[-1]["content"])


def load(tree: str, module: str) -> Callable[..., Any]:
    """The generated `question_type` from one built tree, with that tree's vendored runtime."""
    sys.path.insert(0, tree)
    for name in [m for m in sys.modules if m.split(".")[0] in ("promptcast_runtime", "triage")]:
        del sys.modules[name]
    mod = importlib.import_module(module)
    runtime = sys.modules["promptcast_runtime"]
    if not str(runtime.__file__).startswith(tree):
        raise SystemExit(f"runtime not vendored: {runtime.__file__} is outside {tree}")
    return mod.question_type  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--predict-tree", required=True)
    parser.add_argument("--cot-tree", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rss-calls", type=int, default=10_000)
    args = parser.parse_args()
    qs = questions()
    out: dict[str, Any] = {"system": "promptcast"}
    predict = load(args.predict_tree, "triage.classify")
    runtime = sys.modules["promptcast_runtime"]
    expected = AnswerTable().replies
    with runtime.using(TableLM(reasoning=False)):
        assert predict(question=qs[0]) in expected[qs[0]]  # the table answered, and it parsed
        rss_before = rss_half = rss_kib()  # --rss-calls 0 (or 1): no half-way reading
        for i in range(args.rss_calls):  # also the warm-up for the timed runs
            predict(question=qs[i % len(qs)])
            if i + 1 == args.rss_calls // 2:
                rss_half = rss_kib()
        rss_after = rss_kib()
        out["predict_us"] = time_calls(predict, qs, args.calls, args.reps)
    out["rss_kib"] = {"start": rss_before, "half": rss_half, "end": rss_after}
    out["rss_calls"] = args.rss_calls
    cot = load(args.cot_tree, "triage_cot.classify")
    runtime = sys.modules["promptcast_runtime"]
    with runtime.using(TableLM(reasoning=True)):
        assert cot(question=qs[0]) in expected[qs[0]]
        for i in range(args.calls):
            cot(question=qs[i % len(qs)])
        out["cot_us"] = time_calls(cot, qs, args.calls, args.reps)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
