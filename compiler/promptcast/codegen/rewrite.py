"""Rewrite one user module with libcst: decorated functions out, compiled functions in.

Everything that is not a promptcast import or a decorated function is left exactly as written
(libcst round-trips source byte for byte), so a reviewer's diff between source and generated
module shows only the compiled steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from ..frontend.errors import CompileError, Diagnostic
from ..ir import SourceLocation


@dataclass(frozen=True)
class CompiledStep:
    """What replaces one decorated LM function: a predictor statement and a call statement."""

    name: str
    predictor_code: str
    call_code: str


@dataclass(frozen=True)
class _PromptcastNames:
    modules: frozenset[str]  # `pc` in `import promptcast as pc`
    members: frozenset[str]  # `predict` in `from promptcast import predict`


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _is_promptcast_import(stmt: cst.CSTNode) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    node = stmt.body[0]
    if isinstance(node, cst.Import):
        return all(_dotted(a.name).split(".")[0] == "promptcast" for a in node.names)
    if isinstance(node, cst.ImportFrom) and node.module is not None and not node.relative:
        return _dotted(node.module).split(".")[0] == "promptcast"
    return False


def _bound_name(alias: cst.ImportAlias) -> str:
    target = alias.asname.name if alias.asname else alias.name
    return _dotted(target) if isinstance(target, (cst.Name, cst.Attribute)) else ""


def _promptcast_names(module: cst.Module) -> _PromptcastNames:
    modules: set[str] = set()
    members: set[str] = set()
    for stmt in module.body:
        if not (_is_promptcast_import(stmt) and isinstance(stmt, cst.SimpleStatementLine)):
            continue
        node = stmt.body[0]
        if isinstance(node, cst.Import):
            modules.update(_bound_name(alias).split(".")[0] for alias in node.names)
        elif isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
            members.update(_bound_name(alias) for alias in node.names)
    return _PromptcastNames(frozenset(modules), frozenset(members))


def _is_promptcast_decorator(decorator: cst.Decorator, names: _PromptcastNames) -> bool:
    expr = decorator.decorator
    if isinstance(expr, cst.Call):
        expr = expr.func
    dotted = _dotted(expr)
    root = dotted.split(".")[0]
    return (root in names.modules and "." in dotted) or dotted in names.members


class _LeftoverUse(cst.CSTVisitor):
    """Finds uses of promptcast names outside decorators, which the build could not remove."""

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self, names: _PromptcastNames) -> None:
        self.names = names.modules | names.members
        self.found: list[tuple[int, int, str]] = []

    def visit_Decorator(self, node: cst.Decorator) -> bool:
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names:
            pos = self.get_metadata(cst.metadata.PositionProvider, node).start
            self.found.append((pos.line, pos.column + 1, node.value))


def rewrite_module(
    source: str,
    path: str,
    steps: Sequence[CompiledStep],
    programs: Sequence[str],
    header: str,
    runtime_import: str,
) -> str:
    """The generated text of one module.

    `steps` replace the LM functions of those names; `programs` only lose their decorator;
    the first promptcast import becomes `runtime_import` (others are dropped); `header` (comment
    lines) goes on top, after a shebang or encoding line if the file starts with one.
    """
    module = cst.parse_module(source)
    names = _promptcast_names(module)
    _refuse_leftover_uses(module, names, path)
    by_name = {step.name: step for step in steps}
    body: list[cst.CSTNode] = []
    import_placed = False
    for stmt in module.body:
        if _is_promptcast_import(stmt) and isinstance(stmt, cst.SimpleStatementLine):
            if not import_placed and runtime_import:
                replacement = cst.parse_statement(runtime_import)
                body.append(replacement.with_changes(leading_lines=stmt.leading_lines))
                import_placed = True
            continue
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value in by_name:
            step = by_name[stmt.name.value]
            predictor = cst.parse_module(step.predictor_code).body
            leading = stmt.leading_lines
            if body and _is_import(body[-1]) and all(not line.comment for line in leading):
                leading = [cst.EmptyLine()]  # isort: one blank line between imports and code
            first = predictor[0].with_changes(leading_lines=leading)
            body.extend([first, *predictor[1:]])
            body.append(_compiled_function(stmt, step.call_code))
            continue
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value in programs:
            decorators = [d for d in stmt.decorators if not _is_promptcast_decorator(d, names)]
            body.append(stmt.with_changes(decorators=decorators))
            continue
        body.append(stmt)
    if runtime_import and not import_placed:
        body.insert(0, cst.parse_statement(runtime_import))
    new = module.with_changes(body=body)
    return _with_header(new.code, header)


def _is_import(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in node.body
    )


def _compiled_function(stmt: cst.FunctionDef, call_code: str) -> cst.FunctionDef:
    """Same name, parameters, annotations and docstring; decorators gone; body calls the step."""
    body = stmt.body
    assert isinstance(body, cst.IndentedBlock)
    docstring = body.body[0]
    call = cst.parse_statement(call_code)
    return stmt.with_changes(
        decorators=[],
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
        body=body.with_changes(body=[docstring, call]),
    )


def _refuse_leftover_uses(module: cst.Module, names: _PromptcastNames, path: str) -> None:
    wrapper = cst.metadata.MetadataWrapper(module, unsafe_skip_copy=True)
    visitor = _LeftoverUse(names)
    wrapper.visit(visitor)
    if visitor.found:
        raise CompileError(
            [
                Diagnostic(
                    SourceLocation(path, line, column),
                    f"`{name}` (promptcast) is used outside a decorator; the generated module "
                    "does not import promptcast, so keep compiler calls such as "
                    "`pc.configure` out of modules that are built",
                    name,
                )
                for line, column, name in visitor.found
            ]
        )


def _with_header(code: str, header: str) -> str:
    lines = code.splitlines(keepends=True)
    keep = 0
    while (
        keep < len(lines)
        and keep < 2
        and (
            lines[keep].startswith("#!") or "coding" in lines[keep] and lines[keep].startswith("#")
        )
    ):
        keep += 1
    return "".join(lines[:keep]) + header + "".join(lines[keep:])
