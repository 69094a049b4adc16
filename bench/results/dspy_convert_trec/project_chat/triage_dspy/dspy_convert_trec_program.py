# Converted from dspy_convert_trec_program.py by `promptcast from-dspy` with its saved state dspy_state.json.
# The optimized instructions and demos are in promptcast.lock.json (adapter "dspy": DSPy 3.4.1's prompt format).
"""A DSPy 3.4.1 program: the TREC question classifier, as a DSPy user writes it.

`bench/dspy_convert_trec.py` optimizes it with DSPy's BootstrapFewShot (in bench/.venv-dspy),
saves its state, converts source + state with `promptcast from-dspy`, builds the result and
scores both on the same test rows. The same task, instruction and types as examples/trec.
"""

from types import SimpleNamespace
from typing import Literal, NamedTuple

import promptcast as pc

Label = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


class ClassifyOutput(NamedTuple):
    answer: Label


@pc.predict(adapter="dspy")
def classify(question: str) -> ClassifyOutput:
    """Classify the kind of answer a question asks for.

    Args:
        question: A question in English.

    Returns:
        answer: The coarse TREC answer type.
    """


@pc.program
def triage(question: str):
    prediction = classify(question=question)
    return SimpleNamespace(answer=prediction.answer)
