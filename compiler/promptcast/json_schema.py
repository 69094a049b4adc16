"""An output type (IR `TypeSchema`) -> JSON schema, and the `response_format` a json step sends.

Why from the IR: `build` reads source + lock and imports nothing of the user's, so the schema
must come from what the frontend resolved; `steps.step_spec` puts the result into the spec,
the generated module holds it as a literal (`py_literal`), and the development call hands the
same spec to the same factory -- the optimizer scores exactly the `response_format` that ships.

The schema is what the JSON adapter's own rendering of a value looks like (`coerce.to_jsonable`:
an Enum as its value, a tuple as a list, a record as an object of its fields): `Literal`/`Enum`
-> `enum`, str/int/float/bool, `list[T]` -> array, `Optional[T]` -> `anyOf` with null, nested
records -> objects with every field required and `additionalProperties: false`. Strict mode
(OpenAI's `strict: true`) allows only that closed subset; a `dict[str, T]` (open keys) or a
fixed `tuple` (`prefixItems`) makes the schema non-strict, and it is sent with `strict: false`.

Two forms, chosen per endpoint at optimize time (`optimizers/capabilities.py`):
`RESPONSE_JSON_SCHEMA` sends `{"type": "json_schema", "json_schema": {"name", "strict",
"schema"}}`; `RESPONSE_JSON_OBJECT` sends `{"type": "json_object", "schema": ...}`, which
llama.cpp's server turns into a grammar while it rejects `json_schema` (HTTP 500).
"""

from __future__ import annotations

import re
from typing import Any

from promptcast_runtime.kinds import get_kind

from . import ir

RESPONSE_JSON_SCHEMA = "json_schema"
RESPONSE_JSON_OBJECT = "json_object"
RESPONSE_FORMATS = (RESPONSE_JSON_SCHEMA, RESPONSE_JSON_OBJECT)
"""The values a state's `response_format` takes ("" : the plain JSON mode of older locks)."""


def type_schema(schema: ir.TypeSchema) -> tuple[dict[str, Any], bool]:
    """The JSON schema of one type, and whether it fits strict mode."""
    kind = schema.kind
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}, True
    if kind in ("literal", "enum"):
        return {"enum": list(schema.values)}, True
    if kind == "list":
        items, strict = type_schema(schema.args[0])
        return {"type": "array", "items": items}, strict
    if kind == "optional":
        inner, strict = type_schema(schema.args[0])
        return {"anyOf": [inner, {"type": "null"}]}, strict
    if kind == "dict":
        value, _ = type_schema(schema.args[1])
        return {"type": "object", "additionalProperties": value}, False
    if kind == "tuple":
        prefix = [type_schema(arg)[0] for arg in schema.args]
        return {
            "type": "array",
            "prefixItems": prefix,
            "minItems": len(prefix),
            "maxItems": len(prefix),
        }, False
    if kind == "object":
        return _object([(f.name, f.type, f.description) for f in schema.fields])
    raise ValueError(f"no JSON schema for a {kind} type ({schema.source})")


_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "none": "null"}


def _object(fields: list[tuple[str, ir.TypeSchema, str]]) -> tuple[dict[str, Any], bool]:
    properties: dict[str, Any] = {}
    strict = True
    for name, schema, description in fields:
        value, fits = type_schema(schema)
        if description:
            value = {**value, "description": description}
        properties[name] = value
        strict = strict and fits
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name, _, _ in fields],
        "additionalProperties": False,
    }, strict


_STR = ir.TypeSchema("str", "str")


def output_schema(signature: ir.Signature) -> tuple[dict[str, Any], bool]:
    """The JSON object a json step answers with: the kind's own outputs (chain of thought's
    `reasoning`, a str) first, then the declared ones, as the adapter lists them."""
    kind = get_kind(signature.kind)
    fields: list[tuple[str, ir.TypeSchema, str]] = []
    for extra in kind.extra_outputs:
        if extra.annotation is not str:
            raise ValueError(f"no JSON schema for the {extra.name} output of @{kind.name}")
        fields.append((extra.name, _STR, extra.description))
    fields += [(f.name, f.type, f.description) for f in signature.outputs]
    return _object(fields)


def schema_name(signature: ir.Signature) -> str:
    """The schema's `name` (OpenAI: letters, digits, `_` and `-`, at most 64)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", signature.name)[:64] or "output"


def response_format(signature: ir.Signature, form: str) -> dict[str, Any]:
    """The request's `response_format` in `form` (`RESPONSE_FORMATS`) for this step's output."""
    schema, strict = output_schema(signature)
    if form == RESPONSE_JSON_SCHEMA:
        return {
            "type": "json_schema",
            "json_schema": {"name": schema_name(signature), "strict": strict, "schema": schema},
        }
    if form == RESPONSE_JSON_OBJECT:
        return {"type": "json_object", "schema": schema}
    raise ValueError(f"response_format must be one of {RESPONSE_FORMATS}, not {form!r}")
