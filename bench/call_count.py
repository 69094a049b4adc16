"""Python function calls per parse-and-call of a compiled step (cProfile), independent of load.

The timed overhead section is noisy on a shared 2-core machine; the number of calls a
`Predictor.forward` makes against a fixed completion is not. Usage: `.venv/bin/python
bench/call_count.py` (prints calls per Predict and per chain-of-thought call).
"""

from __future__ import annotations

import cProfile
import pstats
from typing import Any, Literal

from promptcast_runtime import REASONING, Completion, Field, Predictor, Signature

LABELS = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


class FixedLM:
    def __init__(self, text: str) -> None:
        self.text = text

    def complete(self, messages: Any, **params: Any) -> Completion:
        return Completion(self.text, finish_reason="stop")


def calls_per_forward(predictor: Predictor[Any], lm: FixedLM, n: int = 100) -> float:
    inputs = {"question": "How far is it?"}
    predictor.forward(inputs, lm)  # warm: the prefix is rendered once per step
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(n):
        predictor.forward(inputs, lm)
    profile.disable()
    return pstats.Stats(profile).total_calls / n  # type: ignore[attr-defined,no-any-return]


def main() -> None:
    question = (Field("question", str),)
    predict: Predictor[Any] = Predictor(
        Signature("Classify.", question, (Field("answer", LABELS),)), returns="answer"
    )
    cot: Predictor[Any] = Predictor(
        Signature("Count.", question, (REASONING, Field("answer", int))), returns="answer"
    )
    label = FixedLM("[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]")
    count = FixedLM(
        "[[ ## reasoning ## ]]\nThere are 3 apples and 4 pears, so 7.\n\n"
        "[[ ## answer ## ]]\n7\n\n[[ ## completed ## ]]"
    )
    print(f"predict: {calls_per_forward(predict, label):.0f} calls per forward")
    print(f"chain_of_thought: {calls_per_forward(cot, count):.0f} calls per forward")


if __name__ == "__main__":
    main()
