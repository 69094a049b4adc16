"""Find the promptcast-decorated functions of one module, whatever the import spelling.

`@pc.predict`, `@promptcast.predict`, `@predict`, `@p` (for `from promptcast import predict
as p`) and the called forms `@pc.predict()` / `@pc.predict(adapter="json")` all mean the same
thing; the module's top-level bindings (see `scope`) say which is which. Discovery also
enforces the shape the compiler relies on: a decorated function is a plain top-level `def`,
and an LM function (any kind of the runtime registry) is only a typed signature plus docstring,
because the compiler writes its body. Everything found wrong is appended to the diagnostics
list; discovery itself never raises.

Codegen rewrites modules with libcst from what this returns without searching again: every
record holds the very node objects of the parsed module (`DecoratedFunction.node`,
`PromptcastImport.node` / `.statement`), so `node is original` checks in a transformer work.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import libcst as cst

from promptcast import ir
from promptcast.frontend.errors import Diagnostic
from promptcast.frontend.scope import ModuleScope, dotted_name
from promptcast_runtime.kinds import ADAPTER_CHOICES, KINDS

DecoratorKind = str
"""A registered module kind (`promptcast_runtime.kinds.KINDS`) or "program"."""
PROGRAM = "program"
LM_KINDS: tuple[DecoratorKind, ...] = tuple(KINDS)
DECORATOR_KINDS: tuple[DecoratorKind, ...] = (*LM_KINDS, PROGRAM)

DECORATOR_OPTIONS: Mapping[DecoratorKind, frozenset[str]] = {
    **{name: frozenset(o.name for o in kind.options) for name, kind in KINDS.items()},
    PROGRAM: frozenset(),
}
"""Keyword arguments each decorator accepts (from the registry; values must be plain literals,
except options read as function names, such as `tools`)."""

ADAPTERS = ADAPTER_CHOICES
"""Values accepted for the `adapter=` option ("auto": the optimizer picks one on dev)."""

PROMPTCAST_MODULES = ("promptcast", "promptcast.api")
"""Modules whose attributes are the decorators (`promptcast.api.predict` is `promptcast.predict`)."""

SUPPORTED_DECORATORS = (
    ", ".join([*(k.example for k in KINDS.values()), f"@pc.{PROGRAM}"])
    + ' (optionally called, e.g. @pc.predict(adapter="json"))'
)


def _needs(kind: str, option: str, doc: str) -> str:
    return f"@{kind} needs `{option}=[...]`: {doc[0].lower()}{doc[1:].rstrip('.')}"


@dataclass(frozen=True)
class PromptcastImport:
    """A statement importing promptcast, which codegen removes from the generated module.

    `statement` is the `SimpleStatementLine` that holds `node`. `names` are the local names it
    binds to promptcast objects. When `only_promptcast` is False the statement also imports
    something else (`import os, promptcast`), so codegen must drop just the promptcast aliases.
    """

    statement: cst.SimpleStatementLine
    node: cst.Import | cst.ImportFrom
    names: tuple[str, ...]
    only_promptcast: bool
    location: ir.SourceLocation


@dataclass(frozen=True)
class DecoratedFunction:
    """A top-level function carrying one promptcast decorator.

    `docstring` is the evaluated value of the docstring literal (None when there is none);
    `options` the decorator's keyword arguments as Python literals.
    """

    name: str
    kind: DecoratorKind
    node: cst.FunctionDef
    decorator: cst.Decorator
    options: Mapping[str, object]
    docstring: str | None
    location: ir.SourceLocation


@dataclass(frozen=True)
class Discovery:
    """Everything promptcast-related found in one module, in source order."""

    functions: tuple[DecoratedFunction, ...] = ()
    imports: tuple[PromptcastImport, ...] = ()

    @property
    def lm_functions(self) -> tuple[DecoratedFunction, ...]:
        """The LM functions (every registered kind): these become Signatures."""
        return tuple(f for f in self.functions if f.kind in LM_KINDS)

    @property
    def programs(self) -> tuple[DecoratedFunction, ...]:
        return tuple(f for f in self.functions if f.kind == PROGRAM)


def _is_promptcast(qualified: str | None) -> bool:
    return qualified is not None and (
        qualified == "promptcast" or qualified.startswith("promptcast.")
    )


def docstring_literal(body: Sequence[cst.BaseSmallStatement | cst.BaseStatement]) -> str | None:
    """The evaluated docstring of a block whose first statement is a plain string literal."""
    if not body:
        return None
    first = body[0]
    if isinstance(first, cst.SimpleStatementLine):
        if not first.body:
            return None
        first = first.body[0]
    if isinstance(first, cst.Expr) and isinstance(
        first.value, (cst.SimpleString, cst.ConcatenatedString)
    ):
        value = first.value.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _small_statements(
    suite: cst.BaseSuite,
) -> list[cst.BaseSmallStatement | cst.BaseCompoundStatement]:
    """The statements of a function body, with `a; b` lines split into their parts."""
    if isinstance(suite, cst.SimpleStatementSuite):
        return list(suite.body)
    out: list[cst.BaseSmallStatement | cst.BaseCompoundStatement] = []
    if isinstance(suite, cst.IndentedBlock):
        for stmt in suite.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                out.extend(stmt.body)
            elif isinstance(stmt, cst.BaseCompoundStatement):
                out.append(stmt)
    return out


_CONTAINER_WORDS: dict[type[cst.CSTNode], str] = {
    cst.ClassDef: "a method (defined inside a class)",
    cst.FunctionDef: "a nested function (defined inside another function)",
    cst.If: "a conditional definition (inside an `if`)",
    cst.Try: "a conditional definition (inside a `try`)",
    cst.TryStar: "a conditional definition (inside a `try`)",
    cst.With: "a conditional definition (inside a `with`)",
    cst.For: "a definition inside a `for` loop",
    cst.While: "a definition inside a `while` loop",
    cst.Match: "a conditional definition (inside a `match`)",
}


class _Collector(cst.CSTVisitor):
    """Walks the module once, remembering which compound statements enclose each node."""

    def __init__(self, scope: ModuleScope, diagnostics: list[Diagnostic]) -> None:
        super().__init__()
        self.scope = scope
        self.diagnostics = diagnostics
        self.stack: list[cst.CSTNode] = []
        self.functions: list[DecoratedFunction] = []
        self.imports: list[PromptcastImport] = []
        self.line: cst.SimpleStatementLine | None = None

    def error(self, node: cst.CSTNode, message: str, text: str = "", supported: str = "") -> None:
        self.diagnostics.append(
            Diagnostic(self.scope.location(node), message, text or self.scope.code(node), supported)
        )

    # Context tracking -------------------------------------------------------------------------

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.SimpleStatementLine):
            self.line = node
        elif isinstance(node, cst.FunctionDef):
            self.check_function(node)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            self.check_import(node)
        if type(node) in _CONTAINER_WORDS:
            self.stack.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if self.stack and self.stack[-1] is original_node:
            self.stack.pop()
        super().on_leave(original_node)

    # Imports ----------------------------------------------------------------------------------

    def check_import(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            modules = [dotted_name(a.name) for a in node.names]
            hits = [m for m in modules if _is_promptcast(m)]
            if not hits:
                return
            names = tuple(
                a.asname.name.value
                if a.asname is not None and isinstance(a.asname.name, cst.Name)
                else dotted_name(a.name).split(".")[0]
                for a in node.names
                if _is_promptcast(dotted_name(a.name))
            )
            only = len(hits) == len(modules)
        else:
            module = self.scope.resolve_relative(
                len(node.relative), dotted_name(node.module) if node.module else None
            )
            if not _is_promptcast(module):
                return
            if isinstance(node.names, cst.ImportStar):
                self.error(
                    node,
                    f"star import from {module}: the compiler cannot tell which names are"
                    " promptcast decorators",
                    supported="`import promptcast as pc` or `from promptcast import predict, ...`",
                )
                return
            names = tuple(
                a.asname.name.value
                if a.asname is not None and isinstance(a.asname.name, cst.Name)
                else dotted_name(a.name)
                for a in node.names
            )
            only = True
        if self.stack or self.line is None:
            self.error(
                node,
                "promptcast must be imported at the top level of the module (the generated"
                " module drops this import, so it cannot be conditional or local)",
            )
            return
        self.imports.append(
            PromptcastImport(self.line, node, names, only, self.scope.location(node))
        )

    # Decorated functions ----------------------------------------------------------------------

    def promptcast_target(self, expr: cst.BaseExpression) -> str | None:
        """`promptcast.<attr>` for an expression naming a promptcast object, else None.

        Unlike `ModuleScope.qualify`, a name counts if *any* top-level binding of it comes from
        promptcast, so a decorator shadowed by a later assignment is still recognised (and the
        shadowing reported) instead of silently ignored.
        """
        if isinstance(expr, cst.Name):
            quals = [b.qualified for b in self.scope.bindings.get(expr.value, [])]
            found = next((q for q in quals if _is_promptcast(q)), None)
        elif isinstance(expr, cst.Attribute):
            base = self.promptcast_target(expr.value)
            found = f"{base}.{expr.attr.value}" if base else None
        else:
            found = None
        if found is None:
            return None
        for module in sorted(PROMPTCAST_MODULES, key=len, reverse=True):
            if found.startswith(module + "."):
                return "promptcast." + found[len(module) + 1 :]
        return found

    def decorator_kind(self, decorator: cst.Decorator) -> tuple[str, cst.Call | None] | None:
        expr = decorator.decorator
        call = expr if isinstance(expr, cst.Call) else None
        target = self.promptcast_target(call.func if call else expr)
        return (target, call) if target else None

    def check_function(self, node: cst.FunctionDef) -> None:
        found: list[tuple[cst.Decorator, DecoratorKind, cst.Call | None]] = []
        foreign: list[cst.Decorator] = []
        for decorator in node.decorators:
            hit = self.decorator_kind(decorator)
            if hit is None:
                foreign.append(decorator)
                continue
            target, call = hit
            attr = target.removeprefix("promptcast.")
            kind = next((k for k in DECORATOR_KINDS if k == attr), None)
            if kind is None:
                self.error(
                    decorator,
                    f"`{target}` is not a promptcast decorator this compiler supports",
                    text="@" + self.scope.code(decorator.decorator),
                    supported=SUPPORTED_DECORATORS,
                )
                continue
            found.append((decorator, kind, call))
        if not found:
            return
        decorator, kind, call = found[0]
        name = node.name.value
        if len(found) > 1:
            self.error(
                found[1][0],
                f"`{name}` has more than one promptcast decorator; use exactly one",
                text="@" + self.scope.code(found[1][0].decorator),
            )
        if self.stack:
            where = _CONTAINER_WORDS[type(self.stack[-1])]
            self.error(
                node.name,
                f"`{name}` is decorated with @{kind} but is {where}; promptcast functions must"
                " be defined at the top level of a module",
                text=_header(self.scope, node),
                supported="top-level `def` statements",
            )
            return
        if node.asynchronous is not None:
            self.error(
                node,
                f"`{name}`: async functions are not supported yet; write a plain `def`"
                " (the compiled function can still be called from async code)",
                text=_header(self.scope, node),
            )
        options = self.check_options(kind, call, decorator)
        docstring = docstring_literal(_small_statements(node.body))
        if kind in LM_KINDS:
            self.check_lm_function(node, kind, docstring, foreign)
        self.functions.append(
            DecoratedFunction(
                name, kind, node, decorator, options, docstring, self.scope.location(node)
            )
        )

    def check_options(
        self, kind: DecoratorKind, call: cst.Call | None, where: cst.CSTNode | None = None
    ) -> dict[str, object]:
        """The decorator's options, each checked by its registry entry (one error each)."""
        options: dict[str, object] = {}
        registered = KINDS.get(kind)
        required = [o for o in registered.options if o.required] if registered else []
        if call is None:
            for option in required:
                if where is not None:
                    self.error(where, _needs(kind, option.name, option.doc))
            return options
        allowed = DECORATOR_OPTIONS[kind]
        if not allowed or registered is None:
            self.error(
                call,
                f"@{kind} takes no arguments and is not called",
                text="@" + self.scope.code(call),
                supported=f"@pc.{kind}",
            )
            return options
        allowed_text = ", ".join(sorted(allowed)) or "no arguments"
        for arg in call.args:
            if arg.keyword is None or arg.star:
                self.error(
                    arg,
                    f"@{kind} takes keyword arguments only",
                    supported=f"keyword arguments: {allowed_text}",
                )
                continue
            key = arg.keyword.value
            if key not in allowed:
                self.error(
                    arg,
                    f"@{kind} has no option `{key}`",
                    supported=f"keyword arguments: {allowed_text}",
                )
                continue
            option = registered.option(key)
            if option.source == "functions":
                names = self.check_functions(key, arg.value)
                if names is not None:
                    options[key] = names
                continue
            try:
                value = ast.literal_eval(self.scope.code(arg.value))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                self.error(
                    arg.value,
                    f"the value of `{key}` must be a plain literal (a string, number, bool,"
                    " None, or a list/tuple/dict of those), not an expression",
                )
                continue
            problem = option.check(value)
            if problem:
                self.error(arg.value, option.error(value, problem), supported=problem)
                continue
            options[key] = value
        given = {a.keyword.value for a in call.args if a.keyword is not None}
        for option in required:
            if option.name not in given:
                self.error(call, _needs(kind, option.name, option.doc))
        return options

    def check_functions(self, key: str, value: cst.BaseExpression) -> tuple[str, ...] | None:
        """`tools=[add, lookup.find]`: the names as written (resolved by the signature step)."""
        if not isinstance(value, (cst.List, cst.Tuple)) or not value.elements:
            self.error(
                value,
                f"`{key}` must be a non-empty list of function names, e.g. {key}=[add, lookup]",
            )
            return None
        names: list[str] = []
        for element in value.elements:
            if not isinstance(element, cst.Element) or not isinstance(
                element.value, (cst.Name, cst.Attribute)
            ):
                self.error(element, "each tool must be a function's name, not an expression")
                return None
            names.append(self.scope.code(element.value))
        return tuple(names)

    def check_lm_function(
        self,
        node: cst.FunctionDef,
        kind: DecoratorKind,
        docstring: str | None,
        foreign: Sequence[cst.Decorator],
    ) -> None:
        name = node.name.value
        for other in foreign:
            self.error(
                other,
                f"`{name}` is an @{kind} function and takes no other decorators (the compiler"
                " replaces the whole function)",
                text="@" + self.scope.code(other.decorator),
            )
        statements = _small_statements(node.body)
        if docstring is None:
            self.error(
                node,
                f"`{name}` has no docstring; an @{kind} function's docstring is its task"
                " description",
                text=_header(self.scope, node),
                supported='a string literal as the first statement: """Classify the question."""',
            )
        rest = statements[1:] if docstring is not None else statements
        allowed_tail = len(rest) == 1 and _is_placeholder(rest[0])
        if rest and not allowed_tail:
            offending = next((s for s in rest if not _is_placeholder(s)), rest[0])
            self.error(
                offending,
                f"`{name}` is an @{kind} function, so its body must be only its docstring"
                " (optionally followed by `...` or `pass`); the compiler writes the body",
            )
        params = node.params
        if isinstance(params.star_arg, cst.Param):
            self.error(
                params.star_arg,
                f"`{name}`: *{params.star_arg.name.value} is not supported; every input must"
                " be a named, annotated parameter",
                text=_param_text(self.scope, params.star_arg),
            )
        if params.star_kwarg is not None:
            self.error(
                params.star_kwarg,
                f"`{name}`: **{params.star_kwarg.name.value} is not supported; every input must"
                " be a named, annotated parameter",
                text=_param_text(self.scope, params.star_kwarg),
            )
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.annotation is None:
                self.error(
                    param,
                    f"parameter `{param.name.value}` of `{name}` has no type annotation",
                    text=_param_text(self.scope, param),
                    supported="an annotation such as `question: str`",
                )
        if node.returns is None:
            self.error(
                node,
                f"`{name}` has no return annotation; the return type is the output",
                text=_header(self.scope, node),
                supported="`-> str`, `-> Literal[...]`, `-> MyNamedTuple`, ...",
            )


