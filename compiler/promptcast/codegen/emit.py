"""IR + state -> the source of one compiled step (predictor literal + call body) and headers.

Only literals produced by `py_literal` and annotation text taken verbatim from the user's own
source reach the template, so no string from data or a model can change the code's structure.
"""

from __future__ import annotations

import black

from .. import ir
from .literals import py_literal
from .templates import render_template

RUNTIME_NAMES = ("Field", "Predictor", "Signature")
ALL_RUNTIME_NAMES = (*RUNTIME_NAMES, "REASONING", "ReAct", "fields_from")


def runtime_aliases(taken: set[str]) -> dict[str, str]:
    """The name generated code uses for each runtime name: itself, unless the module has it.

    A user module that defines or imports `Field` (pydantic's, say) keeps it; the runtime's is
    then imported as `RuntimeField`, so the generated import never shadows the user's name.
    """
    aliases: dict[str, str] = {}
    for name in ALL_RUNTIME_NAMES:
        alias = name
        if alias in taken:
            alias = _runtime_alias(name)
            while alias in taken:
                alias += "_"
        aliases[name] = alias
    return aliases


def predictor_var(signature: ir.Signature, taken: set[str]) -> str:
    """`_QUESTION_TYPE` for `question_type`; suffixed if the module already uses that name."""
    name = f"_{signature.name.upper()}"
    while name in taken:
        name += "_PREDICTOR"
    return name


def runtime_names(signature: ir.Signature) -> set[str]:
    """The promptcast_runtime names this step's generated code refers to."""
    names = set(RUNTIME_NAMES)
    if signature.kind == "chain_of_thought":
        names.add("REASONING")
    if signature.kind == "react":
        names = (names - {"Predictor"}) | {"ReAct"}
    if signature.return_shape != "single":
        names.add("fields_from")
    return names


def _runtime_alias(name: str) -> str:
    """`RuntimeField`, `RUNTIME_REASONING`, `runtime_fields_from`: the name's own casing."""
    if name.isupper():
        return f"RUNTIME_{name}"
    if name[0].isupper():
        return f"Runtime{name}"
    return f"runtime_{name}"


def render_predictor(
    signature: ir.Signature,
    state: ir.FunctionState,
    var: str,
    names: dict[str, str] | None = None,
) -> str:
    """The module-level `var: Predictor[...] = Predictor(...)` statement, black-formatted.

    `names` maps runtime names to what the module calls them (`runtime_aliases`).
    """
    structured = signature.return_shape != "single"
    code = render_template(
        "predictor.py.j2",
        rt=names or {n: n for n in ALL_RUNTIME_NAMES},
        cls="ReAct" if signature.kind == "react" else "Predictor",
        tools=_tuple_items([t.expression for t in signature.tools])
        if signature.kind == "react"
        else None,
        max_iters=signature.max_iters,
        var=var,
        return_annotation=signature.return_type.source,
        instructions=py_literal(state.instructions, 2),
        inputs=[_field(f) for f in signature.inputs],
        outputs=[] if structured else [_field(signature.outputs[0], signature.return_type.source)],
        fields_from=py_literal({f.name: f.description for f in signature.outputs}, 3)
        if structured
        else None,
        reasoning=signature.kind == "chain_of_thought",
        returns=signature.return_type.source
        if structured
        else py_literal(signature.outputs[0].name),
        demos=py_literal(tuple(_in_field_order(d, signature) for d in state.demos), 1),
        adapter=py_literal(state.adapter),
        lm_params=py_literal(dict(sorted(state.lm_params.items())), 1),
        parse_retries=signature.parse_retries,
    )
    return format_code(code)


def _tuple_items(items: list[str]) -> str:
    """`a, b` / `a,`: the inside of a tuple display (no magic trailing comma for black)."""
    return items[0] + "," if len(items) == 1 else ", ".join(items)


def render_call(signature: ir.Signature, var: str) -> str:
    """The body statement of the compiled function: pass every parameter by name."""
    args = ", ".join(f"{f.name}={f.name}" for f in signature.inputs)
    return f"return {var}({args})\n"


def render_async_call(signature: ir.Signature, var: str) -> str:
    """The body statement of the awaitable twin: the same call, awaited."""
    args = ", ".join(f"{f.name}={f.name}" for f in signature.inputs)
    return f"return await {var}.acall({args})\n"


def render_header(
    source: str, version: str, lock_hash: str, models: list[str], scores: list[str]
) -> str:
    return render_template(
        "header.py.j2",
        source=source,
        version=version,
        lock_hash=lock_hash,
        models=", ".join(models),
        scores=", ".join(scores),
    )


def _in_field_order(demo: ir.Demo, signature: ir.Signature) -> ir.Demo:
    """Demo keys in signature order (inputs, reasoning, outputs), as a reader expects them.

    The lock stores keys sorted; the order does not change the prompt (fields are looked up by
    name), only how the literal reads.
    """
    order = [f.name for f in signature.inputs] + ["reasoning"] + [f.name for f in signature.outputs]
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(demo.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _field(field: ir.FieldSpec, annotation: str | None = None) -> dict[str, str]:
    return {
        "name": py_literal(field.name),
        "annotation": annotation or field.type.source,
        "description": py_literal(field.description) if field.description else "",
    }


def format_code(code: str) -> str:
    return black.format_str(code, mode=black.Mode())
