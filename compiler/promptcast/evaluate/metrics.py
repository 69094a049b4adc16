"""Metrics: how well one prediction matches one example, as a `Score` in [0, 1] with feedback.

Built-ins (`exact_match`, `contains`, `f1`, `numeric`) compare the example's expected output(s)
with the prediction after normalisation, because a model writing `"LOC."` for `LOC` is right.
Users name their own as `module:function`; the function gets `(example, prediction)` and may
return a float, a bool, `(score, feedback)`, or anything with `.score` (and `.feedback`) as DSPy
metrics do. Every form is normalised to `Score(value, feedback)`: optimizers that learn from
feedback text (GEPA-style) read `feedback`, everything else reads `value`.

Multi-output targets: a built-in metric scores each expected output field against the
prediction's field of the same name (attribute, key or index) and averages.

Structured values (pydantic models, dataclasses, NamedTuples, TypedDicts, Enums, nested in lists,
dicts and Optionals) are compared as the plain data a dataset holds (`plain`): the expected side
comes from JSON, the predicted side is typed, and `exact_match` compares them field by field and
item by item, each scalar as above (numbers by value, so a label `3` matches a float `3.0`).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import json
import math
import os
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptcast.evaluate.data import DEFAULT_LABEL_COLUMN, Example

from ..errors import PromptcastError


class MetricError(PromptcastError, ValueError):
    """A metric that cannot be found, loaded, or returned something that is not a score."""


@dataclass(frozen=True)
class Score:
    """A score in [0, 1] and optional feedback text (why it is not 1, what would fix it)."""

    value: float
    feedback: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise MetricError(f"a score must be a number, got {type(self.value).__name__}")
        if math.isnan(self.value) or not 0.0 <= self.value <= 1.0:
            raise MetricError(f"a score must be between 0 and 1, got {self.value!r}")


MetricFn = Callable[[Example, Any], Any]


@dataclass(frozen=True)
class Metric:
    """A named metric; calling it returns a `Score` whatever the underlying function returns."""

    name: str
    fn: MetricFn

    def __call__(self, example: Example, prediction: Any) -> Score:
        return to_score(self.fn(example, prediction), where=self.name)


def to_score(result: Any, *, where: str = "metric") -> Score:
    """Normalise a metric's return value (float, bool, (score, feedback), Score, .score) to Score."""
    if isinstance(result, Score):
        return result
    feedback: Any = None
    value: Any = result
    if isinstance(result, tuple):
        if len(result) != 2:
            raise MetricError(
                f"{where} returned a tuple of {len(result)} items; expected (score, feedback)"
            )
        value, feedback = result
    elif not isinstance(result, (int, float)) and hasattr(result, "score"):
        value, feedback = result.score, getattr(result, "feedback", None)
    elif isinstance(result, Mapping) and "score" in result:
        value, feedback = result["score"], result.get("feedback")
    if isinstance(value, bool):
        value = 1.0 if value else 0.0
    if not isinstance(value, (int, float)):
        raise MetricError(
            f"{where} returned {type(value).__name__} {value!r:.80}; "
            "expected a float, a bool or (score, feedback)"
        )
    if feedback is not None and not isinstance(feedback, str):
        feedback = str(feedback)
    try:
        return Score(float(value), feedback or None)
    except MetricError as exc:
        raise MetricError(f"{where}: {exc}") from None


# --- normalisation ---------------------------------------------------------------------------

_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"


def _is_edge_junk(ch: str) -> bool:
    return ch.isspace() or ch in _QUOTES or unicodedata.category(ch).startswith("P")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    enum_value = getattr(value, "value", None)
    if enum_value is not None and type(value).__module__ != "builtins":
        return str(enum_value)
    if isinstance(value, (int, float)):
        return str(value)
    data = plain(value)
    if isinstance(data, (dict, list)):  # a structure as its data, not its class's repr
        return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    return _as_text(data) if data is not value else str(value)


MAX_DEPTH = 100
"""Structures nested deeper than this are not compared (a `MetricError`, never a crash)."""


def plain(value: Any, depth: int = 0) -> Any:
    """`value` as the plain data a dataset row holds: dicts, lists and scalars.

    Enums become their values; pydantic models, dataclasses and NamedTuples dicts of their
    fields; any other mapping a dict (keys as text); tuples and lists lists. Sets and objects
    of other classes are left as they are (compared as text).
    """
    if depth > MAX_DEPTH:
        raise MetricError(f"a value nested more than {MAX_DEPTH} levels deep cannot be compared")
    if isinstance(value, enum.Enum):
        return plain(value.value, depth + 1)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # NamedTuple
        return {k: plain(v, depth + 1) for k, v in value._asdict().items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, Mapping) and hasattr(value, "model_dump"):  # pydantic model
        return {name: plain(getattr(value, name), depth + 1) for name in model_fields}
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    return value