def _is_placeholder(stmt: cst.BaseSmallStatement | cst.BaseCompoundStatement) -> bool:
    return isinstance(stmt, cst.Pass) or (
        isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Ellipsis)
    )


def _param_text(scope: ModuleScope, param: cst.Param) -> str:
    """A parameter as written (`*args`, `q`, `r: int = 3`), without its trailing comma."""
    return scope.code(param).strip().removesuffix(",").strip()


def _header(scope: ModuleScope, node: cst.FunctionDef) -> str:
    """`def name(params) -> ret:` as written, without decorators or body."""
    bare = node.with_changes(
        decorators=(),
        leading_lines=(),
        body=cst.SimpleStatementSuite(body=(cst.Expr(cst.Ellipsis()),)),
    )
    return scope.code(bare).strip().removesuffix("...").rstrip()


def _check_shadowing(scope: ModuleScope, diagnostics: list[Diagnostic]) -> None:
    for local, bindings in scope.bindings.items():
        origin = next((b for b in bindings if _is_promptcast(b.qualified)), None)
        if origin is None:
            continue
        for binding in bindings:
            if _is_promptcast(binding.qualified):
                continue
            diagnostics.append(
                Diagnostic(
                    scope.location(binding.node),
                    f"`{local}` is imported from promptcast (at {scope.location(origin.node)})"
                    " and rebound here; a decorator name must refer to promptcast only",
                    _first_line(scope.code(binding.node)),
                )
            )


