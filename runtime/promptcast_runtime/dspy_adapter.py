"""`adapter="dspy"`: the messages DSPy 3.4.1's `ChatAdapter` sends, byte for byte, and its parse.

Why a second field-marker format: a program imported from DSPy (`promptcast from-dspy`) was
optimized, and its demos chosen, against DSPy's exact prompt. Copying instructions and demos out
by hand into another prompt shape loses accuracy (DSPy #8042: 0.238 inside DSPy, 5% outside), so
an imported program keeps DSPy's shape until it is re-optimized under our own `chat` adapter.

Reproduced from DSPy 3.4.1 (`dspy/adapters/chat_adapter.py`, `base.py`, `utils.py`):

- the system message: the numbered field lists with `get_annotation_name` type names and
  descriptions (a description equal to DSPy's placeholder `${name}` -- every field declared
  without `desc` -- is empty), the field structure with each output's type note
  (`# note: the value you produce must ...`, JSON schemas as pydantic writes them, `type` first),
  and the objective indented by eight spaces;
- demos: complete ones (every field, reasoning included, present and not None) after the
  incomplete ones, which get DSPy's prefix and "Not supplied for this particular example. ";
- values: text as is, a list for a `str` field as DSPy's numbered «blob» list, structures as
  `json.dumps(..., ensure_ascii=False)`, other scalars as `str()` (so `True`, `3.0`);
- the closing instruction with each non-str output's "(must be formatted as a valid Python T)".

Parsing first does what `ChatAdapter.parse` does (lines starting with an exact
`[[ ## name ## ]]` header, the first section of each output, `parse_value`'s rules for text,
`Literal` and `Enum`; optional outputs default to None). Where DSPy would fail and spend a second
call on its JSONAdapter fallback, this adapter instead repairs leniently with the `chat`
adapter's parser, and never calls again; an ambiguous answer (an output written twice with
different values, two labels, a negation) is a `ParseError` carrying the raw text.

When DSPy changes its ChatAdapter, this module is what changes: `DSPY_VERSION` names the release
reproduced, and `bench/dspy_identical.py` regenerates the golden fixtures that
`tests/test_dspy_adapter.py` compares against (run it in `bench/.venv-dspy` after bumping DSPy).

Stdlib only; the JSON schema of a pydantic model comes from the model's own
`model_json_schema()` (the user's pydantic, already imported by their types), never from an
import here.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, Union, get_args, get_origin

from .coerce import (
    _coerce_value,
    _is_pydantic,
    declared_order,
    describe,
    to_jsonable,
)
from .errors import ParseError
from .signature import REASONING, Field, Signature

DSPY_VERSION = "3.4.1"
"""The DSPy release whose ChatAdapter this module reproduces."""

Message = dict[str, str]
Demo = Mapping[str, Any]

INCOMPLETE_PREFIX = (
    "This is an example of the task, though some input or output fields are not supplied."
)
MISSING_IN_DEMO = "Not supplied for this particular example. "
MISSING_IN_COMPLETE = "Not supplied for this conversation history message. "
_HEADER = r"\[\[ ## (\w+) ## \]\]"
"""DSPy's `field_header_pattern`: exactly spaced, matched at the start of a stripped line."""


class _Repair(Protocol):
    def parse(self, signature: Signature, text: str) -> dict[str, Any]: ...


