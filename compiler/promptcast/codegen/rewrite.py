"""Rewrite one user module with libcst: decorated functions out, compiled functions in.

The frontend already found every promptcast import and decorated function, as node objects of
the module's libcst tree; this module only swaps those nodes. Everything else is left exactly
as written (libcst round-trips source byte for byte), so a reviewer's diff between source and
generated module shows only the compiled steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst

from promptcast_runtime.contract import INPUT_TYPE_NAMES, SAMPLING_NAMES

from ..frontend.discover import PromptcastImport
from ..frontend.errors import CompileError, Diagnostic
from ..frontend.package import ModuleInfo
from ..ir import SourceLocation
from .emit import format_code


@dataclass(frozen=True)
class CompiledStep:
    """What replaces one decorated LM function: a predictor statement, the call statement of
    the compiled function and that of its awaitable twin."""

    name: str
    predictor_code: str
    call_code: str
    async_call_code: str
    """The body of the awaitable twin `<name>_async`."""
    stream_code: tuple[str, str] = ("", "")
    """The bodies of the streaming twins `<name>_stream` and `<name>_astream` (none if empty)."""
    stream_returns: tuple[str, str] = ("", "")
    """Their return annotations (`PartialStream[...]`, `AsyncPartialStream[...]`)."""


SAMPLING = frozenset(SAMPLING_NAMES) | frozenset(INPUT_TYPE_NAMES)
"""promptcast names that are runtime names: `pc.best_of_n` builds to the runtime's function,
`pc.History` / `pc.Image` (annotations, kept verbatim otherwise) to the runtime's classes."""


def sampling_uses(module: ModuleInfo) -> dict[str, str]:
    """Runtime sampling functions the module uses: local name in generated code -> runtime name.

    `pc.best_of_n(...)` (any alias of the promptcast module) becomes `best_of_n(...)`;
    `from promptcast import refine as r` keeps its local name `r`.
    """
    modules = {n for imp in module.imports if isinstance(imp.node, cst.Import) for n in imp.names}
    uses: dict[str, str] = {}
    for imp in module.imports:
        if isinstance(imp.node, cst.ImportFrom) and not isinstance(imp.node.names, cst.ImportStar):
            for alias in imp.node.names:
                original = alias.name.value if isinstance(alias.name, cst.Name) else ""
                if original in SAMPLING:
                    uses[_bound(alias)] = original
    finder = _ModuleAttributes(modules)
    module.tree.visit(finder)
    uses.update({name: name for name in finder.found})
    return uses


class _ModuleAttributes(cst.CSTVisitor):
    def __init__(self, modules: set[str]) -> None:
        self.modules = modules
        self.found: set[str] = set()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if _is_sampling_attribute(node, self.modules):
            self.found.add(node.attr.value)


def _is_sampling_attribute(node: cst.Attribute, modules: set[str]) -> bool:
    return (
        isinstance(node.value, cst.Name)
        and node.value.value in modules
        and node.attr.value in SAMPLING
    )


class _RuntimeSampling(cst.CSTTransformer):
    """`pc.best_of_n` -> `best_of_n`, the runtime function the generated import brings in."""

    def __init__(self, modules: set[str]) -> None:
        self.modules = modules

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        if _is_sampling_attribute(updated_node, self.modules):
            return cst.Name(updated_node.attr.value)
        return updated_node


class _LeftoverUse(cst.CSTVisitor):
    """Finds uses of promptcast names outside decorators, which the build could not remove."""

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self, names: set[str], sampling: set[str]) -> None:
        self.names = names
        self.sampling = sampling  # local names of sampling functions: the runtime has them
        self.found: list[tuple[int, int, str]] = []

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return not _is_sampling_attribute(node, self.names)

    def visit_Decorator(self, node: cst.Decorator) -> bool:
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names and node.value not in self.sampling:
            pos = self.get_metadata(cst.metadata.PositionProvider, node).start
            self.found.append((pos.line, pos.column + 1, node.value))


