"""`frames.BatchUDF`, the block function the Ray and Spark adapters share, without either:
a pandas DataFrame or a dict of numpy columns in, the same kind out with `output` and `error`."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest

from promptcast_runtime import Completion
from promptcast_runtime.frames import BatchUDF


class EchoLM:
    """Answers `[[ ## answer ## ]]` with the review's last word; a plain sync LM."""

    def complete(self, messages: Any, **params: Any) -> Completion:
        text = messages[-1]["content"]
        if "broken" in text:
            return Completion("no idea")
        label = "negative" if "awful" in text else "positive"
        return Completion(f"[[ ## answer ## ]]\n{label}\n\n[[ ## completed ## ]]")


@pytest.fixture
def sentiment() -> Any:
    from promptcast_runtime import build_step

    step = build_step(
        {
            "api": 2,
            "step": "reviews.sentiment:sentiment",
            "kind": "predict",
            "instructions": "Say whether the review is positive or negative.",
            "inputs": {"text": "A review."},
            "outputs": {"answer": ""},
            "shape": "single",
            "demos": (),
            "adapter": "chat",
            "lm_params": {"max_tokens": 64, "temperature": 0.0},
            "options": {"parse_retries": 0},
        },
        inputs={"text": str},
        returns=Literal["positive", "negative"],
    )

    def sentiment(text: str) -> str:
        return str(step(text=text))

    return sentiment


def test_a_dataframe_block_gains_output_and_error_and_keeps_its_columns(sentiment: Any) -> None:
    block = pd.DataFrame({"id": [7, 8, 9], "text": ["great food", "awful food", "broken"]})
    out = BatchUDF(sentiment, lm=EchoLM(), concurrency=2)(block)
    assert list(out.columns) == ["id", "text", "output", "error"]
    assert list(out["id"]) == [7, 8, 9]  # `id` rode along: only `text` reached the function
    assert list(out["output"])[:2] == ["positive", "negative"] and out["output"][2] is None
    assert out["error"][0] is None and out["error"][2].startswith("ParseError")


def test_a_numpy_block_comes_back_as_numpy_columns(sentiment: Any) -> None:
    block = {"id": np.array([1, 2]), "text": np.array(["great", "awful"])}
    out = BatchUDF(sentiment, lm=EchoLM())(block)
    assert isinstance(out["output"], np.ndarray) and list(out["output"]) == ["positive", "negative"]
    assert list(out["error"]) == [None, None] and list(out["id"]) == [1, 2]


def test_a_missing_input_column_is_named(sentiment: Any) -> None:
    with pytest.raises(KeyError, match="no column"):
        BatchUDF(sentiment, inputs=["question"], lm=EchoLM())(pd.DataFrame({"text": ["x"]}))


def test_a_function_taking_kwargs_gets_every_column() -> None:
    def both(**row: Any) -> str:
        return f"{row['a']}-{row['b']}"

    out = BatchUDF(both)(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert list(out["output"]) == ["1-x", "2-y"]
