"""IR + state -> the source of one compiled step (predictor literal + call body) and headers.

Only literals produced by `py_literal` and annotation text taken verbatim from the user's own
source reach the template, so no string from data or a model can change the code's structure.
"""

from __future__ import annotations

import black

from promptcast_runtime.contract import STEP_NAMES

from .. import ir
from ..media import references
from ..steps import step_spec
from .literals import py_literal
from .templates import render_template

RUNTIME_NAMES = STEP_NAMES
"""What every compiled step imports from the runtime, whatever its kind (the kind is data in the
spec; the runtime's contract owns the list). These get an alias when the user's module already
binds them; the sampling names (the rest of `GENERATED_NAMES`) are refused instead
(`build._refuse_shadowed_sampling`)."""


def runtime_aliases(taken: set[str]) -> dict[str, str]:
    """The name generated code uses for each runtime name: itself, unless the module has it.

    A user module that defines or imports `Step` keeps it; the runtime's is then imported as
    `RuntimeStep`, so the generated import never shadows the user's name.
    """
    aliases: dict[str, str] = {}
    for name in RUNTIME_NAMES:
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


def _runtime_alias(name: str) -> str:
    """`RuntimeStep`, `runtime_build_step`: the name's own casing."""
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
    optimized_for: str | None = None,
) -> str:
    """The module-level `var: Step[...] = build_step({...}, ...)` statement, black-formatted.

    The spec literal is `steps.step_spec` written with `py_literal`: the very value the
    development call hands to the same factory. `names` maps runtime names to what the module
    calls them (`runtime_aliases`).
    """
    inputs = ", ".join(f"{py_literal(f.name)}: {f.type.source}" for f in signature.inputs)
    code = render_template(
        "step.py.j2",
        rt=names or {n: n for n in RUNTIME_NAMES},
        var=var,
        return_annotation=signature.return_type.source,
        spec=py_literal(step_spec(signature, state, optimized_for), 1),
        inputs="{" + inputs + "}",
        tools=_tuple_items([t.expression for t in signature.tools]) if signature.tools else None,
        media=bool(references(state)),
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


def render_stream_calls(signature: ir.Signature, var: str) -> tuple[str, str]:
    """The body statements of the streaming twins `<name>_stream` / `<name>_astream`: the same
    call, as a generator of partial results (sync, async)."""
    args = ", ".join(f"{f.name}={f.name}" for f in signature.inputs)
    return f"return {var}.stream({args})\n", f"return {var}.astream({args})\n"


def render_stream_returns(signature: ir.Signature, names: dict[str, str]) -> tuple[str, str]:
    """The return annotations of the streaming twins: `PartialStream[<the function's return
    annotation>]` and `AsyncPartialStream[...]`, under the names the module imports them as."""
    returns = signature.return_type.source
    return f"{names['PartialStream']}[{returns}]", f"{names['AsyncPartialStream']}[{returns}]"


def render_header(
    source: str, version: str, lock_hash: str, models: list[str], scores: list[str]
) -> str:
    """The provenance comment lines. Every value is passed through `comment_text`, so no
    string from the lock or a file name can end the comment and start code."""
    return render_template(
        "header.py.j2",
        source=comment_text(source),
        version=comment_text(version),
        lock_hash=comment_text(lock_hash),
        models=", ".join(comment_text(m) for m in models),
        scores=", ".join(comment_text(s) for s in scores),
    )


def comment_text(text: str) -> str:
    """`text` safe inside a `#` comment: as is when it is plain printable text, else written
    as its `repr` (escaping every line break, control and non-printable character)."""
    # `repr` escapes exactly the characters `isprintable` rejects, line breaks among them.
    return text if text.isprintable() else repr(text)


def format_code(code: str) -> str:
    return black.format_str(code, mode=black.Mode())