class DSPyChatAdapter:
    """DSPy 3.4.1's ChatAdapter format, with lenient repair in place of its fallback call.

    `repair` is the parser used where DSPy's own parse fails (the `chat` adapter's: it reads
    the same markers, leniently); it is handed in so this module needs nothing from
    `adapters.py`, which registers it.
    """

    name = "dspy"
    request_params: Mapping[str, Any] = {}

    def __init__(self, repair: _Repair) -> None:
        self._repair = repair

    # --- rendering -------------------------------------------------------------------------

    def format(
        self, signature: Signature, demos: Sequence[Demo], inputs: Mapping[str, Any]
    ) -> list[Message]:
        messages = self.prefix(signature, demos)
        messages.append({"role": "user", "content": self.user_message(signature, inputs)})
        return messages

    def prefix(self, signature: Signature, demos: Sequence[Demo]) -> list[Message]:
        """System message, then demos: DSPy's incomplete demos first, then the complete ones."""
        messages: list[Message] = [{"role": "system", "content": system_message(signature)}]
        names = [f.name for f in (*signature.inputs, *signature.outputs)]
        complete: list[Demo] = []
        incomplete: list[Demo] = []
        for demo in demos:
            if all(demo.get(n) is not None for n in names):
                complete.append(demo)
            elif any(f.name in demo for f in signature.inputs) and any(
                f.name in demo for f in signature.outputs
            ):
                incomplete.append(demo)  # DSPy drops a demo with no input or no output
        for demo in incomplete:
            messages.append(
                {"role": "user", "content": _user_content(signature, demo, INCOMPLETE_PREFIX)}
            )
            messages.append(
                {
                    "role": "assistant",
                    "content": _assistant_content(signature, demo, MISSING_IN_DEMO),
                }
            )
        for demo in complete:
            messages.append({"role": "user", "content": _user_content(signature, demo)})
            messages.append(
                {
                    "role": "assistant",
                    "content": _assistant_content(signature, demo, MISSING_IN_COMPLETE),
                }
            )
        return messages

    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str:
        """The call's own inputs and DSPy's closing instruction (its `main_request`)."""
        return _user_content(signature, values, requirements=True)

    # --- parsing ---------------------------------------------------------------------------

    def parse(self, signature: Signature, text: str) -> dict[str, Any]:
        """Output name -> value as `ChatAdapter.parse` would give it; where that fails, the
        lenient `chat` parse (no second call); `ParseError` for an ambiguous answer."""
        sections, answered = _dspy_sections(text)
        outputs = signature.outputs
        for field in outputs:
            copies = answered.get(field.name, [])
            if field != REASONING and len(set(copies)) > 1:
                raise ParseError(
                    "written more than once, with different values",
                    field=field.name,
                    expected=describe(field.annotation),
                    raw=text,
                )
        parsed: dict[str, Any] = {}
        for field in outputs:
            found = sections.get(field.name)
            if found is None:
                if _allows_none(field.annotation):
                    parsed[field.name] = None  # DSPy's apply_output_field_defaults
                    continue
                break
            try:
                parsed[field.name] = _dspy_value(found[0], field.annotation)
            except (ValueError, TypeError):
                break
        else:
            return parsed
        return self._repair.parse(signature, text)


def system_message(signature: Signature) -> str:
    """DSPy's `format_system_message`: field description, field structure, task description."""
    description = (
        f"Your input fields are:\n{_field_descriptions(signature.inputs)}\n"
        f"Your output fields are:\n{_field_descriptions(signature.outputs)}"
    )
    parts = [
        (
            "All interactions will be structured in the following way, with the appropriate"
            " values filled in."
        ),
        _with_values([(f.name, "{" + f.name + "}") for f in signature.inputs]),
        _with_values([(f.name, _type_note(f)) for f in signature.outputs]),
        "[[ ## completed ## ]]\n",
    ]
    structure = "\n\n".join(parts).strip()
    import textwrap  # here, not at import: a module without a dspy step never needs it

    instructions = textwrap.dedent(signature.instructions)
    objective = ("\n" + " " * 8).join(["", *instructions.splitlines()])
    task = f"In adhering to this structure, your objective is: {objective}"
    return f"{description}\n{structure}\n{task}"


def _description(field: Field) -> str:
    """The field's desc as DSPy shows it: the chain-of-thought `reasoning` and any field
    declared without a description carry DSPy's `${name}` placeholder, which shows as empty."""
    if field == REASONING or field.description == "${" + field.name + "}":
        return ""
    return field.description


def _field_descriptions(fields: Sequence[Field]) -> str:
    lines = [
        f"{i}. `{f.name}` ({annotation_name(f.annotation)}): {_description(f)}"
        for i, f in enumerate(fields, 1)
    ]
    return "\n".join(lines).strip()


def _with_values(pairs: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in pairs).strip()


def _type_note(field: Field) -> str:
    """DSPy's `translate_field_type` for an output field: `{name}` plus its type note."""
    tp = field.annotation
    if tp is str:
        note = ""
    elif tp is bool:
        note = "must be True or False"
    elif tp in (int, float):
        note = f"must be a single {tp.__name__} value"
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        note = "must be one of: " + "; ".join(str(m.value) for m in tp)
    elif get_origin(tp) is Literal:
        note = "must exactly match (no extra characters) one of: " + "; ".join(
            str(x) for x in get_args(tp)
        )
    else:
        import json

        schema = json.dumps(_type_first(json_schema(tp)), ensure_ascii=False)
        note = f"must adhere to the JSON schema: {schema}"
    suffix = f"        # note: the value you produce {note}" if note else ""
    return "{" + field.name + "}" + suffix