def rewrite_module(
    module: ModuleInfo, steps: Sequence[CompiledStep], header: str, runtime_import: str
) -> str:
    """The generated text of one module.

    `steps` replace the LM functions of those names; programs only lose their decorator; the
    promptcast imports are dropped, or lose just their promptcast names, and `runtime_import`
    (one or more import lines) joins the first one's section where isort sorts it
    (`_place_runtime_import`); `header` (comment lines) goes on top, after a shebang or
    encoding line.
    """
    _refuse_leftover_uses(module)
    modules = {n for imp in module.imports if isinstance(imp.node, cst.Import) for n in imp.names}
    by_name = {step.name: step for step in steps}
    imports = {id(imp.statement): imp for imp in module.imports}
    decorated = {id(fn.node): fn for fn in module.functions}
    body: list[Any] = []  # statements, and the _Anchor of the runtime import
    import_placed = not runtime_import
    for stmt in module.tree.body:
        imp = imports.get(id(stmt))
        fn = decorated.get(id(stmt))
        if imp is not None:
            kept = _without_promptcast(imp)
            if kept is not None:
                body.append(kept)
            if not import_placed:
                leading = imp.statement.leading_lines if kept is None else ()
                body.append(_Anchor(tuple(leading)))
                import_placed = True
        elif fn is not None and fn.name in by_name:
            assert isinstance(stmt, cst.FunctionDef)
            step = by_name[fn.name]
            predictor = cst.parse_module(step.predictor_code).body
            leading = stmt.leading_lines
            imports_above = body and (_is_import(body[-1]) or isinstance(body[-1], _Anchor))
            if imports_above and all(not line.comment for line in leading):
                leading = (cst.EmptyLine(),)  # isort: one blank line between imports and code
            body.append(predictor[0].with_changes(leading_lines=leading))
            body.extend(predictor[1:])
            body.append(_compiled_function(stmt, step.call_code))
            body.append(_async_twin(stmt, step.async_call_code))
            body.extend(_stream_twins(stmt, step))
        elif fn is not None:
            assert isinstance(stmt, cst.FunctionDef)
            decorators = [d for d in stmt.decorators if d is not fn.decorator]
            body.append(stmt.with_changes(decorators=decorators))
        else:
            body.append(stmt)
    if not import_placed:
        body[:0] = cst.parse_module(runtime_import).body
    else:
        body = _place_runtime_import(body, runtime_import)
    tree = module.tree.with_changes(body=body).visit(_RuntimeSampling(modules))
    return _with_header(tree.code, header)


@dataclass(frozen=True)
class _Anchor:
    """Where the first promptcast import was, with the lines above it when it is gone."""

    leading_lines: tuple[cst.EmptyLine, ...]


def _place_runtime_import(body: list[Any], runtime_import: str) -> list[Any]:
    """Put the runtime import lines where isort (ruff's `I` rules, default settings) wants them.

    They join the section the promptcast import was in -- the run of import statements around
    it with no blank line between them: promptcast and its runtime are both third-party -- at
    their sorted place there: plain `import x` statements first, then `from x import ...`, each
    by module name without regard to case. The lines above the removed import (a blank line that
    opens the section, comments) stay on top of the section.
    """
    at = next(i for i, node in enumerate(body) if isinstance(node, _Anchor))
    anchor = body[at]
    assert isinstance(anchor, _Anchor)
    lines: list[cst.CSTNode] = list(cst.parse_module(runtime_import).body)
    start = at
    if not _opens_section(anchor.leading_lines):
        while start > 0 and _is_import(body[start - 1]):
            start -= 1
            if _opens_section(_leading(body[start])):
                break
    end = at + 1
    while end < len(body) and _is_import(body[end]) and not _opens_section(_leading(body[end])):
        end += 1
    section: list[Any] = body[start:at] + body[at + 1 : end]
    key = _isort_key(lines[0])
    place = next((i for i, node in enumerate(section) if _isort_key(node) > key), len(section))
    ordered: list[Any] = section[:place] + lines + section[place:]
    if start == at:  # the section opened with the promptcast import: its lines open it still
        first = ordered[0]
        ordered[0] = first.with_changes(leading_lines=[*anchor.leading_lines, *_leading(first)])
    else:  # only comments were above it; they stay with the import that replaces it
        ordered[place] = lines[0].with_changes(leading_lines=list(anchor.leading_lines))
    return body[:start] + ordered + body[end:]


def _leading(node: Any) -> Sequence[cst.EmptyLine]:
    return tuple(getattr(node, "leading_lines", ()))


def _opens_section(leading: Sequence[cst.EmptyLine]) -> bool:
    """A blank line above an import starts a new isort section."""
    return any(line.comment is None for line in leading)


def _isort_key(node: Any) -> tuple[int, str]:
    """isort's order of import statements in a section (force-sort-within-sections off)."""
    small = node.body[0]
    if isinstance(small, cst.Import):
        return (0, cst.Module([]).code_for_node(small.names[0].name).lower())
    assert isinstance(small, cst.ImportFrom)
    dots = "." * len(small.relative)
    name = cst.Module([]).code_for_node(small.module) if small.module is not None else ""
    return (1, (dots + name).lower())


def _without_promptcast(imp: PromptcastImport) -> cst.SimpleStatementLine | None:
    """`import os, promptcast` -> `import os`; None when nothing but promptcast is imported."""
    if imp.only_promptcast:
        return None
    node = imp.node
    assert isinstance(node, cst.Import)
    kept = [a for a in node.names if _bound(a) not in imp.names]
    kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return imp.statement.with_changes(body=[node.with_changes(names=kept)])


