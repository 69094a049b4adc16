"""Text <-> typed values for every supported annotation.

Three jobs, kept together because they must agree with each other:

- `describe(tp)`: the short type description a prompt shows next to a field;
- `render(value)`: how a value (a Python value or its JSON form) is written into a prompt;
- `coerce(text, tp)`: the lenient parse of what a model wrote back into a value of `tp`.

Small models break formats constantly, so `coerce` repairs what it can (quotes, fences, case,
a label inside a sentence, `$1,200`, `= 26`) instead of asking the model again. When nothing
fits it raises `ValueError`; the adapter turns that into a `ParseError` naming the field.
"""

from __future__ import annotations

import contextlib
import enum
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

_NONE_WORDS = {"none", "null", "n/a", "na", "nil", ""}
_TRUE_WORDS = {"true", "yes", "y", "1", "correct", "right"}
_FALSE_WORDS = {"false", "no", "n", "0", "incorrect", "wrong"}
_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip
_SMALL_NUMBERS = {word: i for i, word in enumerate(_NUMBER_WORDS)}
_SPECIAL_FLOATS = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_MAX_INT_DIGITS = 4300
"""Python's own limit for int(str); a longer "number" is garbage, not a value to build."""
_MAX_DEPTH = 100
"""Deepest nesting of a parsed JSON value: no answer is nested deeper, and walking one that is
deeper would recurse towards Python's limit (a `RecursionError` is not a parse result)."""

# (Patterns are kept as strings: `re` compiles and caches them on first use, which keeps the
# runtime's import cost near zero. Every pattern here is linear in its input: no two adjacent
# repeats can match the same characters, so a failed match never retries a split.)
_NUMBER = (
    r"(?<![\w.])(?P<sign>[-+]?)(?P<cur>[$€£¥₹]?)"
    r"(?P<run>\d(?:[\d,._'\u00a0\u202f\u2009 ]*\d)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+)?"
)
"""A number as models write it: sign, currency, digits with whatever separators they put
between them (validated afterwards: `1,234`, `12,34,567`, `1 000`, `1_000` are one number,
`3,5` is ambiguous), an exponent; not the digits of a word such as `A0` or `v2`."""
_SCALE_WORDS = {"hundred": 2, "thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_LIST_MARKER = r"^(?:[-*+•]|\d+[.)])\s+"
"""A bullet or list number; the space after it is required, so `-5` and `1.5` stay numbers."""
_REASONING_TAGS = ("think", "thinking", "reasoning", "thought", "scratchpad", "reflection")
"""Tags reasoning models wrap their drafts in (`<think>` of Qwen3 and DeepSeek-R1, ...)."""
_REFUSAL = (
    r"(?i)\b(?:sorry|apologi[sz]e|cannot|can't|can ?not|unable|impossible|"
    r"(?:do not|don't|does not|doesn't) (?:know|have|say|mention|specify|provide|contain)|"
    r"not (?:sure|possible|enough|specified|mentioned|provided|given|known|available)|"
    r"no (?:information|data|answer|way to)|unknown|as an ai|language model|knowledge cutoff|"
    r"insufficient|unclear)\b"
)
"""Words of an answer that declines to answer: a number in it (a year, a count from the
question) is not the answer."""
_NEGATION = (
    r"(?i)(?:\b(?:not|never|neither|nor|no|cannot|without|except|rather than|instead of)\b|n't\b)"
)
_CLAUSE_END = ".,;:!?\n()[]"
_STOPWORDS = {
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "he", "i", "if", "in", "is",
    "it", "me", "my", "no", "not", "of", "on", "one", "or", "so", "the", "to", "up", "us", "we",
    "yes", "all", "any", "can", "may", "will", "was", "has", "had", "she", "you", "this", "that",
}  # fmt: skip
"""English words that are also short labels (`IS`, `A`): in prose, lower case, they are words."""


def _brief(value: Any) -> str:
    """A value for an error message: its repr, cut short (the caller keeps the whole text)."""
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}... ({len(text)} chars)"


# --- type introspection -------------------------------------------------------------------------


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _optional_inner(tp: Any) -> Any | None:
    """`T` for `Optional[T]` / `T | None`, else None."""
    if _is_union(tp):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0]
    return None


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def _is_dataclass_type(tp: Any) -> bool:
    # Checked by attribute so the runtime need not import dataclasses (a 5 ms import) itself.
    return isinstance(tp, type) and hasattr(tp, "__dataclass_fields__")


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_fields")


def object_fields(tp: Any) -> dict[str, Any]:
    """Field name -> annotation for a structured class (dataclass, NamedTuple, TypedDict, pydantic)."""
    if _is_dataclass_type(tp):
        import dataclasses

        hints = typing.get_type_hints(tp)
        return {f.name: hints[f.name] for f in dataclasses.fields(tp)}
    if _is_namedtuple(tp) or _is_typeddict(tp):
        return dict(typing.get_type_hints(tp))
    if _is_pydantic(tp):
        return {name: f.annotation for name, f in tp.model_fields.items()}
    raise TypeError(f"{tp!r} is not a structured type")


def _is_object(tp: Any) -> bool:
    return _is_dataclass_type(tp) or _is_namedtuple(tp) or _is_typeddict(tp) or _is_pydantic(tp)


# --- describe -----------------------------------------------------------------------------------


