"""One discovered LM function -> `ir.Signature`.

This is where the pieces meet: the docstring gives the instruction and field descriptions,
the parameters become input fields and the return annotation the output fields. It also
checks what only makes sense with all of them together: docstring items naming parameters or
fields that do not exist, and field names that would collide in the prompt.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from promptcast import ir
from promptcast.frontend.discover import DecoratedFunction
from promptcast.frontend.docstrings import parse_docstring
from promptcast.frontend.errors import Diagnostic
from promptcast.frontend.scope import ModuleScope
from promptcast.frontend.types import TypeResolver
from promptcast_runtime.kinds import get_kind

SINGLE_OUTPUT_NAMES = ir.SINGLE_OUTPUT_NAMES


_RECORD_RETURNS: dict[str, ir.ReturnShape] = {
    "namedtuple": "namedtuple",
    "dataclass": "dataclass",
    "typeddict": "typeddict",
    "pydantic": "pydantic",
}
"""Class shapes whose fields become the output fields, and how the value is built back."""


def _parameters(node: cst.FunctionDef) -> list[cst.Param]:
    params = node.params
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def build_signature(
    fn: DecoratedFunction,
    scope: ModuleScope,
    resolver: TypeResolver,
    diagnostics: list[Diagnostic],
) -> ir.Signature | None:
    """The Signature of `fn`, or None when anything about it was reported as an error."""
    kind = get_kind(fn.kind)  # ValueError for a program: not an LM function
    doc = parse_docstring(fn.docstring)
    before = len(diagnostics)

    def error(message: str, text: str = "") -> None:
        diagnostics.append(Diagnostic(fn.location, message, text))

    inputs: list[ir.FieldSpec] = []
    for param in _parameters(fn.node):
        if param.annotation is None:
            continue  # reported by discovery
        schema = resolver.resolve(param.annotation.annotation, scope)
        if schema is not None:
            name = param.name.value
            inputs.append(ir.FieldSpec(name, schema, doc.params.get(name, "")))
    input_names = [p.name.value for p in _parameters(fn.node)]
    for name in doc.params:
        if name not in input_names:
            error(
                f"the docstring of `{fn.name}` describes `{name}` under Args:, but `{fn.name}`"
                f" has no such parameter (parameters: {', '.join(input_names) or 'none'})"
            )

    if fn.node.returns is None:
        return None  # reported by discovery
    return_type = resolver.resolve(fn.node.returns.annotation, scope)
    if return_type is None:
        return None
    shape: ir.ReturnShape = "single"
    if return_type.kind == "none":
        error(
            f"`{fn.name}` returns None; an LM function must return a value",
            scope.code(fn.node.returns.annotation),
        )
        return None
    class_shape = resolver.shape_of(return_type) if return_type.kind == "object" else None
    record_shape = _RECORD_RETURNS.get(class_shape) if class_shape else None
    if record_shape is not None:
        shape = record_shape
        field_names = [f.name for f in return_type.fields]
        outputs = [
            ir.FieldSpec(f.name, f.type, doc.return_items.get(f.name) or f.description)
            for f in return_type.fields
        ]
        for name in doc.return_items:
            if name not in field_names:
                error(
                    f"the docstring of `{fn.name}` describes `{name}` under Returns:, but"
                    f" `{return_type.name}` has no such field (fields: {', '.join(field_names)})"
                )
    else:
        output_name = next((n for n in SINGLE_OUTPUT_NAMES if n not in input_names), None)
        if output_name is None:
            error(
                f"`{fn.name}` has parameters named {' and '.join(SINGLE_OUTPUT_NAMES)}; rename one"
                " so the output field can be named"
            )
            return None
        outputs = [ir.FieldSpec(output_name, return_type, doc.returns)]

    for out in outputs:
        if out.name in input_names:
            error(
                f"`{fn.name}` has an input and an output both named `{out.name}`; field names"
                " must be unique within a function"
            )
    _check_input_types(fn.name, inputs, return_type, error)
    takes_tools = any(o.source == "functions" for o in kind.options)
    tools = _tool_specs(fn, scope, resolver, error) if takes_tools else ()
    for field_name in (*input_names, *(o.name for o in outputs)):
        if field_name in kind.reserved_names:
            error(
                f"`{fn.name}` is a {kind.name} function, which adds an output named"
                f" `{field_name}`; rename its field `{field_name}`"
            )
    if len(diagnostics) > before:
        return None
    return ir.Signature(
        qualname=f"{scope.name}:{fn.name}",
        name=fn.name,
        module=scope.name,
        kind=kind.name,
        instructions=doc.instructions,
        docstring=doc.text,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        return_type=return_type,
        return_shape=shape,
        location=fn.location,
        adapter=str(fn.options.get("adapter", kind.option("adapter").default)),
        tools=tools,
        options=tuple(
            sorted(
                (name, value)
                for name, value in fn.options.items()
                if name != "adapter" and kind.option(name).source == "literal"
            )
        ),
    )


def tool_problem(definition: cst.FunctionDef, docstring: str) -> str | None:
    """What a tool's definition lacks for the model to call it, or None: every parameter
    needs an annotation (the model is told the types to send), and the function a docstring
    (the model is told what it does)."""
    params = definition.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    unannotated = [p.name.value for p in every if p.annotation is None]
    missing = []
    if unannotated:
        names = ", ".join(f"`{name}`" for name in unannotated)
        missing.append(f"no annotation on parameter{'s' if len(unannotated) > 1 else ''} {names}")
    if not docstring.strip():
        missing.append("no docstring")
    return "has " + " and ".join(missing) if missing else None


def _tool_specs(
    fn: DecoratedFunction,
    scope: ModuleScope,
    resolver: TypeResolver,
    error: Callable[[str, str], None],
) -> tuple[ir.ToolSpec, ...]:
    """Each tool's name, the text naming it, and its `def` header and docstring.

    A tool defined in the package is read from its source, so the lock notices when what the
    model is told about it changes; one from elsewhere (`math.sqrt`) is described at run time.
    """
    specs: list[ir.ToolSpec] = []
    for expression in fn.options.get("tools", ()):  # type: ignore[attr-defined]
        node = cst.parse_expression(expression)
        qualified = scope.qualify(node)
        local = scope.bindings.get(expression, [])
        definition: cst.FunctionDef | None = None
        where = scope
        if local and isinstance(local[-1].node, cst.FunctionDef):
            definition = local[-1].node
        elif qualified is not None:
            module, _, name = qualified.rpartition(".")
            other = resolver.lookup(module) if module else None
            found = other.bindings.get(name, []) if other is not None else []
            if found and isinstance(found[-1].node, cst.FunctionDef):
                definition, where = found[-1].node, other  # type: ignore[assignment]
        elif not local:
            error(
                f"tool `{expression}` of `{fn.name}` is not defined or imported in this module",
                expression,
            )
            continue
        if local and definition is None and qualified is None:
            error(f"tool `{expression}` of `{fn.name}` is not a function", expression)
            continue
        name = expression.rpartition(".")[2]
        if definition is None:
            specs.append(ir.ToolSpec(name, expression))
            continue
        from promptcast.frontend.discover import docstring_literal

        body = definition.body.body if isinstance(definition.body, cst.IndentedBlock) else ()
        doc = docstring_literal(tuple(body)) or ""
        problem = tool_problem(definition, doc)
        if problem:
            at = where.location(definition)
            error(
                f"tool `{definition.name.value}` of `{fn.name}` ({at.path}:{at.line}) {problem};"
                " the model learns how to call a tool from its parameter annotations and its"
                " docstring",
                expression,
            )
            continue
        header = where.code(definition.params)
        returns = where.code(definition.returns.annotation) if definition.returns else ""
        specs.append(
            ir.ToolSpec(
                definition.name.value,
                expression,
                f"({header})" + (f" -> {returns}" if returns else ""),
                doc,
            )
        )
    names = [s.name for s in specs]
    if len(set(names)) != len(names) or "finish" in names:
        error(f"the tools of `{fn.name}` must have distinct names, none of them `finish`", "")
    return tuple(specs)


def _uses(schema: ir.TypeSchema, kinds: tuple[str, ...]) -> bool:
    """`schema` is, or holds, a type of one of `kinds`."""
    return schema.kind in kinds or any(_uses(a, kinds) for a in schema.args) or any(
        _uses(f.type, kinds) for f in schema.fields
    )


def _check_input_types(
    name: str,
    inputs: list[ir.FieldSpec],
    return_type: ir.TypeSchema,
    error: Callable[[str, str], None],
) -> None:
    """History and Image are input types the runtime renders itself: one History at most, as
    a field of its own; an Image alone, in a list, or optional; neither as an output."""
    if _uses(return_type, ("history", "image")):
        error(
            f"`{name}` returns a History or Image; they are input types (an LM step answers"
            " in text)",
            return_type.source,
        )
    histories = [f for f in inputs if f.type.kind == "history"]
    if len(histories) > 1:
        error(
            f"`{name}` takes {len(histories)} History inputs; a step has one conversation",
            ", ".join(f.name for f in histories),
        )
    for field in inputs:
        schema = field.type
        if schema.kind in ("optional", "list", "tuple") and len(schema.args) == 1:
            schema = schema.args[0]
        nested = schema.kind not in ("history", "image") and _uses(schema, ("history", "image"))
        if nested or (field.type.kind != "history" and schema.kind == "history"):
            error(
                f"input `{field.name}` of `{name}`: History is an input of its own and Image may"
                " stand alone, in a list or optional; not inside other types",
                field.type.source,
            )