def normalize_text(value: Any) -> str:
    """Case-folded, NFKC, inner whitespace collapsed, surrounding whitespace/punctuation/quotes off.

    Case is folded via upper case first so every case variant of a word gets one key (plain
    `casefold` keeps Turkish `ı` apart from its own upper case `I`).
    """
    text = unicodedata.normalize("NFKC", _as_text(value))
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text.upper()).casefold())
    start, end = 0, len(text)
    while start < end and _is_edge_junk(text[start]):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]):
        end -= 1
    return " ".join(text[start:end].split())


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def f1_tokens(value: Any) -> list[str]:
    """SQuAD-style tokens: lower case, punctuation and articles removed, split on whitespace."""
    text = unicodedata.normalize("NFKC", _as_text(value)).casefold()
    text = "".join(
        " " if (ch in string.punctuation or unicodedata.category(ch).startswith("P")) else ch
        for ch in text
    )
    return _ARTICLES.sub(" ", text).split()


_NUMBER = re.compile(r"[-+−]?(?:\d[\d,_]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(value: Any) -> float | None:
    """A number from an int/float or from text like `"$1,234.50"`, `"-3"`, `"answer: 42."`.

    Commas, underscores, currency signs and spaces inside the number are ignored; when the text
    holds several numbers the last one is taken (models state the answer last). None if none.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = unicodedata.normalize("NFKC", _as_text(value))
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    token = matches[-1].replace(",", "").replace("_", "").replace("−", "-")
    try:
        number = float(token)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# --- comparing expected with predicted -------------------------------------------------------


def _field_of(prediction: Any, name: str) -> Any:
    if isinstance(prediction, Mapping):
        return prediction.get(name)
    return getattr(prediction, name, None)


def _pairs(example: Example, prediction: Any) -> list[tuple[str, Any, Any]]:
    """(field, expected, predicted) for every expected output of `example`."""
    names = example.output_names
    if len(names) > 1:
        return [(n, example.data.get(n), _field_of(prediction, n)) for n in names]
    if len(names) == 1:
        return [(names[0], example.data.get(names[0]), prediction)]
    if DEFAULT_LABEL_COLUMN in example.data:
        return [(DEFAULT_LABEL_COLUMN, example.data[DEFAULT_LABEL_COLUMN], prediction)]
    raise MetricError(
        f"{example.where}: example has no expected output to compare with "
        "(bind outputs or give a 'label' column)"
    )


def _compare(
    example: Example,
    prediction: Any,
    score_one: Callable[[Any, Any], float],
    verb: str,
) -> Score:
    values: list[float] = []
    notes: list[str] = []
    for name, expected, predicted in _pairs(example, prediction):
        alternatives = (
            list(expected)
            if isinstance(expected, (list, tuple)) and not isinstance(predicted, (list, tuple))
            else [expected]
        )
        value = max(score_one(alt, predicted) for alt in alternatives) if alternatives else 0.0
        values.append(value)
        if value < 1.0:
            label = "" if len(example.output_names) <= 1 else f"{name}: "
            notes.append(f"{label}expected {verb} {_short(expected)}, got {_short(predicted)}")
    score = sum(values) / len(values)
    return Score(score, "; ".join(notes) or None)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _exact_one(expected: Any, predicted: Any) -> float:
    if _is_namedtuple(predicted) and isinstance(expected, (list, tuple)):
        predicted = tuple(predicted)  # a NamedTuple labeled positionally, as a JSON list
    return 1.0 if _same(plain(expected), plain(predicted)) else 0.0


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_asdict")


_PLAIN_NUMBER = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")


def _number(value: Any) -> float | None:
    """A real number, or text that is exactly one plain number literal; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value):
        return float(value)
    return None


def _same(expected: Any, predicted: Any) -> bool:
    """Plain values equal: dicts key by key (an absent key as None), lists item by item,
    numbers by value (when at least one side is a number), other scalars by `normalize_text`."""
    if isinstance(expected, dict) and isinstance(predicted, dict):
        return all(_same(expected.get(k), predicted.get(k)) for k in {*expected, *predicted})
    if isinstance(expected, list) and isinstance(predicted, list):
        return len(expected) == len(predicted) and all(
            _same(e, p) for e, p in zip(expected, predicted, strict=True)
        )
    if isinstance(expected, (dict, list)) or isinstance(predicted, (dict, list)):
        return False
    if isinstance(expected, (int, float)) or isinstance(predicted, (int, float)):
        a, b = _number(expected), _number(predicted)
        if a is not None and b is not None:
            return a == b or (math.isnan(a) and math.isnan(b))
    return normalize_text(expected) == normalize_text(predicted)