def describe(tp: Any) -> str:
    """A short, model-readable description of a type, for the field list of a prompt."""
    if tp is str:
        return "str"
    if tp is bool:
        return "bool: true or false"
    if tp is int:
        return "int"
    if tp is float:
        return "float"
    if tp is type(None):
        return "null"
    inner = _optional_inner(tp)
    if inner is not None:
        return f"{describe(inner)}, or null"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of: " + ", ".join(str(m.value) for m in tp)
    if origin is list:
        if args and hasattr(args[0], "__promptcast_describe__"):  # list[Image]: parts, not JSON
            return f"list of {describe(args[0])}"
        return f"JSON array of {describe(args[0])}" if args else "JSON array"
    if origin is tuple:
        return "JSON array of exactly: " + ", ".join(describe(a) for a in args)
    if origin is dict:
        return (
            f"JSON object of {describe(args[1])} values"
            if args and args[1] is not Any
            else "JSON object"
        )
    if _is_object(tp):
        parts = ", ".join(f"{name} ({describe(t)})" for name, t in object_fields(tp).items())
        return f"JSON object with keys: {parts}"
    if _is_union(tp):
        return " or ".join(describe(a) for a in get_args(tp))
    own = getattr(tp, "__promptcast_describe__", None)  # History, Image: their own words
    if isinstance(own, str):
        return own
    return getattr(tp, "__name__", repr(tp))


