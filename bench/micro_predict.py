"""Per-call cost of the runtime's Predictor alone: render, an instant LM, parse (20k calls).

For comparing two versions of the runtime on the same machine in one sitting, e.g. the working
tree against a worktree of an earlier commit, run interleaved a few times:

    python3 bench/micro_predict.py runtime
    python3 bench/micro_predict.py /tmp/old-worktree/runtime

Prints the best of 7 rounds in microseconds per call. (The section `overhead` of run.py is the
figure against DSPy; this is a quick before/after check of a hot-path change.)
"""

from __future__ import annotations

import sys
import time
from typing import Any

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "runtime")

from typing import Literal  # noqa: E402

from promptcast_runtime import Completion, Field, Predictor, Signature  # noqa: E402

REPLY = Completion("[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]")


class InstantLM:
    def complete(self, messages: Any, **params: Any) -> Completion:
        return REPLY


def main() -> None:
    predictor: Predictor[str] = Predictor(
        Signature(
            "Classify.",
            (Field("question", str, "A question."),),
            (Field("answer", Literal["ABBR", "NUM", "LOC"], "Type."),),
        ),
        returns="answer",
        demos=({"question": "q", "answer": "NUM"},),
    )
    lm = InstantLM()
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(20000):
            predictor.forward({"question": "How many?"}, lm)
        best = min(best, (time.perf_counter() - start) / 20000)
    print(f"{sys.path[0]}: {best * 1e6:.2f} us/call")


if __name__ == "__main__":
    main()