def _bound(alias: cst.ImportAlias) -> str:
    target = alias.asname.name if alias.asname else alias.name
    return cst.Module([]).code_for_node(target).split(".")[0]


def _is_import(node: object) -> bool:
    return isinstance(node, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in node.body
    )


def _compiled_function(stmt: cst.FunctionDef, call_code: str) -> cst.FunctionDef:
    """Same name, parameters, annotations and docstring; decorators gone; body calls the step."""
    body = stmt.body
    assert isinstance(body, cst.IndentedBlock)
    docstring = body.body[0]
    return stmt.with_changes(
        decorators=[],
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
        body=body.with_changes(body=[docstring, cst.parse_statement(call_code)]),
    )


def async_name(name: str) -> str:
    """The awaitable twin of LM function `name` in generated code (and in development)."""
    return f"{name}_async"


def _async_twin(stmt: cst.FunctionDef, call_code: str) -> cst.FunctionDef:
    """`async def <name>_async(...)`: the same parameters and return annotation, awaited."""
    name = stmt.name.value
    doc = f'"""Awaitable `{name}`: the same prompt and parsing, without a thread per call."""'
    body = stmt.body
    assert isinstance(body, cst.IndentedBlock)
    twin = stmt.with_changes(
        name=cst.Name(async_name(name)),
        asynchronous=cst.Asynchronous(),
        decorators=[],
        leading_lines=[],
        body=body.with_changes(body=[cst.parse_statement(doc), cst.parse_statement(call_code)]),
    )
    # The longer name may push the signature past the line length: format it as black would.
    formatted = format_code(cst.Module(body=[twin]).code)
    node = cst.parse_module(formatted).body[0]
    assert isinstance(node, cst.FunctionDef)
    return node.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])


def stream_name(name: str) -> str:
    """The streaming twin of LM function `name` (partial results, `streaming.py`)."""
    return f"{name}_stream"


def astream_name(name: str) -> str:
    """The async streaming twin of LM function `name`."""
    return f"{name}_astream"


def twin_names(name: str) -> dict[str, str]:
    """Every name the build generates beside LM function `name`, with what it is."""
    return {
        async_name(name): "the awaitable form",
        stream_name(name): "the streaming form",
        astream_name(name): "the async streaming form",
    }


def _stream_twins(stmt: cst.FunctionDef, step: CompiledStep) -> list[cst.FunctionDef]:
    """`def <name>_stream(...) -> PartialStream[R]` and `def <name>_astream(...) ->
    AsyncPartialStream[R]`: the same parameters; each returns the step's generator."""
    name = stmt.name.value
    twins: list[cst.FunctionDef] = []
    kinds = ((stream_name(name), "streamed"), (astream_name(name), "streamed asynchronously"))
    for (twin_name, how), code, returns in zip(
        kinds, step.stream_code, step.stream_returns, strict=True
    ):
        if not code:
            continue
        doc = f'"""`{name}`, {how}: partial results as they arrive, the answer last."""'
        body = stmt.body
        assert isinstance(body, cst.IndentedBlock)
        twin = stmt.with_changes(
            name=cst.Name(twin_name),
            decorators=[],
            leading_lines=[],
            returns=cst.Annotation(cst.parse_expression(returns)),
            body=body.with_changes(body=[cst.parse_statement(doc), cst.parse_statement(code)]),
        )
        node = cst.parse_module(format_code(cst.Module(body=[twin]).code)).body[0]
        assert isinstance(node, cst.FunctionDef)
        twins.append(node.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]))
    return twins


def _refuse_leftover_uses(module: ModuleInfo) -> None:
    names = {name for imp in module.imports for name in imp.names}
    sampling = set(sampling_uses(module))
    wrapper = cst.metadata.MetadataWrapper(module.tree, unsafe_skip_copy=True)
    visitor = _LeftoverUse(names, sampling)
    wrapper.visit(visitor)
    if visitor.found:
        raise CompileError(
            Diagnostic(
                SourceLocation(module.display_path, line, column),
                f"`{name}` (promptcast) is used outside a decorator; the generated module does "
                "not import promptcast, so keep compiler calls such as `pc.configure` out of "
                "modules that are built",
                name,
            )
            for line, column, name in visitor.found
        )


def _with_header(code: str, header: str) -> str:
    lines = code.splitlines(keepends=True)
    keep = 0
    while keep < min(2, len(lines)) and (
        lines[keep].startswith("#!") or (lines[keep].startswith("#") and "coding" in lines[keep])
    ):
        keep += 1
    return "".join(lines[:keep]) + header + "".join(lines[keep:])
