"""`exact_match` on structured outputs: typed predictions (pydantic models, dataclasses,
NamedTuples, TypedDicts, Enums, nested in lists, dicts and Optionals) against the plain JSON a
dataset holds. Before, a list of nested pydantic models never matched (dicts vs instances)."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any, NamedTuple, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from promptcast.evaluate.data import Example
from promptcast.evaluate.metrics import MetricError, contains, exact_match


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Part(BaseModel):
    name: str
    qty: float
    color: Color


class Item(BaseModel):
    sku: str
    parts: list[Part]
    note: str | None = None


@dataclasses.dataclass
class Box:
    label: str
    size: Size
    items: list[Item]


class Point(NamedTuple):
    x: int
    y: float


class Tagged(TypedDict):
    tag: str
    points: list[Point]


def ex(label: Any) -> Example:
    return Example({"q": "?", "answer": label}, "d.jsonl", 1, ("q",), ("answer",))


def score(label: Any, prediction: Any) -> float:
    """The label as it comes back from a JSONL file, against the typed prediction."""
    return exact_match(ex(json.loads(json.dumps(label))), prediction).value


ITEMS = [
    {"sku": "A1", "parts": [{"name": "bolt", "qty": 4, "color": "red"}], "note": None},
    {"sku": "B2", "parts": [], "note": "fragile"},
]


def test_a_list_of_nested_pydantic_models_matches_its_json() -> None:
    predicted = [Item.model_validate(item) for item in ITEMS]
    assert score(ITEMS, predicted) == 1.0
    wrong = json.loads(json.dumps(ITEMS))
    wrong[0]["parts"][0]["color"] = "green"
    assert score(wrong, predicted) == 0.0
    assert score(ITEMS[:1], predicted) == 0.0  # one item short


def test_a_single_nested_model_and_its_optional_fields() -> None:
    item = Item.model_validate(ITEMS[0])
    assert score(ITEMS[0], item) == 1.0
    assert score({k: v for k, v in ITEMS[0].items() if k != "note"}, item) == 1.0  # None
    assert score({**ITEMS[0], "note": "x"}, item) == 0.0
    assert score(None, None) == 1.0


def test_dataclasses_enums_and_int_enums_nested() -> None:
    box = Box("crate", Size.LARGE, [Item.model_validate(i) for i in ITEMS])
    label = {"label": "Crate", "size": 2, "items": ITEMS}
    assert score(label, box) == 1.0
    assert score([label, label], [box, box]) == 1.0
    assert score({**label, "size": 1}, box) == 0.0
    assert score(["red", "green"], [Color.RED, Color.GREEN]) == 1.0
    assert score({"a": ["red"]}, {"a": [Color.RED]}) == 1.0
    assert score({"a": ["red"]}, {"a": [Color.GREEN]}) == 0.0


def test_namedtuples_and_typeddicts_nested() -> None:
    tagged: Tagged = {"tag": "t", "points": [Point(1, 2.5), Point(3, 4.0)]}
    assert score({"tag": "T", "points": [{"x": 1, "y": 2.5}, {"x": 3, "y": 4}]}, tagged) == 1.0
    assert score({"tag": "t", "points": [{"x": 1, "y": 2.5}]}, tagged) == 0.0
    assert score({"x": 1, "y": 2.5}, Point(1, 2.5)) == 1.0
    assert score([1, 2.5], Point(1, 2.5)) == 1.0  # a NamedTuple labeled positionally
    assert score([1, 3], Point(1, 2.5)) == 0.0
    assert score([[1, 2.5]], [Point(1, 2.5)]) == 0.0  # lists of NamedTuples are by field


def test_numbers_compare_by_value_where_one_side_is_a_number() -> None:
    assert score(3, 3.0) == 1.0  # an integer label for a float output
    assert score([3, 4], [3.0, 4.0]) == 1.0
    assert score(8, "8") == 1.0 and score(8, " 8. ") == 1.0  # as before
    assert score(3, 3.5) == 0.0 and score(3, "3 or 4") == 0.0
    assert score(True, 1) == 0.0  # a bool is not a number
    assert exact_match(ex(math.nan), math.nan).value == 1.0  # still reflexive


def test_structure_against_a_scalar_never_matches() -> None:
    assert score({"sku": "A1"}, "A1") == 0.0
    assert score("[]", []) == 0.0


def test_feedback_and_contains_read_the_data_not_the_class() -> None:
    item = Item.model_validate(ITEMS[1])
    assert contains(ex("fragile"), item).value == 1.0
    assert contains(ex("Item"), item).value == 0.0  # the class name is not the answer


def test_nesting_too_deep_is_a_metric_error_not_a_crash() -> None:
    deep: Any = "x"
    for _ in range(500):
        deep = [deep]
    with pytest.raises(MetricError, match="nested"):
        exact_match(ex([1]), deep)


# --- any nested structure matches the JSON it is read from, and only that -------------------

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.sampled_from(["a", "B c", "é", "42"])
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "v", "w"]), inner, max_size=3),
    ),
    max_leaves=12,
)
_parts = st.builds(
    dict,
    name=st.sampled_from(["bolt", "nut", "Gear"]),
    qty=st.one_of(st.integers(0, 9), st.floats(0, 9, allow_nan=False).map(lambda f: round(f, 2))),
    color=st.sampled_from(["red", "green"]),
)
_items = st.builds(
    dict,
    sku=st.text("AB12", min_size=1, max_size=3),
    parts=st.lists(_parts, max_size=3),
    note=st.one_of(st.none(), st.sampled_from(["fragile", "x y"])),
)


@given(st.lists(_items, max_size=3), st.integers(0, 8))
def test_typed_items_match_their_json_and_a_changed_leaf_does_not(
    items: list[dict[str, Any]], which: int
) -> None:
    predicted = [Item.model_validate(i) for i in items]
    assert score(items, predicted) == 1.0
    parts = [(i, j) for i, item in enumerate(items) for j in range(len(item["parts"]))]
    if parts:
        i, j = parts[which % len(parts)]
        changed = json.loads(json.dumps(items))
        part = changed[i]["parts"][j]
        part["color"] = "green" if part["color"] == "red" else "red"
        assert score(changed, predicted) == 0.0


@given(_json)
def test_plain_json_matches_itself(value: Any) -> None:
    assert score(value, json.loads(json.dumps(value))) == 1.0