# --- render -------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """The JSON form of a value: what demos store in the lock and what structures render as.

    A value nested too deeply to walk (hundreds of levels, as in a model's runaway brackets)
    is a `ValueError`, never a `RecursionError` escaping from the middle of a call.
    """
    try:
        return _jsonable(value)
    except RecursionError:
        raise ValueError("value nested too deeply to convert to JSON") from None


def _jsonable(value: Any) -> Any:
    to_jsonable = _jsonable  # the recursion stays inside the guarded call
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if _is_namedtuple(type(value)):
        return {k: to_jsonable(v) for k, v in value._asdict().items()}
    if _is_dataclass_type(type(value)):
        import dataclasses

        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return to_jsonable(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    own = getattr(value, "__promptcast_json__", None)  # History, Image: their JSON forms
    if own is not None:
        return own()
    return str(value)


def render(value: Any, tp: Any = Any) -> str:
    """How a value is written into a prompt: scalars as text, structures as compact JSON (the
    keys of a structured value in its type's field order, when the type is given)."""
    import json

    data = to_jsonable(value)
    if isinstance(data, str):
        return data
    if isinstance(data, bool):
        return "true" if data else "false"
    if data is None:
        return "null"
    if isinstance(data, (int, float)):
        return repr(data)
    try:
        return json.dumps(declared_order(data, tp), ensure_ascii=False)
    except RecursionError:
        raise ValueError("value nested too deeply to render") from None


def declared_order(data: Any, tp: Any) -> Any:
    """`data` with the keys of each structured value in its class's field order.

    A value built from a live instance is in declared order already; a lock stores JSON with
    sorted keys, so a demo read back from one is put back in declared order here, and every
    adapter renders it as the optimizer saw it (one path). A free `dict[str, T]` has no
    declared order: its keys stay as given (sorted, from a lock).
    """
    inner = _optional_inner(tp)
    if inner is not None:
        return declared_order(data, inner)
    if isinstance(data, dict) and _is_union(tp):  # `A | B`: the one class these keys fit
        fits = [o for o in get_args(tp) if _is_object(o) and set(data) <= set(object_fields(o))]
        orders = {tuple(k for k in object_fields(o) if k in data) for o in fits}
        return declared_order(data, fits[0]) if len(orders) == 1 else data
    if isinstance(data, dict):
        if _is_object(tp):
            fields = object_fields(tp)
            keys = [k for k in fields if k in data] + [k for k in data if k not in fields]
            return {k: declared_order(data[k], fields.get(k, Any)) for k in keys}
        if get_origin(tp) is dict and len(get_args(tp)) == 2:
            return {k: declared_order(v, get_args(tp)[1]) for k, v in data.items()}
        return data
    if isinstance(data, list):
        args = get_args(tp)
        if get_origin(tp) in (list, set, frozenset) and args:
            return [declared_order(v, args[0]) for v in data]
        if get_origin(tp) is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return [declared_order(v, args[0]) for v in data]
            pairs = zip(data, args, strict=False)  # a tuple value longer than its type: kept
            return [declared_order(v, a) for v, a in pairs] + data[len(args) :]
    return data


# --- coerce -------------------------------------------------------------------------------------


class _Final(ValueError):
    """A verdict on the text that no other reading may override: the lenient layers above
    (a list read from lines after JSON failed, a union's next option) re-raise it."""


class _Ambiguous(_Final):
    """The text holds several answers that disagree (two labels, two JSON values, `3,5`): no
    repair may pick one."""


def coerce(text: str, tp: Any) -> Any:
    """Parse model text into a value of type `tp`, leniently; `ValueError` when nothing fits."""
    return _coerce_value(_unwrap_text(text), tp)


def strip_reasoning(text: str) -> str:
    """`text` without reasoning blocks: `<think>...</think>` (also `<thinking>`, `<reasoning>`,
    `<thought>`, ...) is a draft, never the answer.

    A block left open (the completion was cut off inside it) runs to the end of the text; a
    closing tag with no opening one (the opening tag was part of the prompt template) makes
    everything before it the draft. One pass over the tags, so linear in the text.
    """
    if "<" not in text:
        return text
    pattern = r"(?i)<(/?)(" + "|".join(_REASONING_TAGS) + r")[ \t]*>"
    kept: list[str] = []
    i = 0
    inside: str | None = None
    depth = 0
    for match in re.finditer(pattern, text):
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if inside is None:
            if closing:  # a stray closer: what came before it was the draft
                kept.clear()
            else:
                kept.append(text[i : match.start()])
                inside, depth = tag, 1
            i = match.end()
        elif tag == inside:
            depth += -1 if closing else 1
            if depth == 0:
                inside, i = None, match.end()
    if inside is None:
        kept.append(text[i:])
    return "".join(kept)


def _unwrap_text(text: str) -> str:
    return _unfence(strip_reasoning(text).strip())


def _unfence(text: str) -> str:
    """The inside of a markdown fence around the whole text (```json\\n...\\n```), else the text.

    (String operations, not one regex: a lazy group before optional spaces and a closing fence
    backtracks quadratically over a long run of spaces.)
    """
    if len(text) < 6 or not text.startswith("```") or not text.endswith("```"):
        return text
    inner = text[3:-3]
    tag = re.match(r"[\w+-]*[ \t]*\n", inner)  # a language tag line
    return inner[tag.end() :].strip() if tag else inner.strip()


def _coerce_value(value: Any, tp: Any) -> Any:
    """Coerce either raw text or an already-decoded JSON value to `tp`."""
    if tp is Any:
        return value
    if isinstance(tp, type) and tp in _SCALARS:  # the common leaf types first (per list item)
        return _SCALARS[tp](value)
    inner = _optional_inner(tp)
    if inner is not None:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        return _coerce_value(value, inner)
    if _is_union(tp):
        errors = []
        for option in get_args(tp):
            try:
                return _coerce_value(value, option)
            except _Final:
                raise
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if tp is str:
        return _to_str(value)
    if tp is bool:
        return _to_bool(value)
    if tp is int:
        return _to_int(value)
    if tp is float:
        return _to_float(value)
    if tp is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        raise ValueError(f"expected null, got {_brief(value)}")
    origin = get_origin(tp)
    if origin is Literal:
        return _to_choice(value, list(get_args(tp)))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        chosen = _to_choice(value, [m.value for m in tp] + [m.name for m in tp])
        return tp(chosen) if chosen in {m.value for m in tp} else tp[chosen]
    if origin in (list, tuple):
        return _to_sequence(value, tp)
    if origin is dict:
        data = _to_json_container(value, dict)
        key_tp, value_tp = get_args(tp) or (str, Any)
        return {_coerce_value(k, key_tp): _coerce_value(v, value_tp) for k, v in data.items()}
    if _is_object(tp):
        return _to_object(value, tp)
    raise ValueError(f"unsupported type {tp!r}")


def _to_str(value: Any) -> str:
    # Raw text arrives stripped (`_unwrap_text`, list splitting); a string decoded from JSON is
    # kept exactly as the model wrote it. A JSON null is no text: "null" would be a guess.
    if value is None:
        raise ValueError("expected text, got null")
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return render(value)


def _strip_decoration(text: str) -> str:
    """Remove quotes, markdown emphasis and trailing punctuation around a short answer."""
    return text.strip().strip("`*_\"'").strip().rstrip(".!;:,").strip().strip("\"'`")


# --- booleans -------------------------------------------------------------------------------

_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False}
"""Words that say true or false wherever they stand in an answer."""
_BOOL_FIRST = {"correct": True, "incorrect": False, "right": True, "wrong": False}
"""Words that say it only as an answer's first word (`Correct, ...`); in prose they are
adjectives (`the right answer is false`)."""


def _to_bool(value: Any) -> bool:
    """A boolean stated once, or several times alike: `Yes.`, `**true**`, `No, it is not`.

    Two that disagree (`Right, that is false.`, `true or false`), and a negated one (`not
    true`), are ambiguous: a `ValueError`, never the first word's reading.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value)
    word = _strip_decoration(text).lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    words = [
        (m.group(0), m.start(), m.end()) for m in re.finditer(r"[a-z]+(?:'[a-z]+)?", text.lower())
    ]
    said: set[bool] = set()
    for k, (w, _, end) in enumerate(words):
        if w == "no" and k + 1 < len(words) and text[end : end + 1] in " \t":
            continue  # a determiner (`no idea`, `no evidence`), not an answer (`No, ...`)
        # `correct` / `wrong` say it as the first word or at the end of a clause (`that is
        # wrong.`), not as an adjective (`the right answer is false`).
        weak = w in _BOOL_FIRST and (k == 0 or text[end : end + 1] in ("", *".,;:!?\n"))
        if w in _BOOL_WORDS or weak:
            before = words[k - 1][0] if k else ""
            if before in ("not", "never") or before.endswith("n't"):
                raise _Ambiguous(f"a negated boolean, not an answer: {_brief(text.strip())}")
            said.add(_BOOL_WORDS[w] if w in _BOOL_WORDS else _BOOL_FIRST[w])
    if len(said) == 1:
        return said.pop()
    if len(said) > 1:
        raise _Ambiguous(f"both true and false in {_brief(text.strip())}")
    raise ValueError(f"expected true or false, got {_brief(text.strip())}")


# --- numbers --------------------------------------------------------------------------------

_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
_MAX_NUMBER_CHARS = 5000


class _Number(NamedTuple):
    value: Any  # decimal.Decimal (imported lazily)
    start: int
    end: int


def _read_run(run: str) -> list[tuple[str, int, int]]:
    """The number or numbers a run of digits and separators writes: (plain literal, start,
    end in the run) each.

    One number where the grouping is unambiguous: `1,234.5`, lakh `12,34,567`, `1.234.567` and
    `1.234,5`, `1 000` (also with a no-break or thin space or `'`), `1_000`. Numbers apart,
    where a space (or a comma and a space) separates them. A comma that may be a decimal comma
    or a list (`3,5`, `3,14`), `1.250` (a decimal, or 1250 with a thousands dot?) and dotted
    runs such as `1.2.3` are ambiguous: `ValueError`.
    """
    whole = len(run)
    if re.fullmatch(r"[1-9]\d{0,2}\.\d\d0", run):
        raise _Ambiguous(f"ambiguous number {run!r} (a decimal, or a thousands dot?)")
    if run.isdigit() or re.fullmatch(r"\d*\.\d+", run):
        return [(run, 0, whole)]
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", run) or re.fullmatch(
        r"\d{1,2}(?:,\d{2})+,\d{3}(?:\.\d+)?", run
    ):
        return [(run.replace(",", ""), 0, whole)]
    if re.fullmatch(r"\d{1,3}(?:\.\d{3}){2,}(?:,\d+)?|\d{1,3}(?:\.\d{3})+,\d+", run):
        return [(run.replace(".", "").replace(",", "."), 0, whole)]
    grouped = re.fullmatch(
        r"[1-9]\d{0,2}(?:([ \u00a0\u202f\u2009'])\d{3})(?:\1\d{3})*(?:[.,]\d+)?", run
    )
    if grouped:
        return [(run.replace(grouped.group(1), "").replace(",", "."), 0, whole)]
    if re.fullmatch(r"\d+(?:_\d+)+(?:\.\d+)?", run):
        return [(run.replace("_", ""), 0, whole)]
    if " " in run:
        found: list[tuple[str, int, int]] = []
        for piece in re.finditer(r"[^ ]+", run):
            text = piece.group(0)
            inner = text.strip(",._'\u00a0\u202f\u2009")
            if inner:
                offset = piece.start() + text.index(inner)
                found += [(n, offset + a, offset + b) for n, a, b in _read_run(inner)]
        return found
    raise _Ambiguous(f"ambiguous number {_brief(run)} (a decimal comma, a list, a version?)")


def _number_tokens(text: str) -> list[_Number]:
    import decimal

    tokens: list[_Number] = []
    for match in re.finditer(_NUMBER, text):
        run = match.group("run")
        if len(run) > _MAX_NUMBER_CHARS:
            raise ValueError(f"a {len(run)}-character number is not an answer")
        literals = _read_run(run)
        sign, exp = match.group("sign"), match.group("exp") or ""
        base = match.start("run")
        for k, (literal, a, b) in enumerate(literals):
            first, last = k == 0, k == len(literals) - 1
            number = decimal.Decimal((sign if first else "") + literal + (exp if last else ""))
            start = match.start() if first else base + a
            end = match.end() if last else base + b
            tokens.append(_Number(number, start, end))
    return tokens


def _explains(between: str) -> bool:
    """The text between an answer and another number introduces an explanation of it."""
    return "(" in between or bool(
        re.search(r"(?i)\b(?:because|since|as|from|using|given|via|for|per|each|of)\b", between)
    )


def _alone(chosen: _Number, tokens: list[_Number], text: str) -> bool:
    """No later number disagrees with `chosen`, except inside an explanation of it."""
    for later in tokens:
        if later.start >= chosen.end and later.value != chosen.value:
            return _explains(text[chosen.end : later.start])
    return True


def _token_after(
    tokens: list[_Number], starts: list[int], position: int, text: str
) -> _Number | None:
    """The number right after `position` (only spaces, currency, emphasis or `:` between)."""
    import bisect

    k = bisect.bisect_left(starts, position)
    if k == len(tokens) or tokens[k].start - position > 40:
        return None
    gap = text[position : tokens[k].start]
    return tokens[k] if re.fullmatch(r"[\s$€£¥₹*_:=`\"']*", gap) else None


def _number_text(value: Any) -> str:
    """The number a text means, as a literal; `ValueError` unless exactly one number is meant.

    A text holding one number (or the same number repeated) means it. With several different
    numbers, only a final result counts: the number after the last `=` (`$50 - $24 = $26`),
    after `the answer is` / `total:`, or a leading number followed by its explanation (`7
    (because 3 + 4)`), and then only if no other number follows it outside an explanation.
    Anything else (`3 apples and 4 pears`, `5-7`, an echo of the question's numbers) is
    ambiguous. A refusal (`Sorry, as of 2023 I cannot ...`), a comparison (`more than 7`) and
    a scale suffix (`5k`) are never a number.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        # A ValueError, not a TypeError: a JSON value of the wrong kind is a parse failure.
        raise ValueError(f"expected a number, got {_brief(value)}")  # noqa: TRY004
    digits = value[1:] if value[:1] == "-" else value
    if digits.isdigit() and len(digits) <= 20:
        return value  # a plain integer literal, the common case: nothing to decide
    text = value.translate(_MINUS_SIGNS)
    word = _strip_decoration(text).lower()
    if word in _SMALL_NUMBERS:
        return str(_SMALL_NUMBERS[word])
    if word in _SPECIAL_FLOATS:
        return word
    tokens = _number_tokens(text)
    if not tokens:
        raise ValueError(f"expected a number, got {_brief(text.strip())}")
    refusal = re.search(_REFUSAL, text)
    if refusal:
        raise ValueError(f"a refusal ({refusal.group(0)!r}), not a number: {_brief(text.strip())}")
    if len({t.value for t in tokens}) == 1:
        chosen = tokens[-1]
    else:
        candidates: list[_Number] = []
        starts = [t.start for t in tokens]  # sorted: tokens are found left to right
        equals = text.rfind("=")
        if equals >= 0:
            after = _token_after(tokens, starts, equals + 1, text)
            if after is not None and _alone(after, tokens, text):
                candidates.append(after)
        cues = list(
            re.finditer(
                r"(?i)\b(?:answer|result|total|sum|solution|so|therefore|thus|hence)(?:\s+(?:is|"
                r"was|would be|will be|equals|of|the answer is))?\s*[:=]?",
                text,
            )
        )
        for cue in reversed(cues):  # the last cue that a number follows
            after = _token_after(tokens, starts, cue.end(), text)
            if after is not None:
                if _alone(after, tokens, text):
                    candidates.append(after)
                break
        lead = tokens[0]
        if not text[: lead.start].strip(" \t\n*_`\"'$€£¥₹") and _alone(lead, tokens, text):
            candidates.append(lead)
        if len({c.value for c in candidates}) != 1:
            numbers = ", ".join(str(t.value) for t in tokens[:6])
            raise _Ambiguous(f"several numbers ({numbers}) and no single result")
        chosen = candidates[0]
    before = text[max(0, chosen.start - 24) : chosen.start]
    if re.search(
        r"(?i)(?:\b(?:more|less|fewer|greater|higher|lower|over|under|above|below|almost|"
        r"nearly|not|least|most|up to|than)\s+|[<>≤≥]\s*)$",
        before,
    ):
        raise _Ambiguous(f"a bound, not a number: {_brief(text[chosen.start - 24 : chosen.end])}")
    after_text = text[chosen.end : chosen.end + 24]
    number = chosen.value
    scale = re.match(r"\s*(hundred|thousand|million|billion|trillion)\b", after_text, re.IGNORECASE)
    if scale:
        number = number.scaleb(_SCALE_WORDS[scale.group(1).lower()])
    elif re.match(r"(?:[kKMB]|bn|mn)(?![A-Za-z])|[xXbBoO][0-9a-fA-F]|/\d", after_text):
        raise _Ambiguous(f"a number with a suffix: {_brief(text[chosen.start : chosen.end + 4])}")
    return str(number)


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range
            raise ValueError(f"number out of range for a float: {_brief(value)}") from None
    literal = _number_text(value)
    number = float(literal)
    if number in (float("inf"), float("-inf")) and literal.lower() not in _SPECIAL_FLOATS:
        raise ValueError(f"number out of range for a float: {_brief(literal)}")
    return number


def _to_int(value: Any) -> int:
    import decimal

    if isinstance(value, int) and not isinstance(value, bool):
        return value  # exact, however large: never through float
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected an integer, got {_brief(value)}")
        return int(value)
    try:
        number = decimal.Decimal(_number_text(value))
    except decimal.InvalidOperation:
        raise ValueError(f"expected an integer, got {_brief(value)}") from None
    if not number.is_finite() or number.adjusted() > _MAX_INT_DIGITS:
        raise ValueError(f"expected an integer, got {_brief(value)}")
    if number != number.to_integral_value():
        raise ValueError(f"expected an integer, got {_brief(float(number))}")
    return int(number)


# --- labels ---------------------------------------------------------------------------------


def _negated(text: str, start: int, end: int) -> bool:
    """The mention at `text[start:end]` is negated in its clause (`not DESC`, `DESC is not`)."""
    window = max(0, start - 60)
    clause_start = max((text.rfind(c, window, start) for c in _CLAUSE_END), default=-1) + 1
    if re.search(_NEGATION, text[max(clause_start, start - 60) : start]):
        return True
    return bool(
        re.match(
            r"(?i)\s*(?:is|was|would be)?\s*(?:not|n't|wrong|incorrect)\b", text[end : end + 40]
        )
    )


def _any_negated(text: str, spans: list[tuple[int, int]]) -> bool:
    """Some mention in `spans` is negated; only mentions near a negation word are checked
    closely, so a label repeated a hundred thousand times costs one scan."""
    import bisect

    near = [m.start() for m in re.finditer(_NEGATION + r"|(?i:\b(?:wrong|incorrect)\b)", text)]
    for start, end in spans:
        k = bisect.bisect_left(near, start - 60)
        if k < len(near) and near[k] < end + 40 and _negated(text, start, end):
            return True
    return False


def _mentions(text: str, choices: list[Any]) -> dict[Any, list[tuple[int, int]]]:
    """Label -> where it is mentioned as a word; a longer label hides the shorter ones inside
    it (`very positive` is no mention of `positive`)."""
    found: dict[Any, list[tuple[int, int]]] = {}
    masked = text
    for choice in sorted(choices, key=lambda c: -len(str(c))):
        label = str(choice)
        if not label.strip():
            continue
        pattern = r"(?<![\w-])" + re.escape(label) + r"(?![\w-])"
        spans = [(m.start(), m.end()) for m in re.finditer(pattern, masked, re.IGNORECASE)]
        if spans:
            found[choice] = spans
            pieces, last = [], 0
            for s, e in spans:
                pieces += [masked[last:s], " " * (e - s)]
                last = e
            masked = "".join(pieces) + masked[last:]
    # `The answer is A.` with labels A and IS: the lower-case English word is no label.
    words = {
        c: s
        for c, s in found.items()
        if not all(
            text[a:b].lower() in _STOPWORDS and text[a:b].islower() and text[a:b] != str(c)
            for a, b in s
        )
    }
    return words or found


def _to_choice(value: Any, choices: list[Any]) -> Any:
    """Match a label exactly, then loosely, then as the one label a sentence mentions.

    Several labels mentioned (`Not ENTY, it is DESC.`, `neither A nor B`), or the only one
    negated (`not negative`), are ambiguous: a `ValueError`, never the first label.
    """
    if value in choices and not isinstance(value, bool):
        return value
    text = str(value).strip()
    for choice in choices:
        if text == str(choice):
            return choice
    loose = _strip_decoration(text).lower()
    for choice in choices:
        if loose == str(choice).lower():
            return choice
    numbers = [c for c in choices if isinstance(c, int) and not isinstance(c, bool)]
    if numbers:  # `Literal[1000]` written as `1,000`, `$1,000` or `998 + 2 = 1000`
        with contextlib.suppress(ValueError):
            number = _to_int(value)
            if number in numbers:
                return number
    # An echoed note after the label (`NUM   # note: one of ABBR; NUM`) is not part of it.
    head = re.split(r"\s#", text, maxsplit=1)[0].strip() or text
    loose = _strip_decoration(head).lower()
    for choice in choices:
        if loose == str(choice).lower():
            return choice
    found = _mentions(head, choices)
    if len(found) > 1:
        named = ", ".join(str(c) for c in sorted(found, key=lambda c: found[c][0]))
        raise _Ambiguous(f"several labels ({named}) in {_brief(head)}")
    if found:
        ((choice, spans),) = found.items()
        if _any_negated(head, spans):
            raise _Ambiguous(f"the label {choice} is negated in {_brief(head)}")
        return choice
    # The label spelled out as the whole answer: `LOCATION` for LOC, `ENTITY` for ENTY (seen
    # from qwen0.5b); a short phrase only where its first word starts with the label (`human
    # being` for HUM); never the first word of a sentence (`Entirely wrong` is no ENTY).
    words = re.findall(r"[^\W_]+", loose)
    if len(words) == 1 or (1 < len(words) <= 3 and len(loose) <= 40):
        word = words[0]
        spelled = [
            c
            for c in choices
            if isinstance(c, str)
            and (_abbreviates(c, word) if len(words) == 1 else word.startswith(c.lower()))
            and len(word) > len(c)
        ]
        if len(spelled) == 1:
            return spelled[0]
    raise ValueError(f"expected one of {', '.join(map(str, choices))}; got {_brief(text)}")


def _abbreviates(label: str, word: str) -> bool:
    """`label` is a prefix of `word`, or its letters appear in order in it, first letter first."""
    label = label.lower()
    if len(label) < 2 or len(word) <= len(label) or word[0] != label[0]:
        return False
    rest = iter(word)
    return all(char in rest for char in label)


# --- JSON -----------------------------------------------------------------------------------


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice with different values is two answers, not the last."""
    data: dict[str, Any] = {}
    for key, item in pairs:
        if key in data and data[key] != item:
            raise _Ambiguous(f"the key {key!r} is given twice with different values")
        data[key] = item
    return data


def _check_depth(data: Any) -> Any:
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > _MAX_DEPTH:
                raise _Final(f"JSON nested deeper than {_MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend(
                (child, depth + 1) for child in children if isinstance(child, (dict, list))
            )
    return data


def _json_float(literal: str) -> float:
    """A JSON number with a fraction; `1.250` is as ambiguous here as in prose (models that
    mean 1250 write it so in JSON too, where no thousands separator exists)."""
    if re.fullmatch(r"-?[1-9]\d{0,2}\.\d\d0", literal):
        raise _Ambiguous(f"ambiguous number {literal!r} (a decimal, or a thousands dot?)")
    return float(literal)


def _decode(text: str) -> Any:
    import json

    try:
        return json.loads(
            text, parse_constant=str, parse_float=_json_float, object_pairs_hook=_object_pairs
        )
    except RecursionError:
        raise _Final("JSON nested too deeply") from None


def _loads_lenient(text: str, openers: str = "{[") -> Any:
    """JSON, or the JSON-ish things models write around and instead of it.

    Prose before or after the value, Python reprs (single quotes, True/None), unquoted keys,
    trailing commas, comments and a value cut off before its closing brackets are all repaired.
    `openers` says which brackets may start the value (the caller knows the type it wants).
    A second, different value of the same kind after the first (a draft and its correction)
    is ambiguous.
    """
    text = _unwrap_text(text)
    try:
        return _check_depth(_decode(text))
    except _Final:
        raise
    except ValueError:
        pass
    start = min((i for i in map(text.find, openers) if i >= 0), default=-1)
    if start < 0:
        raise ValueError(f"expected JSON, got {_brief(text)}")
    try:
        repaired, end = _repair_json(text, start)
        data = _check_depth(_decode(repaired))
    except _Final:
        raise
    except ValueError:
        raise ValueError(f"expected JSON, got {_brief(text)}") from None
    again = text.find(text[start], end)
    if again >= 0:
        other: Any = data
        with contextlib.suppress(ValueError):
            other = _decode(_repair_json(text, again)[0])
        if other != data and type(other) is type(data):
            raise _Ambiguous(f"two different JSON values in {_brief(text)}")
    return data


_JSON_WORDS = {"True": "true", "False": "false", "None": "null"}
_JSON_LITERALS = {"true", "false", "null", "NaN", "Infinity"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


_JSON_TOKEN = (
    r"""(?s)(?P<str>"(?:[^"\\]|\\.|\\\Z)*(?P<q1>")?|'(?:[^'\\]|\\.|\\\Z)*(?P<q2>')?)"""
    r"|(?P<open>[{\[])|(?P<close>[}\]])"
    r"|(?P<comment>\#[^\n]*|//[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<comma>,)"
    r"|(?P<word>[^\W\d]\w*)(?P<colon>\s*:)?"
    r"|(?P<plain>[0-9 \t\r\n:.+-]+)"
    r"|(?P<other>.)"
)
"""One token of JSON-ish text: a quoted string (closed or cut off), a bracket, a comment, a
comma, a bare word (and the colon that makes it a key), a run that needs no rewriting."""
_STRING_ESCAPE = r"(?s)\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)"


def _repair_json(text: str, start: int = 0) -> tuple[str, int]:
    """Rewrite the JSON-like value at `text[start:]` as JSON: (the JSON, where the value ended).

    One pass over the tokens, so string contents are never mistaken for structure: every
    quoted string (single or double quotes, JSON or Python escapes) is re-emitted by
    `json.dumps`; bare words become JSON words (`True` -> `true`) or quoted keys; commas before
    a closing bracket and `//`, `#`, `/* */` comments are dropped; brackets left open are closed.
    A bare word that no JSON word or key can be ends the repair at once (nothing could make the
    result JSON). The tokens come from one `re.finditer`, so the pass is linear even over a
    cut-off megabyte list.
    """
    import json

    out: list[str] = []
    closers: list[str] = []
    end = len(text)

    def drop_trailing_comma() -> None:
        while out and out[-1].isspace():
            out.pop()
        if out and out[-1] == ",":
            out.pop()

    for match in re.finditer(_JSON_TOKEN, text[start:]):
        kind = {"q1": "str", "q2": "str", "colon": "word"}.get(
            match.lastgroup or "", match.lastgroup
        )
        token = match.group(0)
        if kind == "str":
            closed = match.group("q1") or match.group("q2")
            body = token[1:-1] if closed else token[1:]
            if "\\" in body:
                body = re.sub(_STRING_ESCAPE, _unescape, body)
            out.append(json.dumps(body))
        elif kind == "open":
            closers.append("}" if token == "{" else "]")
            out.append(token)
        elif kind == "close":
            drop_trailing_comma()
            if closers:
                out.append(closers.pop())  # a mismatched closer counts as the right one
            if not closers:
                end = start + match.end()
                break  # the value is complete; what follows is prose
        elif kind == "comment":
            continue
        elif kind == "word":
            word = match.group("word")
            if match.group("colon"):
                out += [json.dumps(word), ":"]  # an unquoted key
            elif word in _JSON_WORDS or word in _JSON_LITERALS or (out and out[-1][-1:].isdigit()):
                out.append(_JSON_WORDS.get(word, word))  # `True`, `null`, `e5` of `1e5`
            else:
                raise ValueError(f"a bare word {word[:40]!r} is not JSON")  # no repair can fix it
        else:  # comma, plain, other
            out.append(token)
    drop_trailing_comma()
    out.extend(reversed(closers))
    return "".join(out), end


def _unescape(match: re.Match[str]) -> str:
    r"""A Python or JSON escape (`\n`, `\x41`, `\u00e9`, `\'`) as the character it means."""
    code = match.group(1)
    if len(code) > 1:
        value = int(code[1:], 16)
        return chr(value) if value <= 0x10FFFF else code
    return _ESCAPES.get(code, code)


def _to_json_container(value: Any, kind: type) -> Any:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        data = _loads_lenient(value, "{" if kind is dict else "[")
        if isinstance(data, kind):
            return data
    raise ValueError(
        f"expected a JSON {'object' if kind is dict else 'array'}, got {_brief(value)}"
    )


# --- lists and structures -------------------------------------------------------------------

_EMPTY_LIST_WORDS = {"none", "null", "nil", "n/a", "nothing", "empty", "no items", "[]"}
"""An answer that says there are no items: the empty list, not a list of that word."""


def _split_list_text(text: str, items_are_text: bool) -> list[str]:
    """Bullets, numbered lines or comma-separated values, for lists not written as JSON.

    A preamble line ending in `:` (`The items are:`) is no item. Other prose around bullets
    (a line between them, a remark after them) makes the list ambiguous. On one line, a
    bullet starts the item, so `- A: 0` is the item `A: 0`; without one, `Counts: 1, 2` has a
    preamble when the items are numbers or labels (the item coercion checks what is left), but
    for text items `A: 0, b` could as well be the items `A: 0` and `b`: ambiguous, not a guess.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1:
        bullets = [bool(re.match(_LIST_MARKER, ln)) for ln in lines]
        if any(bullets):
            first = bullets.index(True)
            last = len(bullets) - 1 - bullets[::-1].index(True)
            if first and not lines[first - 1].endswith(":"):
                raise _Ambiguous(f"prose before the list: {_brief(lines[first - 1])}")
            if not all(bullets[first : last + 1]) or last < len(lines) - 1:
                stray = next(
                    ln for ln, b in zip(lines[first:], bullets[first:], strict=True) if not b
                )
                raise _Ambiguous(f"a line that is not an item: {_brief(stray)}")
            lines = lines[first : last + 1]
        elif lines[0].endswith(":"):
            lines = lines[1:]
        return [re.sub(_LIST_MARKER, "", ln) for ln in lines]
    bulleted = re.match(_LIST_MARKER, text.strip()) is not None
    one = re.sub(_LIST_MARKER, "", text.strip())
    preamble = None if bulleted else re.match(r"[A-Za-z][\w ]{0,60}:\s+", one)
    if preamble and ": " not in one[preamble.end() :]:
        if items_are_text:
            raise _Ambiguous(
                f"a label or an item? {_brief(one)} (write text items as a JSON list or bullets)"
            )
        one = one[preamble.end() :]  # `The items are: 1, 2`
    if one.startswith("[") and one.endswith("]"):
        one = one[1:-1]  # `[ABBR, NUM]`: brackets around bare words
    # `3, 90, 40,000`: where commas with a space separate items, a comma between digits
    # groups thousands.
    separator = r",\s+" if re.search(r",\s", one) and re.search(r"\d,\d", one) else ","
    parts = [part.strip() for part in re.split(separator, one) if part.strip()]
    if len(parts) > 1:  # `a, b and c` / `a, b, and c`: the last `and` separates too
        tail = re.split(r"^and\s+|\s+and\s+", parts[-1])
        parts[-1:] = [p.strip() for p in tail if p.strip()]
    return parts


def _reads_as_text(tp: Any) -> bool:
    """Whether an item of this type accepts any text, so no coercion can reject a wrong split."""
    if tp is Any or tp is str:
        return True
    if _is_union(tp) or _optional_inner(tp) is not None:
        return any(_reads_as_text(option) for option in get_args(tp))
    return False


def _to_sequence(value: Any, tp: Any) -> Any:
    args = get_args(tp)
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("expected a list, got no text")
        if _strip_decoration(value).lower() in _EMPTY_LIST_WORDS:
            items: list[Any] = []
        else:
            try:
                items = list(_to_json_container(value, list))
            except _Final:
                raise
            except ValueError:
                if _unwrap_text(value).startswith("{"):
                    raise ValueError(f"an object, not a list: {_brief(value.strip())}") from None
                items_are_text = not args or any(
                    _reads_as_text(a) for a in args if a is not Ellipsis
                )
                items = list(_split_list_text(value, items_are_text))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:  # a JSON value of the wrong kind: a parse failure, so a ValueError
        raise ValueError(f"expected a list, got {_brief(value)}")  # noqa: TRY004
    if get_origin(tp) is list:
        item_tp = args[0] if args else Any
        return [_coerce_value(v, item_tp) for v in items]
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce_value(v, args[0]) for v in items)
    if args and len(items) != len(args):
        raise ValueError(f"expected {len(args)} items, got {len(items)}")
    return tuple(_coerce_value(v, t) for v, t in zip(items, args, strict=False))


def lower_keys(data: Mapping[Any, Any]) -> dict[str, Any]:
    """Keys lower-cased; two keys that differ only in case and disagree are ambiguous."""
    lowered: dict[str, Any] = {}
    for key, item in data.items():
        name = str(key).lower()
        if name in lowered and lowered[name] != item:
            raise _Ambiguous(f"the key {name!r} is given twice with different values")
        lowered[name] = item
    return lowered


def _to_object(value: Any, tp: Any) -> Any:
    data = _to_json_container(value, dict)
    fields = object_fields(tp)
    lowered = lower_keys(data)
    kwargs = {}
    for name, field_tp in fields.items():
        if name in data:
            kwargs[name] = _coerce_value(data[name], field_tp)
        elif name.lower() in lowered:
            kwargs[name] = _coerce_value(lowered[name.lower()], field_tp)
        elif _optional_inner(field_tp) is not None:
            kwargs[name] = None
        else:
            raise ValueError(f"missing key {name!r} in {_brief(data)}")
    if _is_typeddict(tp):
        return kwargs
    if _is_pydantic(tp):
        return tp.model_validate(kwargs)
    return tp(**kwargs)


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    str: _to_str,
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
}
