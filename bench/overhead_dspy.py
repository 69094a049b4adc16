"""Per-call overhead worker, DSPy side: `dspy.Predict` / `dspy.ChainOfThought` on DummyLM.

Run by `section_overhead.py` inside `bench/.venv-dspy`; prints one JSON object. The LM is DSPy's
own `DummyLM` (so the call goes through DSPy's normal LM path: callbacks, history, the
execution engine), with its answer lookup replaced by the same one-dict-lookup table the
promptcast worker uses (`answers.py`); DummyLM's stock dict mode scans every key with a
substring search, which would charge DSPy for our table's size. DSPy's cache is off (DummyLM
also never caches), the adapter is DSPy's default ChatAdapter, the signature matches the TREC
example field for field.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Literal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from answers import AnswerTable, questions  # noqa: E402
from call_timing import rss_kib, time_calls  # noqa: E402
from dspy.clients.engines.dummy_engine import AsyncDummyEngine, DummyEngine  # noqa: E402
from dspy.lm15 import Message, Response, TextPart, Usage  # noqa: E402
from dspy.utils.dummies import DummyLM  # noqa: E402


class QuestionType(dspy.Signature):
    """Classify the kind of answer a question asks for."""

    question: str = dspy.InputField(desc="A question in English.")
    answer: Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"] = dspy.OutputField(
        desc="The coarse TREC answer type."
    )


class _TableEngine(DummyEngine):
    """DummyLM's engine with its lookup replaced by one dict lookup on the question."""

    def __init__(self, owner: DummyLM, table: AnswerTable) -> None:
        super().__init__(owner)
        self.table = table

    def _complete_messages(self, messages: list[dict[str, Any]]) -> Response:
        text = self.table(messages[-1]["content"])
        return Response(
            id=None,
            model="dummy",
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=0, output_tokens=0, total_tokens=0),
        )


def table_lm(reasoning: bool) -> DummyLM:
    lm = DummyLM([])
    engine = _TableEngine(lm, AnswerTable(reasoning))
    lm._engine_spec = engine
    lm._async_engine_spec = AsyncDummyEngine(engine)
    return lm


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rss-calls", type=int, default=0, help="0: skip the RSS run")
    args = parser.parse_args()
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    qs = questions()
    out: dict[str, Any] = {"system": "dspy", "dspy_version": dspy.__version__}
    for name, module, reasoning in (
        ("predict", dspy.Predict(QuestionType), False),
        ("cot", dspy.ChainOfThought(QuestionType), True),
    ):
        lm = table_lm(reasoning)
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
            first = module(question=qs[0])
            assert first.answer == AnswerTable().replies[qs[0]].split("\n")[1], first
            for i in range(args.warmup):
                module(question=qs[i % len(qs)])
            out[f"{name}_us"] = time_calls(module, qs, args.calls, args.reps)
            if name == "predict" and args.rss_calls:
                rss_before = rss_kib()
                for i in range(args.rss_calls):
                    module(question=qs[i % len(qs)])
                    if i + 1 == args.rss_calls // 2:
                        rss_half = rss_kib()
                out["rss_kib"] = {"start": rss_before, "half": rss_half, "end": rss_kib()}
                out["rss_calls"] = args.rss_calls
                out["lm_history_len"] = len(lm.history)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
