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

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .coerce import _coerce_value, _loads_lenient, coerce, describe, render, to_jsonable
from .errors import ParseError
from .signature import Field, Signature

Message = dict[str, str]
Demo = Mapping[str, Any]

NOT_SUPPLIED = "Not supplied for this particular example."
_MARKER = r"(?m)^[ \t]*\[\[\s*#+\s*(\w+)\s*#+\s*\]\]"
"""A field marker at the start of a line, however spaced (`[[## answer ##]]`); the value may
follow on the same line."""

_ECHOED_MARKER = r"[ \t]*\[\[\s*(#*)\s*(\w+)\s*#*\s*\]\][ \t]*"
"""A marker anywhere in a line, `#`s or not (`"[[ ## answer ## ]] NUM`, `[[ answer ]]`): what small
models echo into a bare answer after a quote, a fence or mid-line."""


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
    convert: Callable[[Any, Any], Any],
    missing: Callable[[str], str],
) -> dict[str, Any]:
    """Output field -> typed value from `raw` (keyed by lower-cased name); ParseError if not."""
    parsed: dict[str, Any] = {}
    for field in signature.outputs:
        expected = describe(field.annotation)
        if field.name.lower() not in raw:
            raise ParseError(missing(field.name), field=field.name, expected=expected, raw=text)
        try:
            parsed[field.name] = convert(raw[field.name.lower()], field.annotation)
        except ValueError as exc:
            raise ParseError(str(exc), field=field.name, expected=expected, raw=text) from None
    return parsed


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
                "All interactions will be structured in the following way, "
                "with the appropriate values filled in.",
                "",
                structure,
                "In adhering to this structure, your objective is: ",
                _indent(signature.instructions),
            ]
        )

    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str:
        body = _sections([(f.name, _value(values, f.name)) for f in signature.inputs])
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
        body = _sections([(f.name, _value(demo, f.name)) for f in signature.outputs])
        return f"{body}\n\n{_marker('completed')}"

    def parse(self, signature: Signature, text: str) -> dict[str, Any]:
        sections = _split_sections(text)
        outputs = signature.outputs
        if not sections and len(outputs) == 1:
            # A bare answer with no field markers (at most a completed marker): small models do
            # this for one-field outputs.
            # This is also where an echoed marker lands that does not start its line.
            names = [f.name for f in (*signature.inputs, *outputs)]
            sections = {outputs[0].name.lower(): remove_markers(text, names)}
        return _parse_fields(
            signature,
            sections,
            text,
            coerce,
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
                "All interactions will be structured in the following way, "
                "with the appropriate values filled in.",
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
        body = _sections([(f.name, _value(values, f.name)) for f in signature.inputs])
        keys = ", ".join(f"`{f.name}`" for f in signature.outputs)
        return f"{body}\n\nRespond with a JSON object with the keys {keys}, in that order."

    def assistant_message(self, signature: Signature, demo: Demo) -> str:
        import json

        values = {
            f.name: to_jsonable(demo[f.name]) if f.name in demo else NOT_SUPPLIED
            for f in signature.outputs
        }
        return json.dumps(values, ensure_ascii=False, indent=2)

    def parse(self, signature: Signature, text: str) -> dict[str, Any]:
        outputs = signature.outputs
        try:
            data = _loads_lenient(text, "{")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if len(outputs) != 1:
                raise ParseError(
                    "expected a JSON object", field=None, expected="JSON object", raw=text
                )
            data = {outputs[0].name: text}
        lowered = {str(k).lower(): v for k, v in data.items()}
        return _parse_fields(
            signature, lowered, text, _coerce_value, lambda name: f"the key {name!r} is missing"
        )


def remove_markers(text: str, names: Sequence[str] = ()) -> str:
    """`text` without field markers: every `[[ ## x ## ]]` wherever it stands, and `[[ x ]]`
    without `#`s where x is `completed` or one of `names` (other double-bracketed words, such
    as wiki links, are the answer's own). Repeated until none is left, since removing a marker
    can close another around it."""
    known = {"completed", *(n.lower() for n in names)}

    def drop(match: re.Match[str]) -> str:
        whole = match.group(0)
        if not match.group(1) and match.group(2).lower() not in known:
            return whole
        return " " if whole[0] in " \t" and whole[-1] in " \t" else ""  # keep words apart

    while True:
        cleaned = re.sub(_ECHOED_MARKER, drop, text)
        if cleaned == text:
            return cleaned.strip()
        text = cleaned


def _split_sections(text: str) -> dict[str, str]:
    """Lower-cased field name -> raw section text; the first of a repeated field wins."""
    sections: dict[str, str] = {}
    matches = list(re.finditer(_MARKER, text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match.group(1).lower()
        if name != "completed":
            sections.setdefault(name, text[match.end() : end].strip())
    return sections


def _value(values: Mapping[str, Any], name: str) -> str:
    return render(values[name]) if name in values else NOT_SUPPLIED


def _indent(text: str) -> str:
    return "\n".join("        " + line if line else line for line in text.splitlines())


ADAPTERS: dict[str, Adapter] = {"chat": ChatAdapter(), "json": JSONAdapter()}
"""Adapters by the name a lock file and generated code use for them (stateless, shared)."""


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(
            f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
