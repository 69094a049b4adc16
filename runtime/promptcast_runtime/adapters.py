"""Message formats: how a signature, demos and inputs become chat messages, and how replies parse.

The field-marker format follows DSPy's ChatAdapter (`[[ ## name ## ]]` sections, a system
message listing the fields, demos as user/assistant turns, a `completed` marker) with two
deliberate differences that matter for small models:

- type constraints live in the field list of the system message, never next to the value
  placeholder, so a model that copies the template does not copy a note into its answer;
- parsing is lenient (missing completed marker, repeated fields, a bare answer with no markers
  for a single-output step) and never costs a second LM call.
"""

from __future__ import annotations

import contextlib
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, get_origin

from .coerce import (
    _coerce_value,
    _Final,
    _is_object,
    _loads_lenient,
    _optional_inner,
    _unfence,
    coerce,
    declared_order,
    describe,
    lower_keys,
    render,
    strip_reasoning,
    to_jsonable,
)
from .dspy_adapter import DSPyChatAdapter
from .errors import ParseError
from .signature import REASONING, Field, Signature

Message = dict[str, str]
Demo = Mapping[str, Any]

NOT_SUPPLIED = "Not supplied for this particular example."
_MARKER = r"(?m)^[ \t]*\[\[\s*#+\s*(\w+)\s*#+\s*\]\]"
"""A field marker at the start of a line, however spaced (`[[## answer ##]]`); the value may
follow on the same line."""

_ECHOED_MARKER = r"(?<![ \t])[ \t]*\[\[\s*(?:(#+)\s*)?(\w+)\s*(?:#+\s*)?\]\][ \t]*"
"""A marker anywhere in a line, `#`s or not (`"[[ ## answer ## ]] NUM`, `[[ answer ]]`): what small
models echo into a bare answer after a quote, a fence or mid-line. (Linear: the spaces before
it are taken only from the start of their run, and no two repeats inside it can match the
same characters, so 2,000 spaces around a `[[` cost 2,000 steps, not billions.)"""
_MAX_MARKER_PASSES = 8
"""Markers nested deeper than this (each removal closing another around it) are no answer."""


class Adapter(Protocol):
    """Renders a call into messages and parses the completion; one instance serves all threads.

    `request_params` are sent with every call in this format (e.g. JSON mode); the call's own
    parameters override them.
    """

    name: str
    request_params: Mapping[str, Any]

    def format(
        self, signature: Signature, demos: Sequence[Demo], inputs: Mapping[str, Any]
    ) -> list[Message]: ...

    def prefix(self, signature: Signature, demos: Sequence[Demo]) -> list[Message]:
        """The messages before the call's own inputs: the same for every call of a step."""
        ...

    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str: ...

    def parse(self, signature: Signature, text: str) -> dict[str, Any]: ...


def _marker(name: str) -> str:
    return f"[[ ## {name} ## ]]"


def _field_list(title: str, fields: Sequence[Field]) -> str:
    lines = [title]
    for i, field in enumerate(fields, 1):
        line = f"{i}. `{field.name}` ({describe(field.annotation)})"
        if field.description:
            line += f": {field.description}"
        lines.append(line)
    return "\n".join(lines)


