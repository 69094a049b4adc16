"""A DSPy 3.4.1 program: the TREC question classifier, as a DSPy user writes it.

`bench/dspy_convert_trec.py` optimizes it with DSPy's BootstrapFewShot (in bench/.venv-dspy),
saves its state, converts source + state with `promptcast from-dspy`, builds the result and
scores both on the same test rows. The same task, instruction and types as examples/trec.
"""

from typing import Literal

import dspy

Label = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


class QuestionType(dspy.Signature):
    """Classify the kind of answer a question asks for."""

    question: str = dspy.InputField(desc="A question in English.")
    answer: Label = dspy.OutputField(desc="The coarse TREC answer type.")


class Triage(dspy.Module):
    def __init__(self):
        super().__init__()
        self.classify = dspy.Predict(QuestionType)

    def forward(self, question: str):
        prediction = self.classify(question=question)
        return dspy.Prediction(answer=prediction.answer)


if __name__ == "__main__":
    dspy.configure(
        lm=dspy.LM("openai/qwen0.5b", api_base="http://127.0.0.1:8765/v1", api_key="local")
    )
    print(Triage()(question="Who wrote Hamlet ?"))
