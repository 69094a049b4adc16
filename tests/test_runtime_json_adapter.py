"""The JSON adapter: outputs as one JSON object, JSON mode requested, lenient parsing."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptcast_runtime import (
    Completion,
    Field,
    JSONAdapter,
    ParseError,
    Predictor,
    Signature,
    fields_from,
)


class Item(NamedTuple):
    name: str
    price: float


SIGNATURE = Signature(
    "Extract the purchase.",
    (Field("text", str, "A sentence."),),
    (
        Field("label", Literal["buy", "sell"], "What happened."),
        Field("count", int),
        Field("tags", list[str]),
    ),
)
ADAPTER = JSONAdapter()


@settings(max_examples=200)
@given(
    label=st.sampled_from(["buy", "sell"]),
    count=st.integers(-(10**12), 10**12),
    tags=st.lists(st.text(max_size=10).map(str.strip), max_size=4),
)
def test_demo_rendering_parses_back(label: str, count: int, tags: list[str]) -> None:
    values = {"label": label, "count": count, "tags": tags}
    assert ADAPTER.parse(SIGNATURE, ADAPTER.assistant_message(SIGNATURE, values)) == values


@pytest.mark.parametrize(
    "text",
    [
        '{"label": "buy", "count": 2, "tags": ["a"]}',
        'Sure! ```json\n{"label": "Buy", "count": "2", "tags": ["a"],}\n```',
        "{'LABEL': 'buy', 'count': 2, 'tags': ['a']} hope that helps",
    ],
)
def test_near_json_is_repaired(text: str) -> None:
    assert ADAPTER.parse(SIGNATURE, text) == {"label": "buy", "count": 2, "tags": ["a"]}


def test_missing_key_is_a_parse_error_naming_the_field() -> None:
    with pytest.raises(ParseError) as error:
        ADAPTER.parse(SIGNATURE, '{"label": "buy", "tags": []}')
    assert error.value.field == "count" and error.value.raw == '{"label": "buy", "tags": []}'


def test_messages_and_json_mode() -> None:
    sent: list[dict[str, Any]] = []

    class LM:
        def complete(self, messages: Any, **params: Any) -> Completion:
            sent.append({"messages": messages, "params": params})
            return Completion('{"name": "tea", "price": "$2.50"}')

    signature = Signature("Read the item.", (Field("text", str),), fields_from(Item, {}))
    predictor: Predictor[Item] = Predictor(
        signature, returns=Item, adapter="json", lm_params={"temperature": 0}
    )
    assert predictor.forward({"text": "tea for 2.50"}, LM()).value == Item("tea", 2.5)
    params = sent[0]["params"]
    assert params == {"response_format": {"type": "json_object"}, "temperature": 0}
    system = sent[0]["messages"][0]["content"]
    assert '"name": {name}' in system and "JSON object" in system
