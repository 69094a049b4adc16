"""Metrics: built-ins, normalisation properties (hypothesis), user functions, the registry."""

from __future__ import annotations

import sys
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "runtime") not in sys.path:
    sys.path.insert(0, str(ROOT / "runtime"))

from promptcast.evaluate.data import Example  # noqa: E402
from promptcast.evaluate.metrics import (  # noqa: E402
    Metric,
    MetricError,
    Score,
    contains,
    exact_match,
    f1,
    get_metric,
    metric_names,
    normalize_text,
    numeric,
    parse_number,
    register_metric,
    to_score,
    token_f1,
)


def ex(label: Any, **extra: Any) -> Example:
    return Example({"q": "?", "answer": label, **extra}, "d.jsonl", 1, ("q",), ("answer",))


@pytest.mark.parametrize(
    ("expected", "predicted", "value"),
    [
        ("LOC", "loc", 1.0),
        ("LOC", "  LOC.  ", 1.0),
        ("LOC", '"LOC"', 1.0),
        ("LOC", "\u201cLoc\u201d!", 1.0),
        ("New York", "new   york", 1.0),
        ("LOC", "LOCATION", 0.0),
        (8, "8", 1.0),
        (True, "True", 1.0),
        (["Paris", "paris, france"], "Paris, France.", 1.0),
        (["a", "b"], ["A", "b."], 1.0),
        (["a", "b"], ["a"], 0.0),
    ],
)
def test_exact_match(expected: Any, predicted: Any, value: float) -> None:
    assert exact_match(ex(expected), predicted).value == value


def test_exact_match_feedback_and_enum() -> None:
    score = exact_match(ex("LOC"), "HUM")
    assert score == Score(0.0, "expected exactly 'LOC', got 'HUM'")
    assert exact_match(ex("LOC"), "LOC").feedback is None

    class Kind(Enum):
        LOC = "LOC"

    assert exact_match(ex("loc"), Kind.LOC).value == 1.0


def test_contains() -> None:
    assert contains(ex("Paris"), "The answer is PARIS.").value == 1.0
    assert contains(ex("Paris"), "London").value == 0.0
    assert contains(ex(""), "").value == 1.0
    assert contains(ex(""), "x").value == 0.0


def test_f1() -> None:
    assert f1(ex("the cat sat"), "cat sat").value == 1.0  # articles dropped
    assert f1(ex("cat sat on mat"), "cat sat").value == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert f1(ex("dog"), "cat").value == 0.0
    assert token_f1("", "") == 1.0 and token_f1("a cat", "") == 0.0


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("42", 42.0),
        ("$1,234.50", 1234.5),
        ("€ 1,000", 1000.0),
        ("-3", -3.0),
        ("\u22127", -7.0),
        ("The answer is 18.", 18.0),
        ("first 3 then 5", 5.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        (7, 7.0),
        (2.5, 2.5),
        ("no digits", None),
        (True, None),
        (None, None),
    ],
)
def test_parse_number(text: Any, number: float | None) -> None:
    assert parse_number(text) == number


def test_numeric() -> None:
    assert numeric(ex("1,000"), 1000).value == 1.0
    assert numeric(ex(18), "The total is $18.00").value == 1.0
    assert numeric(ex(18), "17").value == 0.0
    assert numeric(ex(18), "eighteen").value == 0.0


class Pair(NamedTuple):
    city: str
    country: str


def test_multi_output_averages_fields() -> None:
    example = Example(
        {"q": "?", "city": "Paris", "country": "France"}, "d", 3, ("q",), ("city", "country")
    )
    score = exact_match(example, Pair("paris", "Germany"))
    assert score.value == 0.5
    assert score.feedback == "country: expected exactly 'France', got 'Germany'"
    assert exact_match(example, {"city": "Paris", "country": "France"}).value == 1.0


def test_unbound_example_uses_label_column_or_fails() -> None:
    assert exact_match(Example({"label": "x"}), "X").value == 1.0
    with pytest.raises(MetricError, match="no expected output"):
        exact_match(Example({"q": "x"}), "X")


# --- properties ------------------------------------------------------------------------------

TEXT = st.text(max_size=40)
WORDS = st.text(
    alphabet=st.characters(categories=("Ll", "Lu", "Lt", "Nd")), min_size=1, max_size=30
)
JUNK = st.text(alphabet=" \t\n.,!?;:\"'`\u201c\u201d\u2018\u2019()[]-", max_size=5)


@given(TEXT)
def test_exact_match_is_reflexive(text: str) -> None:
    assert exact_match(ex(text), text).value == 1.0