def _contains_one(expected: Any, predicted: Any) -> float:
    needle, haystack = normalize_text(expected), normalize_text(predicted)
    if not needle:
        return 1.0 if not haystack else 0.0
    return 1.0 if needle in haystack else 0.0


def token_f1(expected: Any, predicted: Any) -> float:
    """Token-overlap F1 of SQuAD: 1 when both are empty, 0 when only one is."""
    gold, pred = f1_tokens(expected), f1_tokens(predicted)
    if not gold or not pred:
        return 1.0 if gold == pred else 0.0
    common = sum((Counter(gold) & Counter(pred)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return min(1.0, 2 * precision * recall / (precision + recall))


def _numeric_one(expected: Any, predicted: Any) -> float:
    a, b = parse_number(expected), parse_number(predicted)
    if a is None or b is None:
        return 0.0
    return 1.0 if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) else 0.0


def exact_match(example: Example, prediction: Any) -> Score:
    """1 if prediction equals the expected value after `normalize_text` (a list: any of them)."""
    return _compare(example, prediction, _exact_one, "exactly")


def contains(example: Example, prediction: Any) -> Score:
    """1 if the normalised expected value occurs in the normalised prediction."""
    return _compare(example, prediction, _contains_one, "to contain")


def f1(example: Example, prediction: Any) -> Score:
    """Token F1 between expected and predicted text (SQuAD normalisation)."""
    return _compare(example, prediction, token_f1, "tokens of")


def numeric(example: Example, prediction: Any) -> Score:
    """1 if both sides parse to the same number (`parse_number`; commas and currency ignored)."""
    return _compare(example, prediction, _numeric_one, "the number")


BUILTIN_METRICS: dict[str, MetricFn] = {
    "exact_match": exact_match,
    "contains": contains,
    "f1": f1,
    "numeric": numeric,
}
_registry: dict[str, MetricFn] = dict(BUILTIN_METRICS)


def register_metric(name: str, fn: MetricFn) -> None:
    """Make `fn` available by `name` (for plugins and tests)."""
    if not name or ":" in name:
        raise ValueError(f"metric names are plain identifiers, got {name!r}")
    _registry[name] = fn


def metric_names() -> list[str]:
    return sorted(_registry)


def get_metric(spec: str | Metric | MetricFn) -> Metric:
    """A metric by registered name (`exact_match`), by `module:function`, or a callable."""
    if isinstance(spec, Metric):
        return spec
    if callable(spec):
        return Metric(getattr(spec, "__name__", "metric"), spec)
    if not isinstance(spec, str) or not spec.strip():
        raise MetricError(f"a metric name is required; known metrics: {', '.join(metric_names())}")
    spec = spec.strip()
    if ":" in spec:
        return Metric(spec, _load_user_metric(spec))
    fn = _registry.get(spec)
    if fn is None:
        raise MetricError(
            f"unknown metric {spec!r}; known metrics: {', '.join(metric_names())} "
            "(or a user function as module:function)"
        )
    return Metric(spec, fn)


def _load_user_metric(spec: str) -> MetricFn:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise MetricError(f"bad metric {spec!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != module_name.split(".")[0] or cwd in sys.path:
            raise MetricError(f"cannot import metric module {module_name!r}: {exc}") from exc
        sys.path.insert(0, cwd)  # MODULE is importable from the current directory (issue 3)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc2:
            raise MetricError(f"cannot import metric module {module_name!r}: {exc2}") from exc2
    except Exception as exc:
        raise MetricError(
            f"importing metric module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise MetricError(f"metric {spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise MetricError(f"metric {spec!r} is not callable")
    try:
        inspect.signature(obj).bind(None, None)
    except TypeError:
        raise MetricError(
            f"metric {spec!r} must accept (example, prediction); "
            f"its signature is {inspect.signature(obj)}"
        ) from None
    except ValueError:  # builtins without a signature: let the call decide
        pass
    fn: MetricFn = obj
    return fn


def mean(scores: Sequence[Score]) -> float:
    """Mean score value (0.0 for none)."""
    return sum(s.value for s in scores) / len(scores) if scores else 0.0
