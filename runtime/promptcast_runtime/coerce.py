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
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

_NONE_WORDS = {"none", "null", "n/a", "na", "nil", ""}
_TRUE_WORDS = {"true", "yes", "y", "1", "correct", "right"}
_FALSE_WORDS = {"false", "no", "n", "0", "incorrect", "wrong"}
_SMALL_NUMBERS = {
    word: i
    for i, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER = (
    r"(?<!\w)[-+]?[$€£¥]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?[$€£¥]?\.\d+"
)
"""(Patterns are kept as strings: `re` compiles and caches them on first use, which keeps the
runtime's import cost near zero.) A number as models write it: sign, currency, thousands separators, decimals, exponent; not
the digits of a word such as `A0` or `v2`."""
_SPECIAL_FLOATS = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_MAX_INT_DIGITS = 4300
"""Python's own limit for int(str); a longer "number" is garbage, not a value to build."""
_FENCE = r"(?s)^```(?:[\w+-]*[ \t]*\n)?(.*?)\n?[ \t]*```$"
"""A whole-text markdown fence, with an optional language tag line (```json\n...\n```)."""
_LIST_MARKER = r"^(?:[-*+•]|\d+[.)])\s+"
"""A bullet or list number; the space after it is required, so `-5` and `1.5` stay numbers."""


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
    return getattr(tp, "__name__", repr(tp))


# --- render -------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """The JSON form of a value: what demos store in the lock and what structures render as."""
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
    return str(value)


def render(value: Any) -> str:
    """How a value is written into a prompt: scalars as text, structures as compact JSON."""
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
    return json.dumps(data, ensure_ascii=False)


# --- coerce -------------------------------------------------------------------------------------


def coerce(text: str, tp: Any) -> Any:
    """Parse model text into a value of type `tp`, leniently; `ValueError` when nothing fits."""
    return _coerce_value(_unwrap_text(text), tp)


def _unwrap_text(text: str) -> str:
    text = text.strip()
    fenced = re.match(_FENCE, text)
    return fenced.group(1).strip() if fenced else text


def _coerce_value(value: Any, tp: Any) -> Any:
    """Coerce either raw text or an already-decoded JSON value to `tp`."""
    if tp is Any:
        return value
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
    # kept exactly as the model wrote it.
    return value if isinstance(value, str) else render(value)


def _strip_decoration(text: str) -> str:
    """Remove quotes, markdown emphasis and trailing punctuation around a short answer."""
    return text.strip().strip("`*_\"'").strip().rstrip(".!;:,").strip().strip("\"'`")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    word = _strip_decoration(str(value)).lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    first = re.match(r"[a-z]+", word)
    if first and first.group(0) in _TRUE_WORDS | _FALSE_WORDS:
        return first.group(0) in _TRUE_WORDS
    raise ValueError(f"expected true or false, got {_brief(str(value))}")


def _numbers_in(text: str) -> list[str]:
    return [re.sub(r"[,$€£¥]", "", m.group(0)) for m in re.finditer(_NUMBER, text)]


def _number_text(value: Any) -> str:
    """The number a text means, as a literal: a small number word or the final number in it."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a number, got {_brief(value)}")
    word = _strip_decoration(value).lower()
    if word in _SMALL_NUMBERS:
        return str(_SMALL_NUMBERS[word])
    if word in _SPECIAL_FLOATS:
        return word
    found = _numbers_in(value)
    if not found:
        raise ValueError(f"expected a number, got {_brief(value.strip())}")
    # `$50 - $24 = $26` or `the answer is 26`: the final number is the result.
    return found[-1]


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range
            raise ValueError(f"number out of range for a float: {_brief(value)}") from None
    return float(_number_text(value))


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


def _to_choice(value: Any, choices: list[Any]) -> Any:
    """Match a label exactly, then loosely, then as the first label mentioned in the text."""
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
    # The label wrapped in prose or followed by an echoed note: `NUM   # note: ...`. Labels
    # written in their own case come first (`The answer is A.` with labels A and IS is A).
    for flags in (0, re.IGNORECASE):
        first_at: dict[int, Any] = {}
        for choice in sorted(choices, key=lambda c: -len(str(c))):
            pattern = r"(?<![\w-])" + re.escape(str(choice)) + r"(?![\w-])"
            match = re.search(pattern, text, flags=flags)
            if match and match.start() not in first_at:
                first_at[match.start()] = choice
        if first_at:
            return first_at[min(first_at)]
    # The label spelled out: `LOCATION` for LOC, `ENTITY` for ENTY (seen from qwen0.5b).
    word = re.match(r"[^\W_]+", loose)
    if word:
        spelled = [c for c in choices if isinstance(c, str) and _abbreviates(c, word.group(0))]
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


def _loads_lenient(text: str, openers: str = "{[") -> Any:
    """JSON, or the JSON-ish things models write around and instead of it.

    Prose before or after the value, Python reprs (single quotes, True/None), unquoted keys,
    trailing commas, comments and a value cut off before its closing brackets are all repaired.
    `openers` says which brackets may start the value (the caller knows the type it wants).
    """
    import json

    text = _unwrap_text(text)
    try:
        return json.loads(text, parse_constant=str)  # NaN/Infinity stay the words written
    except (ValueError, RecursionError):
        pass
    start = min((i for i in map(text.find, openers) if i >= 0), default=-1)
    if start < 0:
        raise ValueError(f"expected JSON, got {_brief(text)}")
    try:
        return json.loads(_repair_json(text[start:]), parse_constant=str)
    except (ValueError, RecursionError):
        raise ValueError(f"expected JSON, got {_brief(text)}") from None


_JSON_WORDS = {"True": "true", "False": "false", "None": "null"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


def _repair_json(text: str) -> str:
    """Rewrite the JSON-like value at the start of `text` as JSON; the text after it is dropped.

    One pass over the characters, so string contents are never mistaken for structure: every
    quoted string (single or double quotes, JSON or Python escapes) is re-emitted by
    `json.dumps`; bare words become JSON words (`True` -> `true`) or quoted keys; commas before
    a closing bracket and `//`, `#`, `/* */` comments are dropped; brackets left open are closed.
    """
    import json

    out: list[str] = []
    closers: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            chars: list[str] = []
            i += 1
            while i < n and text[i] != c:
                if text[i] == "\\" and i + 1 < n:
                    i, char = _read_escape(text, i + 1)
                else:
                    i, char = i + 1, text[i]
                chars.append(char)
            out.append(json.dumps("".join(chars)))
            i += 1
        elif c in "{[":
            closers.append("}" if c == "{" else "]")
            out.append(c)
            i += 1
        elif c in "}]":
            i += 1
            if closers:
                out.append(closers.pop())  # a mismatched closer counts as the right one
            if not closers:
                break  # the value is complete; what follows is prose
        elif c == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == ",":
            if text[i + 1 :].lstrip()[:1] not in ("}", "]", ""):
                out.append(c)
            i += 1
        elif c.isalpha() or c == "_":
            match = re.match(r"\w+", text[i:])
            word = match.group(0) if match else c
            i += len(word)
            if text[i:].lstrip().startswith(":"):
                out.append(json.dumps(word))  # an unquoted key
            else:
                out.append(_JSON_WORDS.get(word, word))
        else:
            out.append(c)
            i += 1
    out.extend(reversed(closers))
    return "".join(out)


def _read_escape(text: str, i: int) -> tuple[int, str]:
    """Decode the escape whose letter is at `text[i]` (after a backslash): (next index, char)."""
    c = text[i]
    size = {"x": 2, "u": 4, "U": 8}.get(c)
    if size is not None:
        digits = text[i + 1 : i + 1 + size]
        if len(digits) == size and all(d in "0123456789abcdefABCDEF" for d in digits):
            code = int(digits, 16)
            if code <= 0x10FFFF:
                return i + 1 + size, chr(code)
        return i + 1, c
    return i + 1, _ESCAPES.get(c, c)


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


def _split_list_text(text: str) -> list[str]:
    """Bullets, numbered lines or comma-separated values, for lists not written as JSON."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1:
        return [re.sub(_LIST_MARKER, "", ln) for ln in lines]
    one = re.sub(_LIST_MARKER, "", text.strip())
    if one.startswith("[") and one.endswith("]"):
        one = one[1:-1]  # `[ABBR, NUM]`: brackets around bare words
    return [part.strip() for part in one.split(",") if part.strip()] if one else []


def _to_sequence(value: Any, tp: Any) -> Any:
    args = get_args(tp)
    if isinstance(value, str):
        try:
            items: list[Any] = list(_to_json_container(value, list))
        except ValueError:
            items = list(_split_list_text(value))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"expected a list, got {_brief(value)}")
    if get_origin(tp) is list:
        item_tp = args[0] if args else Any
        return [_coerce_value(v, item_tp) for v in items]
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce_value(v, args[0]) for v in items)
    if args and len(items) != len(args):
        raise ValueError(f"expected {len(args)} items, got {len(items)}")
    return tuple(_coerce_value(v, t) for v, t in zip(items, args, strict=False))


def _to_object(value: Any, tp: Any) -> Any:
    data = _to_json_container(value, dict)
    fields = object_fields(tp)
    lowered = {str(k).lower(): v for k, v in data.items()}
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