def _user_content(
    signature: Signature, values: Mapping[str, Any], prefix: str = "", requirements: bool = False
) -> str:
    parts = [prefix]
    for field in signature.inputs:
        if field.name in values:
            parts.append(f"[[ ## {field.name} ## ]]\n{format_value(field, values[field.name])}")
    if requirements:
        parts.append(_output_requirements(signature))
    parts.append("")
    return "\n\n".join(parts).strip()


def _assistant_content(signature: Signature, demo: Demo, missing: str) -> str:
    pairs = [
        (f.name, format_value(f, demo[f.name]) if f.name in demo else missing)
        for f in signature.outputs
    ]
    return _with_values(pairs) + "\n\n[[ ## completed ## ]]\n"


def _output_requirements(signature: Signature) -> str:
    def type_info(field: Field) -> str:
        if field.annotation is str:
            return ""
        return f" (must be formatted as a valid Python {annotation_name(field.annotation)})"

    order = ", then ".join(f"`[[ ## {f.name} ## ]]`{type_info(f)}" for f in signature.outputs)
    return (
        "Respond with the corresponding output fields, starting with the field "
        f"{order}, and then ending with the marker for `[[ ## completed ## ]]`."
    )


def format_value(field: Field, value: Any) -> str:
    """DSPy's `format_field_value`: how one value is written into a message."""
    if isinstance(value, list) and field.annotation is str:
        return _numbered(value)
    data = to_jsonable(value)
    if isinstance(data, (dict, list)):
        import json

        return json.dumps(declared_order(data, field.annotation), ensure_ascii=False)
    return str(data)


def _numbered(items: list[Any]) -> str:
    """DSPy's `_format_input_list_field_value`."""
    if not items:
        return "N/A"
    if len(items) == 1:
        return _blob(items[0])
    return "\n".join(f"[{i}] {_blob(item)}" for i, item in enumerate(items, 1))


def _blob(blob: Any) -> str:
    text = str(blob)
    if "\n" not in text and "«" not in text and "»" not in text:
        return f"«{text}»"
    return "«««\n    " + text.replace("\n", "\n    ") + "\n»»»"


# --- type names and JSON schemas, as DSPy (and pydantic under it) write them ---------------------


def annotation_name(tp: Any) -> str:
    """DSPy's `get_annotation_name`: `Literal['A', 'B']`, `list[str]`, `Union[int, NoneType]`."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is types.UnionType:
        origin = Union
    if origin is None:
        name = getattr(tp, "__name__", None)
        return name if isinstance(name, str) else str(tp)
    if origin is Literal:
        inner = ", ".join(_quoted(a) if isinstance(a, str) else annotation_name(a) for a in args)
        return f"{annotation_name(origin)}[{inner}]"
    return f"{annotation_name(origin)}[{', '.join(annotation_name(a) for a in args)}]"


def _quoted(text: str) -> str:
    """DSPy's `_quoted_string_for_literal_type_annotation`."""
    single, double = "'" in text, '"' in text
    if single and not double:
        return f'"{text}"'
    if single and double:
        return "'" + text.replace("'", "\\'") + "'"
    return f"'{text}'"


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema pydantic's `TypeAdapter(tp).json_schema()` writes for `tp` (the types a
    signature can declare: scalars, Literal, Enum, list/set/tuple/dict, Optional, pydantic
    models). A type whose schema this cannot reproduce is a `TypeError` naming it, never an
    approximation sent as if it were DSPy's."""
    if _is_pydantic(tp):
        return dict(tp.model_json_schema())  # a model at the top is its own schema, no $ref
    defs: dict[str, Any] = {}
    schema = _schema(tp, defs)
    if defs:
        schema = {**schema, "$defs": dict(sorted(defs.items()))}
    return schema


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp is Any:
        return {}
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Literal:
        return _literal_schema(list(args))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        defs[tp.__name__] = {"enum": values, "title": tp.__name__, **_value_type(values)}
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if _is_pydantic(tp):
        model = dict(tp.model_json_schema())
        defs.update(model.pop("$defs", {}))
        defs[tp.__name__] = model
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if origin in (list, set, frozenset) or tp in (list, set, frozenset):
        items = _schema(args[0], defs) if args else {}
        schema: dict[str, Any] = {"items": items, "type": "array"}
        if origin in (set, frozenset) or tp in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"items": _schema(args[0], defs), "type": "array"}
        return {
            "maxItems": len(args),
            "minItems": len(args),
            "prefixItems": [_schema(a, defs) for a in args],
            "type": "array",
        }
    if origin is dict or tp is dict:
        if args and args[0] is not str:
            raise TypeError(f"adapter 'dspy' cannot reproduce DSPy's schema for {tp!r}")
        value = args[1] if args else Any
        if value is Any:
            return {"additionalProperties": True, "type": "object"}
        return {"additionalProperties": _schema(value, defs), "type": "object"}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema(a, defs) for a in args]}
    raise TypeError(
        f"adapter 'dspy' cannot reproduce DSPy's JSON schema for {tp!r}: use a pydantic model,"
        " a scalar, Literal, Enum, list, tuple, dict or Optional, or the 'chat' adapter"
    )


