"""Module-level name bindings: which dotted name does a name in this module refer to?

Discovery needs it to recognise `@pc.predict`, `@predict`, `@p` or `@promptcast.predict` as
the same decorator; type resolution needs it to recognise `Literal`, `typing.Literal` or
`L`, and to find `Label` in `from .models import Label`. Both ask one question: the fully
qualified name of an expression such as `pc.predict`, answered from the module's top-level
imports, class definitions and assignments. Only module level matters: decorators and
annotations of the functions we compile are evaluated there.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import CodeRange

from promptcast import ir

BUILTIN_NAMES = frozenset(dir(builtins))

Positions = Mapping[cst.CSTNode, CodeRange]


@dataclass(frozen=True)
class Binding:
    """One top-level binding of a name: where it points and the statement that made it."""

    qualified: str | None
    """Dotted name it refers to (`typing.Literal`, `app.models.Label`); None if not an import
    or class (an assignment, a function, a loop variable...)."""
    node: cst.CSTNode
    """The `Import`/`ImportFrom`/`ClassDef`/`FunctionDef`/assignment that binds it."""


@dataclass
class ModuleScope:
    """What the frontend knows about one parsed module.

    `bindings` maps each top-level name to every binding of it in source order (more than one
    means it is rebound); `classes` holds the top-level class definitions.
    """

    name: str
    is_package: bool
    path: str
    tree: cst.Module
    positions: Positions
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)

    def location(self, node: cst.CSTNode) -> ir.SourceLocation:
        """1-based line and column of `node` in this module."""
        start = self.positions[node].start
        return ir.SourceLocation(self.path, start.line, start.column + 1)

    def code(self, node: cst.CSTNode) -> str:
        return self.tree.code_for_node(node)

    def resolve_relative(self, level: int, module: str | None) -> str | None:
        """The absolute module of `from {'.' * level}{module} import ...` written here."""
        if level == 0:
            return module
        parts = self.name.split(".")
        if not self.is_package:
            parts = parts[:-1]
        drop = level - 1
        if drop > len(parts) or (drop == len(parts) and not module):
            return None
        base = parts[: len(parts) - drop]
        return ".".join([*base, *([module] if module else [])]) or None

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        """Fully qualified dotted name of `Name` / `Attribute` chains, or None if unknown.

        A name bound more than once at module level is ambiguous for a static compiler and
        resolves to the last binding (callers report the rebinding separately).
        """
        if isinstance(expr, cst.Name):
            found = self.bindings.get(expr.value)
            if found:
                return found[-1].qualified
            if expr.value in BUILTIN_NAMES:
                return f"builtins.{expr.value}"
            return None
        if isinstance(expr, cst.Attribute):
            base = self.qualify(expr.value)
            return f"{base}.{expr.attr.value}" if base else None
        return None


def dotted_name(expr: cst.BaseExpression) -> str:
    """`a.b.c` for a `Name`/`Attribute` chain (the text of an import's module)."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return f"{dotted_name(expr.value)}.{expr.attr.value}"
    return ""


def _is_type_checking(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Name) and test.value == "TYPE_CHECKING") or (
        isinstance(test, cst.Attribute) and test.attr.value == "TYPE_CHECKING"
    )


def _target_names(target: cst.BaseExpression) -> list[cst.Name]:
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in _target_names(el.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def build_scope(
    name: str, is_package: bool, path: str, tree: cst.Module, positions: Positions
) -> ModuleScope:
    """Collect the top-level bindings of `tree` (and of `if TYPE_CHECKING:` blocks)."""
    scope = ModuleScope(name, is_package, path, tree, positions)

    def bind(local: str, qualified: str | None, node: cst.CSTNode) -> None:
        scope.bindings.setdefault(local, []).append(Binding(qualified, node))

    def visit_small(stmt: cst.BaseSmallStatement) -> None:
        if isinstance(stmt, cst.Import):
            for alias in stmt.names:
                module = dotted_name(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    bind(alias.asname.name.value, module, stmt)
                else:
                    top = module.split(".")[0]
                    bind(top, top, stmt)
        elif isinstance(stmt, cst.ImportFrom):
            level = len(stmt.relative)
            module_text = dotted_name(stmt.module) if stmt.module is not None else None
            source_module = scope.resolve_relative(level, module_text)
            if isinstance(stmt.names, cst.ImportStar):
                return
            for alias in stmt.names:
                original = dotted_name(alias.name)
                local = original
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    local = alias.asname.name.value
                bind(local, f"{source_module}.{original}" if source_module else None, stmt)
        elif isinstance(stmt, cst.Assign):
            for target in stmt.targets:
                for n in _target_names(target.target):
                    bind(n.value, None, stmt)
        elif isinstance(stmt, (cst.AnnAssign, cst.AugAssign)):
            for n in _target_names(stmt.target):
                bind(n.value, None, stmt)

    def visit_statements(body: object, top: bool) -> None:
        if not isinstance(body, (list, tuple)):
            return
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    visit_small(small)
            elif isinstance(stmt, cst.ClassDef):
                bind(stmt.name.value, f"{name}.{stmt.name.value}", stmt)
                if top:
                    scope.classes[stmt.name.value] = stmt
            elif isinstance(stmt, cst.FunctionDef):
                bind(stmt.name.value, None, stmt)
            elif isinstance(stmt, cst.If) and _is_type_checking(stmt.test):
                visit_statements(_block_body(stmt.body), top=False)
            elif isinstance(stmt, (cst.For, cst.With)):
                targets = (
                    [stmt.target]
                    if isinstance(stmt, cst.For)
                    else [i.asname.name for i in stmt.items if i.asname is not None]
                )
                for target in targets:
                    for n in _target_names(target):
                        bind(n.value, None, stmt)

    visit_statements(tree.body, top=True)
    return scope


def _block_body(suite: cst.BaseSuite) -> tuple[cst.BaseStatement, ...] | tuple[()]:
    if isinstance(suite, cst.IndentedBlock):
        return tuple(suite.body)
    return ()