@given(
    WORDS,
    JUNK,
    JUNK,
    st.sampled_from([str.upper, str.lower, str.title, str.swapcase, str.casefold]),
)
def test_exact_match_is_normalization_invariant(
    word: str, left: str, right: str, case: Any
) -> None:
    assert exact_match(ex(word), left + case(word) + right).value == 1.0
    assert normalize_text(left + word + right) == normalize_text(word)


@given(TEXT)
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize_text(normalize_text(text)) == normalize_text(text)


@given(TEXT, TEXT)
def test_f1_in_unit_interval_and_symmetric(a: str, b: str) -> None:
    value = token_f1(a, b)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(token_f1(b, a))


@given(TEXT)
def test_f1_is_reflexive(text: str) -> None:
    assert token_f1(text, text) == 1.0


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_numeric_reads_formatted_integers(n: int) -> None:
    assert parse_number(f"{n:,}") == float(n)
    assert numeric(ex(n), f"Total: ${n:,}").value == 1.0


# --- user functions and registry -------------------------------------------------------------

USER_METRICS = """
def as_float(example, prediction):
    return 0.25

def as_bool(example, prediction):
    return prediction == example.answer

def with_feedback(example, prediction):
    return (0.0, "say " + str(example.answer))

class _Result:
    score = 1
    feedback = "fine"

def dspy_style(example, prediction, trace=None):
    return _Result()

def out_of_range(example, prediction):
    return 3.0

def not_a_number(example, prediction):
    return "good"

def three_args(example, prediction, extra):
    return 1.0

NOT_CALLABLE = 3
"""


@pytest.fixture()
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_metrics_mod.py").write_text(textwrap.dedent(USER_METRICS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_metrics_mod"


def test_user_metrics_all_return_forms(user_module: str) -> None:
    e = ex("Paris")
    assert get_metric(f"{user_module}:as_float")(e, "x") == Score(0.25)
    assert get_metric(f"{user_module}:as_bool")(e, "Paris") == Score(1.0)
    assert get_metric(f"{user_module}:as_bool")(e, "Rome") == Score(0.0)
    assert get_metric(f"{user_module}:with_feedback")(e, "x") == Score(0.0, "say Paris")
    assert get_metric(f"{user_module}:dspy_style")(e, "x") == Score(1.0, "fine")
    assert get_metric(f"{user_module}:as_float").name == f"{user_module}:as_float"


def test_user_metric_bad_returns(user_module: str) -> None:
    with pytest.raises(MetricError, match="between 0 and 1"):
        get_metric(f"{user_module}:out_of_range")(ex("a"), "a")
    with pytest.raises(MetricError, match="expected a float, a bool or"):
        get_metric(f"{user_module}:not_a_number")(ex("a"), "a")


def test_user_metric_load_errors(user_module: str) -> None:
    with pytest.raises(MetricError, match="cannot import metric module"):
        get_metric("no_such_module_xyz:f")
    with pytest.raises(MetricError, match="has no 'missing'"):
        get_metric(f"{user_module}:missing")
    with pytest.raises(MetricError, match="not callable"):
        get_metric(f"{user_module}:NOT_CALLABLE")
    with pytest.raises(MetricError, match=r"must accept \(example, prediction\)"):
        get_metric(f"{user_module}:three_args")
    with pytest.raises(MetricError, match="module:function"):
        get_metric(":f")


def test_registry_lookup_and_unknown_name() -> None:
    assert {"exact_match", "contains", "f1", "numeric"} <= set(metric_names())
    assert get_metric("exact_match").fn is exact_match
    with pytest.raises(MetricError) as info:
        get_metric("exact")
    assert "contains, exact_match, f1, numeric" in str(info.value)
    register_metric("always_one", lambda e, p: 1.0)
    assert get_metric("always_one")(ex("a"), "b") == Score(1.0)
    metric = get_metric(lambda e, p: True)
    assert isinstance(metric, Metric) and metric(ex("a"), "b") == Score(1.0)
    with pytest.raises(ValueError):
        register_metric("a:b", lambda e, p: 1.0)


def test_to_score_forms() -> None:
    assert to_score(True) == Score(1.0)
    assert to_score(0) == Score(0.0)
    assert to_score({"score": 0.5, "feedback": "half"}) == Score(0.5, "half")
    assert to_score((1, "")) == Score(1.0, None)
    with pytest.raises(MetricError, match="tuple of 3"):
        to_score((1, "a", "b"))
    with pytest.raises(MetricError):
        to_score(float("nan"))