def _literal_schema(values: list[Any]) -> dict[str, Any]:
    if len(values) == 1:
        return {"const": values[0], **_value_type(values)}
    return {"enum": values, **_value_type(values)}


def _value_type(values: list[Any]) -> dict[str, Any]:
    kinds = {type(v) for v in values}
    if len(kinds) != 1:
        return {}
    kind = kinds.pop()
    names = {str: "string", int: "integer", bool: "boolean", float: "number"}
    return {"type": names[kind]} if kind in names else {}


def _type_first(value: Any) -> Any:
    """DSPy's `move_type_to_front`: keys sorted, `type` first, recursively."""
    if isinstance(value, Mapping):
        keys = sorted(value, key=lambda k: (k != "type", k))
        return {k: _type_first(value[k]) for k in keys}
    if isinstance(value, list):
        return [_type_first(v) for v in value]
    return value


# --- parsing, as ChatAdapter.parse does it ------------------------------------------------------


def _dspy_sections(text: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Field name -> the text of each of its sections, in order (DSPy keeps the first); and the
    same for the sections before the first `completed` marker, where two different copies of a
    field are two answers. (What follows the marker is the model running on, often into an
    invented next turn: DSPy ignores it, and so does the ambiguity check.)"""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        match = re.match(_HEADER, line.strip())
        if match:
            rest = line[match.end() :].strip()
            sections.append((match.group(1), [rest] if rest else []))
        else:
            sections[-1][1].append(line)
    found: dict[str, list[str]] = {}
    answered: dict[str, list[str]] = {}
    done = False
    for name, lines in sections:
        done = done or name == "completed"
        if name is not None:
            value = "\n".join(lines).strip()
            found.setdefault(name, []).append(value)
            if not done:
                answered.setdefault(name, []).append(value)
    return found, answered


def _allows_none(tp: Any) -> bool:
    if tp is None or tp is type(None):
        return True
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def _dspy_value(text: str, tp: Any) -> Any:
    """DSPy's `parse_value` for text, `Literal` and `Enum` (its exact rules: no case folding,
    no label stripping); for other types the runtime's strict-on-ambiguity coercion, which
    accepts the JSON and Python literals DSPy's reads accept."""
    if tp is str:
        return text
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if member.value == text:
                return member
        if text in tp.__members__:
            return tp[text]
        raise ValueError(f"{text!r} is not a member of {tp.__name__}")
    if get_origin(tp) is Literal:
        allowed = get_args(tp)
        if text in allowed:
            return text
        v = text.strip()
        if v.startswith(("Literal[", "str[")) and v.endswith("]"):
            v = v[v.find("[") + 1 : -1]
        if len(v) > 1 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        if v in allowed:
            return v
        for choice in allowed:  # a non-str member written as text: "2" for Literal[1, 2]
            if not isinstance(choice, str) and v == str(choice):
                return choice
        raise ValueError(f"{text!r} is not one of {allowed}")
    if not text:
        raise ValueError("empty")
    return _coerce_value(text, tp)