def _check_duplicates(
    scope: ModuleScope, functions: Sequence[DecoratedFunction], diagnostics: list[Diagnostic]
) -> None:
    for fn in functions:
        others = [b for b in scope.bindings.get(fn.name, []) if b.node is not fn.node]
        if others:
            where = ", ".join(str(scope.location(b.node)) for b in others)
            diagnostics.append(
                Diagnostic(
                    fn.location,
                    f"`{fn.name}` is defined more than once in this module (also at {where});"
                    " each promptcast function needs a unique name",
                    _header(scope, fn.node),
                )
            )


def _first_line(text: str) -> str:
    stripped = text.strip("\n")
    return stripped.splitlines()[0] if stripped else ""


def discover(scope: ModuleScope, diagnostics: list[Diagnostic]) -> Discovery:
    """Find and check the promptcast functions and imports of `scope.tree`."""
    collector = _Collector(scope, diagnostics)
    scope.tree.visit(collector)
    _check_shadowing(scope, diagnostics)
    _check_duplicates(scope, collector.functions, diagnostics)
    return Discovery(functions=tuple(collector.functions), imports=tuple(collector.imports))


__all__ = [
    "ADAPTERS",
    "DECORATOR_KINDS",
    "DECORATOR_OPTIONS",
    "LM_KINDS",
    "DecoratedFunction",
    "DecoratorKind",
    "Discovery",
    "PromptcastImport",
    "discover",
    "docstring_literal",
]
