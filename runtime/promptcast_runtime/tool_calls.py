"""The native tools protocol of a ReAct step: the user's functions as the endpoint's `tools`.

In the text protocol (`react.py`) the model writes `next_tool_name` / `next_tool_args` fields
that the runtime parses. Here the request carries the tools in OpenAI's function-calling form
and the model answers with `tool_calls` (several per turn allowed); each call's result goes
back as a `role: tool` message carrying its `tool_call_id`. What this module owns:

- `tool_schema(fn)`: the OpenAI function schema of a plain typed function. Its description is
  exactly the line the text protocol lists (`describe_tool`: header + first docstring
  paragraph), so both protocols tell the model the same thing; the parameters are JSON schema
  from the annotations (`param_schema`), every parameter without a default required, nothing
  else allowed.
- the messages of the conversation (`assistant_turn`, `tool_result`) and `parse_arguments`,
  which reads a call's arguments text or says why it cannot (never a guess).

Why there is no `finish` tool: in the tools protocol a model ends by answering without a tool
call -- that is how every function-calling model is trained to stop, it costs no fake tool, and
it cannot be mixed up with real calls in the same turn. Such a reply is written into the
trajectory as the text protocol's `finish` turn, so the trajectory (and every demo cut from a
run) reads the same in both protocols.

Stdlib only; `inspect`/`typing`/`json` are imported where used (a module without a ReAct step
never imports this one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .lm import Message, ToolCall
from .signature import Field

TEXT_PROTOCOL = "text"
TOOLS_PROTOCOL = "tools"
AUTO_PROTOCOL = "auto"
PROTOCOLS = (TEXT_PROTOCOL, TOOLS_PROTOCOL)
"""How a ReAct step's turns call tools: fields it parses (`react.py`), or the endpoint's
native `tools` / `tool_calls` (this module); in order of preference on a tie."""
PROTOCOL_CHOICES = (*PROTOCOLS, AUTO_PROTOCOL)
"""Values the react kind's `protocol=` option accepts ("auto": optimize scores both on dev and
locks the better; `kinds.PROTOCOL`)."""

NOT_JSON = "the arguments are not a JSON object: "
"""The observation of a call whose arguments text does not parse (a failed call, never taught)."""


def param_schema(annotation: Any) -> dict[str, Any]:
    """JSON schema of one parameter annotation (a live type, as `typing.get_type_hints` gives).

    str/int/float/bool/None, `Literal` and `Enum` (an `enum`), `list[T]`, fixed `tuple`s,
    `dict[str, T]`, `Optional[T]` and unions (`anyOf`), and typed records (dataclass,
    TypedDict, NamedTuple, pydantic) as objects. An annotation it does not know (`Any`, a
    custom class) is `{}`: any value, checked by the tool's own binding as today.
    """
    import enum
    import types
    import typing

    from .coerce import _is_object, object_fields

    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is None or annotation is type(None):
        return {"type": "null"}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [param_schema(arg) for arg in args]}
    if origin in (list, Sequence, set, frozenset) or annotation is list:
        return {"type": "array", "items": param_schema(args[0]) if args else {}}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": param_schema(args[0])}
        items = [param_schema(arg) for arg in args]
        return {
            "type": "array",
            "prefixItems": items,
            "minItems": len(items),
            "maxItems": len(items),
        }
    if origin in (dict, Mapping) or annotation is dict:
        value = param_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value}
    if isinstance(annotation, type) and _is_object(annotation):
        try:
            hints = typing.get_type_hints(annotation)
        except Exception:  # noqa: BLE001 -- unresolvable annotations: fields of any value
            hints = {}
        names = object_fields(annotation)
        return {
            "type": "object",
            "properties": {name: param_schema(hints.get(name, Any)) for name in names},
            "required": list(names),
            "additionalProperties": False,
        }
    return {}


def tool_schema(fn: Callable[..., Any], description: str) -> dict[str, Any]:
    """`fn` as one entry of a request's `tools`: `{"type": "function", "function": {...}}`,
    with `description` (the text protocol's `describe_tool(fn)` line)."""
    import inspect
    import typing

    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 -- unresolvable annotations: parameters of any value
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        properties[param.name] = param_schema(hints.get(param.name, Any))
        if param.default is param.empty:
            required.append(param.name)
    return {
        "type": "function",
        "function": {
            "name": fn.__name__,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


def parse_arguments(call: ToolCall) -> tuple[Any, str | None]:
    """A call's arguments as a JSON object, or (None, the observation saying why not).

    An empty text is no arguments (`{}`): providers send "" for a call of a function without
    parameters. Anything else must be exactly one JSON object; what the model sent is quoted
    back so it can correct itself, never repaired into a guess.
    """
    import json

    text = call.arguments.strip()
    if not text:
        return {}, None
    try:
        value = json.loads(text)
    except ValueError:
        return None, f"{NOT_JSON}{call.arguments[:500]}"
    if not isinstance(value, dict):
        return None, f"{NOT_JSON}{call.arguments[:500]}"
    return value, None


def assistant_turn(text: str, calls: Sequence[ToolCall]) -> Message:
    """The assistant message that asked for `calls`, as the next request must repeat it."""
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in calls
        ],
    }


def tool_result(call: ToolCall, observation: str) -> Message:
    """The `role: tool` message answering `call`."""
    return {"role": "tool", "tool_call_id": call.id, "content": observation}


def instructions(task: str) -> str:
    """The system message of a tools-protocol turn: the task and how the loop ends."""
    return (
        f"{task}\n\nYou work in turns. In each turn, think, then call one or more of the tools"
        " you are given; you will see each result. When you have what you need, reply without"
        " calling a tool."
    )


def inputs_message(fields: Sequence[Field], values: Mapping[str, Any]) -> str:
    """The user message: the step's inputs as `[[ ## name ## ]]` sections, as both adapters
    render inputs."""
    from .coerce import render

    return "\n\n".join(
        f"[[ ## {f.name} ## ]]\n{render(values[f.name], f.annotation)}" for f in fields
    )