def _sections(values: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join(f"{_marker(name)}\n{value}" for name, value in values)


class _TurnsAdapter(ABC):
    """A system message describing the task, then each demo as a user/assistant turn pair,
    then the call's inputs as the last user turn: the shape both formats share."""

    def format(
        self, signature: Signature, demos: Sequence[Demo], inputs: Mapping[str, Any]
    ) -> list[Message]:
        messages = self.prefix(signature, demos)
        messages.append({"role": "user", "content": self.user_message(signature, inputs)})
        return messages

    def prefix(self, signature: Signature, demos: Sequence[Demo]) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": self.system_message(signature)}]
        for demo in demos:
            messages.append({"role": "user", "content": self.user_message(signature, demo)})
            messages.append(
                {"role": "assistant", "content": self.assistant_message(signature, demo)}
            )
        return messages

    @abstractmethod
    def system_message(self, signature: Signature) -> str: ...

    @abstractmethod
    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str: ...

    @abstractmethod
    def assistant_message(self, signature: Signature, demo: Demo) -> str: ...


def _parse_fields(
    signature: Signature,
    raw: Mapping[str, Any],
    text: str,
    convert: Callable[[Any, Field], Any],
    missing: Callable[[str], str],
) -> dict[str, Any]:
    """Output field -> typed value from `raw` (keyed by lower-cased name); ParseError if not.

    A raw value may be a list: the same field written several times. Copies that convert to
    the same value are one answer; copies that disagree are a ParseError (which one the model
    meant is a guess). An empty value, a copied placeholder (`{answer}`) or the demo filler is
    no answer, except for a chain-of-thought `reasoning`, which may be left empty.
    """
    parsed: dict[str, Any] = {}
    for field in signature.outputs:
        found = raw.get(field.name.lower(), _ABSENT)
        copies = (
            found if isinstance(found, list) and found and isinstance(found[0], _Copy) else [found]
        )
        values = [c.value if isinstance(c, _Copy) else c for c in copies]
        answers = [v for v in values if v is not _ABSENT and not _no_answer(v, field)]
        if not answers:
            if any(v is not _ABSENT for v in values) and field == REASONING:
                parsed[field.name] = ""
                continue
            reason = missing(field.name) if all(v is _ABSENT for v in values) else "it is empty"
            raise ParseError(
                reason, field=field.name, expected=describe(field.annotation), raw=text
            )
        if field == REASONING:
            answers = answers[:1]  # a draft written twice: the caller never sees it anyway
        try:
            results = [convert(v, field) for v in answers]
        except ValueError as exc:
            raise ParseError(
                str(exc), field=field.name, expected=describe(field.annotation), raw=text
            ) from None
        if any(r != results[0] or type(r) is not type(results[0]) for r in results[1:]):
            raise ParseError(
                "written more than once, with different values", field=field.name,
                expected=describe(field.annotation), raw=text,
            )  # fmt: skip
        parsed[field.name] = results[0]
    return parsed


class _Copy:
    """One of several sections of the same field (a list of raw values is ambiguous with a
    JSON list value, so copies are wrapped)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_ABSENT: Any = object()


def _no_answer(value: Any, field: Field) -> bool:
    """`value` holds no answer for `field`: empty text, a copied `{field}` placeholder, the
    filler of an incomplete demo."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return not text or text in ("{" + field.name + "}", NOT_SUPPLIED)


def _unwrap_field(text: str, name: str) -> str:
    """Field text without a wrapper that names the field: `answer: Paris`, `**Answer:** Paris`,
    `<answer>Paris</answer>` (after any fence or reasoning block around it)."""
    text = _unfence(strip_reasoning(text).strip())
    lowered = text.lower()
    opening, closing = f"<{name.lower()}>", f"</{name.lower()}>"
    if (
        lowered.startswith(opening)
        and lowered.endswith(closing)
        and len(text) > len(opening + closing)
    ):
        text = text[len(opening) : -len(closing)].strip()
    prefix = re.match(_label_pattern(name), text)
    if prefix and text[prefix.end() :].strip():
        text = text[prefix.end() :].strip()
    return text


@functools.lru_cache(maxsize=256)
def _label_pattern(name: str) -> str:
    """`**Final answer:**`-style label of field `name` (built once per name: calls are hot)."""
    label = r"[ _]".join(map(re.escape, name.split("_")))
    return rf"(?i)\**(?:final[ \t]+)?{label}\**[ \t]*:\**[ \t]*"


def _text_value(text: str, field: Field) -> Any:
    """A field's value from text: wrappers naming the field removed, then `coerce`.

    A JSON object whose one key is the field's name (`{"answer": "Paris"}`) is a wrapper too:
    always for a `str` field; for other types only where the object does not fit the type as
    written (a `dict` field may hold a key of its own name, as its demos render it).
    """
    text = _unwrap_field(text, field.name)
    tp = field.annotation
    if not text and field != REASONING:
        raise ValueError("no answer (empty)")
    if not text.startswith("{"):
        return coerce(text, tp)
    try:
        data = _loads_lenient(text, "{")
    except _Final:
        raise
    except ValueError:
        if get_origin(tp) is dict or _is_object(tp):
            raise  # reading the same text as the object again would fail the same way
        return coerce(text, tp)
    wrapped = (
        isinstance(data, dict)
        and len(data) == 1
        and str(next(iter(data))).lower() == field.name.lower()
    )
    if not wrapped:
        return coerce(text, tp)
    inner = next(iter(data.values()))
    if tp is str or _optional_inner(tp) is str:
        return _coerce_value(inner, tp)
    try:
        return coerce(text, tp)
    except _Final:
        raise
    except ValueError:
        return _coerce_value(inner, tp)


def _json_value(value: Any, field: Field) -> Any:
    """A field's value from a decoded JSON value; text in it is parsed like a section's."""
    if isinstance(value, str) and field.annotation is not str:
        return _text_value(value, field)
    return _coerce_value(value, field.annotation)


def _named_lines(signature: Signature, text: str) -> dict[str, Any]:
    """Outputs written as `name: value` lines (`**Quantity:** 3`) instead of field markers:
    lower-cased name -> copies of its text. Empty unless every output field is there."""
    names = {f.name.lower(): f for f in signature.outputs}
    labels = "|".join(r"[ _]".join(map(re.escape, n.split("_"))) for n in names)
    pattern = rf"(?im)^[ \t]*(?:[-*][ \t]+)?\**({labels})\**[ \t]*:\**[ \t]*"
    matches = list(re.finditer(pattern, text))
    found: dict[str, list[_Copy]] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = re.sub(r"[ _]", "_", match.group(1).lower())
        found.setdefault(name, []).append(_Copy(text[match.end() : end].strip()))
    return found if set(found) == set(names) else {}


def _json_fields(signature: Signature, text: str) -> dict[str, Any] | None:
    """Outputs written as one JSON object (fenced or not) where markers were asked for:
    lower-cased key -> decoded value, if every output field is a key; else None."""
    try:
        data = _loads_lenient(text, "{")
    except _Final:
        raise
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    lowered = lower_keys(data)
    if all(f.name.lower() in lowered for f in signature.outputs):
        return lowered
    return None


class ChatAdapter(_TurnsAdapter):
    """The `[[ ## field ## ]]` format."""

    name = "chat"
    request_params: Mapping[str, Any] = {}

    def system_message(self, signature: Signature) -> str:
        structure = _sections(
            [(f.name, "{" + f.name + "}") for f in (*signature.inputs, *signature.outputs)]
            + [("completed", "")]
        ).rstrip()
        return "\n".join(
            [
                _field_list("Your input fields are:", signature.inputs),
                _field_list("Your output fields are:", signature.outputs),
                (
                    "All interactions will be structured in the following way, "
                    "with the appropriate values filled in."
                ),
                "",
                structure,
                "In adhering to this structure, your objective is: ",
                _indent(signature.instructions),
            ]
        )

    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str:
        body = _sections([(f.name, _value(values, f)) for f in signature.inputs])
        first = signature.outputs[0].name
        rest = ", then ".join(f"`{_marker(f.name)}`" for f in signature.outputs[1:])
        order = f"starting with the field `{_marker(first)}`"
        if rest:
            order += f", then {rest}"
        return (
            f"{body}\n\nRespond with the corresponding output fields, {order}, "
            f"and then ending with the marker for `{_marker('completed')}`."
        )

    def assistant_message(self, signature: Signature, demo: Demo) -> str:
        body = _sections([(f.name, _value(demo, f)) for f in signature.outputs])
        return f"{body}\n\n{_marker('completed')}"

    def parse(self, signature: Signature, text: str) -> dict[str, Any]:
        outputs = signature.outputs
        first = outputs[0]
        body = strip_reasoning(text)  # a draft in <think> is never the answer
        if not body.strip():
            raise ParseError(
                "the completion is empty" if not text.strip() else "the completion is only a"
                " reasoning block", field=first.name, expected=describe(first.annotation),
                raw=text,
            )  # fmt: skip
        sections: Mapping[str, Any] = _split_sections(body)
        convert: Callable[[Any, Field], Any] = _text_value
        if not sections:
            names = [f.name for f in (*signature.inputs, *outputs)]
            cleaned, complete = _remove_markers(body, names)
            if not complete:
                raise ParseError(
                    "field markers nested too deeply", field=first.name,
                    expected=describe(first.annotation), raw=text,
                )  # fmt: skip
            try:
                decoded = _json_fields(signature, cleaned) if len(outputs) > 1 else None
            except ValueError as exc:
                raise ParseError(
                    str(exc), field=first.name, expected=describe(first.annotation), raw=text
                ) from None
            placeholders = [f"{{{f.name}}}" for f in outputs if f"{{{f.name}}}" in cleaned]
            if placeholders:  # the template copied, not filled in
                raise ParseError(
                    f"a copied placeholder {placeholders[0]} instead of a value", field=first.name,
                    expected=describe(first.annotation), raw=text,
                )  # fmt: skip
            if decoded is not None:  # all outputs as one JSON object
                sections, convert = decoded, _json_value
            elif len(outputs) > 1:
                sections = _named_lines(signature, cleaned)  # `name: value` lines
            else:
                # A bare answer with no field markers (at most a completed marker): small
                # models do this for one-field outputs. This is also where an echoed marker
                # lands that does not start its line.
                sections = {first.name.lower(): cleaned}
        return _parse_fields(
            signature,
            sections,
            text,
            convert,
            lambda name: f"the `{_marker(name)}` section is missing",
        )


class JSONAdapter(_TurnsAdapter):
    """Outputs as one JSON object (inputs still as field markers), asking for JSON mode.

    For models that follow JSON better than markers, and for structured outputs. The endpoint
    is asked for `response_format={"type": "json_object"}`; parsing still repairs what a model
    writes around or instead of strict JSON (fences, prose, trailing commas, single quotes).
    """

    name = "json"
    request_params: Mapping[str, Any] = {"response_format": {"type": "json_object"}}

    def system_message(self, signature: Signature) -> str:
        inputs = _sections([(f.name, "{" + f.name + "}") for f in signature.inputs])
        keys = ",\n".join(f'  "{f.name}": {{{f.name}}}' for f in signature.outputs)
        return "\n".join(
            [
                _field_list("Your input fields are:", signature.inputs),
                _field_list("Your output fields are:", signature.outputs),
                (
                    "All interactions will be structured in the following way, "
                    "with the appropriate values filled in."
                ),
                "",
                "Inputs will have the following structure:",
                "",
                inputs,
                "",
                "Outputs will be a JSON object with the following fields.",
                "",
                "{\n" + keys + "\n}",
                "In adhering to this structure, your objective is: ",
                _indent(signature.instructions),
            ]
        )

    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str:
        body = _sections([(f.name, _value(values, f)) for f in signature.inputs])
        keys = ", ".join(f"`{f.name}`" for f in signature.outputs)
        return f"{body}\n\nRespond with a JSON object with the keys {keys}, in that order."

    def assistant_message(self, signature: Signature, demo: Demo) -> str:
        import json

        values = {
            f.name: declared_order(to_jsonable(demo[f.name]), f.annotation)
            if f.name in demo
            else NOT_SUPPLIED
            for f in signature.outputs
        }
        return json.dumps(values, ensure_ascii=False, indent=2)

    def parse(self, signature: Signature, text: str) -> dict[str, Any]:
        outputs = signature.outputs
        first = outputs[0]
        body = strip_reasoning(text)  # a draft object in <think> is never the answer
        if not body.strip():
            raise ParseError(
                "the completion is empty" if not text.strip() else "the completion is only a"
                " reasoning block", field=first.name, expected="JSON object", raw=text,
            )  # fmt: skip
        reason = "expected a JSON object"
        try:
            data = _loads_lenient(body, "{")
        except ValueError as exc:
            data, reason = None, str(exc)
        if isinstance(data, dict):
            lowered = lower_keys(data) if _keys_agree(data) else None
            if lowered is None:
                raise ParseError(
                    "a key is given twice with different values", field=None,
                    expected="JSON object", raw=text,
                )  # fmt: skip
            # The value itself where a wrapper object was asked for (`{"name": ..}` for an
            # output `person`): only for a structured output that reads it whole.
            structured = get_origin(first.annotation) is dict or _is_object(first.annotation)
            if len(outputs) == 1 and first.name.lower() not in lowered and structured:
                with contextlib.suppress(ValueError):
                    return {first.name: _coerce_value(data, first.annotation)}
            return _parse_fields(
                signature, lowered, text, _json_value, lambda name: f"the key {name!r} is missing"
            )
        stripped = _unfence(body.strip())
        if _split_sections(body):
            # Field markers where JSON was asked for: read them as the chat format does.
            return ChatAdapter().parse(signature, text)
        if len(outputs) != 1 or stripped.startswith("{"):
            raise ParseError(reason, field=None, expected="JSON object", raw=text)
        cleaned, _ = _remove_markers(body, [f.name for f in (*signature.inputs, *outputs)])
        return _parse_fields(
            signature,
            {first.name.lower(): cleaned},
            text,
            _text_value,
            lambda name: f"the key {name!r} is missing",
        )


def _keys_agree(data: Mapping[Any, Any]) -> bool:
    try:
        lower_keys(data)
    except ValueError:
        return False
    return True


def remove_markers(text: str, names: Sequence[str] = ()) -> str:
    """`text` without field markers: every `[[ ## x ## ]]` wherever it stands, and `[[ x ]]`
    without `#`s where x is `completed` or one of `names` (other double-bracketed words, such
    as wiki links, are the answer's own). Repeated (a few times at most) since removing a
    marker can close another around it."""
    return _remove_markers(text, names)[0]


def _remove_markers(text: str, names: Sequence[str] = ()) -> tuple[str, bool]:
    """`remove_markers`, and whether no marker is left (False: nested too deeply)."""
    known = {"completed", *(n.lower() for n in names)}

    def drop(match: re.Match[str]) -> str:
        whole = match.group(0)
        if not match.group(1) and match.group(2).lower() not in known:
            return whole
        return " " if whole[0] in " \t" and whole[-1] in " \t" else ""  # keep words apart

    for _ in range(_MAX_MARKER_PASSES):
        cleaned = re.sub(_ECHOED_MARKER, drop, text)
        if cleaned == text:
            return cleaned.strip(), True
        text = cleaned
    return text.strip(), re.sub(_ECHOED_MARKER, drop, text) == text


def _split_sections(text: str) -> dict[str, Any]:
    """Lower-cased field name -> raw section text, or a list of `_Copy`s for a field written
    more than once (the parser decides whether the copies agree)."""
    sections: dict[str, Any] = {}
    matches = list(re.finditer(_MARKER, text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match.group(1).lower()
        if name == "completed":
            continue
        value = text[match.end() : end].strip()
        if name in sections:
            previous = sections[name]
            copies = previous if isinstance(previous, list) else [_Copy(previous)]
            sections[name] = [*copies, _Copy(value)]
        else:
            sections[name] = value
    return sections


def _value(values: Mapping[str, Any], field: Field) -> str:
    name = field.name
    return render(values[name], field.annotation) if name in values else NOT_SUPPLIED


def _indent(text: str) -> str:
    return "\n".join("        " + line if line else line for line in text.splitlines())


ADAPTERS: dict[str, Adapter] = {
    "chat": ChatAdapter(),
    "json": JSONAdapter(),
    "dspy": DSPyChatAdapter(repair=ChatAdapter()),
}
"""Adapters by the name a lock file and generated code use for them (stateless, shared).
"dspy" renders DSPy 3.4.1's ChatAdapter messages byte for byte (`dspy_adapter.py`), for
programs imported with `promptcast from-dspy`."""


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(
            f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
