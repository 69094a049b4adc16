"""Annotations (libcst expressions) -> `ir.TypeSchema`.

The type schema drives three things downstream: the output format the prompt asks for, the
coercion of completion text back into Python values, and the signature hash. So the frontend
accepts exactly the annotations the runtime can render and parse, and rejects everything else
with the offending text and the list of what is supported, rather than guessing.

Names are resolved statically through the module's top-level bindings (`scope`): `Literal`,
`typing.Literal` and `L` (from `from typing import Literal as L`) are the same; user classes
(Enums, NamedTuples, dataclasses, TypedDicts, pydantic models) are found in the same module or in another module of the
package, following re-exports, and never by importing user code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import libcst as cst

from promptcast import ir
from promptcast.frontend.docstrings import parse_docstring
from promptcast.frontend.errors import Diagnostic
from promptcast.frontend.scope import ModuleScope

SUPPORTED_TYPES = (
    "str, int, float, bool, Literal[...] of str/int/bool, Enum subclasses, list[T], "
    "Optional[T] / T | None, dict[str, T], tuple[T1, T2, ...], Annotated[T, ...], and "
    "NamedTuple, @dataclass, TypedDict or pydantic BaseModel classes defined in the package; "
    "for inputs also promptcast.History and promptcast.Image (list[Image], Optional[Image])"
)

ClassShape = Literal["enum", "namedtuple", "dataclass", "typeddict", "pydantic"]

_TYPING = ("typing", "typing_extensions")
_PRIMITIVES: dict[str, ir.TypeKind] = {
    "builtins.str": "str",
    "builtins.int": "int",
    "builtins.float": "float",
    "builtins.bool": "bool",
}
_INPUT_KINDS: dict[str, ir.TypeKind] = {"History": "history", "Image": "image"}
INPUT_TYPES: dict[str, ir.TypeKind] = {
    **{f"promptcast.{n}": k for n, k in _INPUT_KINDS.items()},
    **{f"promptcast_runtime.{n}": k for n, k in _INPUT_KINDS.items()},
    "promptcast_runtime.history.History": "history",
    "promptcast_runtime.media.Image": "image",
}
"""Input-only types: `pc.History` (earlier turns) and `pc.Image`; a build imports the runtime's."""
_ENUM_BASES = frozenset({"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.ReprEnum"})
_NAMEDTUPLE_BASES = frozenset(f"{t}.NamedTuple" for t in _TYPING)
_TYPEDDICT_BASES = frozenset(f"{t}.TypedDict" for t in _TYPING)
_PYDANTIC_BASES = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel"})
_PYDANTIC_FIELD = frozenset({"pydantic.Field", "pydantic.fields.Field"})
_INHERITING_SHAPES = frozenset({"typeddict", "pydantic"})
_DATACLASS = frozenset({"dataclasses.dataclass"})
_AUTO = frozenset({"enum.auto"})
_CLASSVAR = frozenset(f"{t}.ClassVar" for t in _TYPING) | {"dataclasses.InitVar"}


def _typing(qualified: str | None, *names: str) -> bool:
    return qualified is not None and any(qualified == f"{t}.{n}" for t in _TYPING for n in names)


ModuleLookup = Callable[[str], "ModuleScope | None"]
"""Returns the scope of a module of the package by dotted name, or None if it is not one."""


@dataclasses.dataclass(frozen=True)
class ResolvedClass:
    """A user class found in the package: where it is and how it returns values."""

    scope: ModuleScope
    node: cst.ClassDef
    shape: ClassShape | None


class TypeResolver:
    """Resolves annotations across one package; caches the user classes it has resolved."""

    def __init__(self, lookup: ModuleLookup, diagnostics: list[Diagnostic]) -> None:
        self.lookup = lookup
        self.diagnostics = diagnostics
        self._classes: dict[str, ir.TypeSchema | None] = {}
        self._shapes: dict[tuple[str, str], ClassShape] = {}
        self._resolving: list[str] = []

    def shape_of(self, schema: ir.TypeSchema) -> ClassShape | None:
        """`namedtuple`/`dataclass`/`enum` for a user-class schema, else None."""
        if schema.name is None or schema.module is None:
            return None
        return self._shapes.get((schema.module, schema.name))

    # Errors -----------------------------------------------------------------------------------

    def _error(
        self, scope: ModuleScope, node: cst.CSTNode, message: str, anchor: cst.CSTNode | None
    ) -> None:
        at = anchor if anchor is not None else node
        self.diagnostics.append(
            Diagnostic(scope.location(at), message, scope.code(node), SUPPORTED_TYPES)
        )

    def _unsupported(
        self, scope: ModuleScope, node: cst.CSTNode, anchor: cst.CSTNode | None, why: str = ""
    ) -> None:
        text = scope.code(node)
        self._error(scope, node, f"unsupported type `{text}`" + (f": {why}" if why else ""), anchor)

    # Entry point ------------------------------------------------------------------------------

    def resolve(
        self,
        annotation: cst.BaseExpression,
        scope: ModuleScope,
        anchor: cst.CSTNode | None = None,
    ) -> ir.TypeSchema | None:
        """The schema of `annotation` written in `scope`, or None after recording an error.

        `anchor` is the node errors are located at when `annotation` is not itself part of the
        module's tree (the parsed contents of a string annotation).
        """
        source = scope.code(annotation)
        if isinstance(annotation, (cst.SimpleString, cst.ConcatenatedString)):
            return self._resolve_string(annotation, scope, anchor)
        if isinstance(annotation, cst.Subscript):
            return self._resolve_subscript(annotation, scope, anchor)
        if isinstance(annotation, cst.BinaryOperation) and isinstance(
            annotation.operator, cst.BitOr
        ):
            return self._resolve_union(annotation, _union_members(annotation), scope, anchor)
        if isinstance(annotation, cst.Name) and annotation.value == "None":
            return ir.TypeSchema("none", source)
        if not isinstance(annotation, (cst.Name, cst.Attribute)):
            self._unsupported(scope, annotation, anchor)
            return None
        qualified = scope.qualify(annotation)
        if qualified in _PRIMITIVES:
            return ir.TypeSchema(_PRIMITIVES[qualified], source)
        if qualified in INPUT_TYPES:
            return ir.TypeSchema(INPUT_TYPES[qualified], source)
        if qualified in ("builtins.list", "builtins.dict", "builtins.tuple") or _typing(
            qualified, "List", "Dict", "Tuple", "Optional", "Union", "Literal", "Annotated"
        ):
            self._unsupported(scope, annotation, anchor, "it needs type arguments, e.g. list[str]")
            return None
        alias = self._alias_target(annotation, qualified, scope)
        if alias is not None:
            value, alias_scope, key = alias
            if key in self._resolving:
                self._unsupported(scope, annotation, anchor, f"type alias `{key}` refers to itself")
                return None
            self._resolving.append(key)
            try:
                at = anchor if alias_scope is scope else (anchor or annotation)
                schema = self.resolve(value, alias_scope, None if alias_scope is scope else at)
            finally:
                self._resolving.pop()
            return dataclasses.replace(schema, source=source) if schema is not None else None
        if qualified is None:
            name = source
            bound = isinstance(annotation, cst.Name) and annotation.value in scope.bindings
            why = (
                f"`{name}` is not an import or a class (type aliases are not supported)"
                if bound
                else f"`{name}` is not defined or imported in this module"
            )
            self._unsupported(scope, annotation, anchor, why)
            return None
        schema = self._resolve_class(qualified, scope, annotation, anchor)
        return dataclasses.replace(schema, source=source) if schema is not None else None

    def _alias_target(
        self, annotation: cst.BaseExpression, qualified: str | None, scope: ModuleScope
    ) -> tuple[cst.BaseExpression, ModuleScope, str] | None:
        """For a module-level type alias (`Tier = Literal[...]`, `Tier: TypeAlias = ...`), here
        or imported from another module of the package: its value, that module, its key."""
        if isinstance(annotation, cst.Name) and qualified is None:
            where, name = scope, annotation.value
        elif qualified is not None and "." in qualified:
            module, _, name = qualified.rpartition(".")
            found = self.lookup(module)
            if found is None:
                return None
            where = found
        else:
            return None
        bindings = where.bindings.get(name)
        if not bindings:
            return None
        node = bindings[-1].node
        if isinstance(node, cst.Assign) and len(node.targets) == 1:
            target, value = node.targets[0].target, node.value
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            return None
        if not isinstance(target, cst.Name) or target.value != name:
            return None
        if not isinstance(value, (cst.Subscript, cst.Name, cst.Attribute, cst.BinaryOperation)):
            return None
        return value, where, f"{where.name}.{name}"

    # Strings (forward references) -------------------------------------------------------------

    def _resolve_string(
        self,
        node: cst.SimpleString | cst.ConcatenatedString,
        scope: ModuleScope,
        anchor: cst.CSTNode | None,
    ) -> ir.TypeSchema | None:
        value = node.evaluated_value
        try:
            if not isinstance(value, str):
                raise cst.ParserSyntaxError("bytes", lines=[""], raw_line=1, raw_column=0)
            inner = cst.parse_expression(value.strip())
        except cst.ParserSyntaxError:
            self._unsupported(scope, node, anchor, "the string is not a type expression")
            return None
        schema = self.resolve(inner, scope, anchor if anchor is not None else node)
        return dataclasses.replace(schema, source=scope.code(node)) if schema else None

    # Generics ---------------------------------------------------------------------------------

    def _subscript_args(
        self, node: cst.Subscript, scope: ModuleScope, anchor: cst.CSTNode | None
    ) -> list[cst.BaseExpression] | None:
        args: list[cst.BaseExpression] = []
        for element in node.slice:
            if not isinstance(element.slice, cst.Index) or element.slice.star is not None:
                self._unsupported(scope, node, anchor)
                return None
            args.append(element.slice.value)
        return args

    def _resolve_subscript(
        self, node: cst.Subscript, scope: ModuleScope, anchor: cst.CSTNode | None
    ) -> ir.TypeSchema | None:
        source = scope.code(node)
        origin = scope.qualify(node.value)
        args = self._subscript_args(node, scope, anchor)
        if args is None:
            return None
        if _typing(origin, "Literal"):
            return self._resolve_literal(node, args, scope, anchor)
        if _typing(origin, "Annotated"):
            # Metadata (pydantic `Field(...)`, validators) does not change the value's type.
            inner = self.resolve(args[0], scope, anchor)
            return dataclasses.replace(inner, source=source) if inner else None
        if _typing(origin, "Optional"):
            if len(args) != 1:
                self._unsupported(scope, node, anchor, "Optional takes one argument")
                return None
            inner = self.resolve(args[0], scope, anchor)
            return ir.TypeSchema("optional", source, (inner,)) if inner else None
        if _typing(origin, "Union"):
            return self._resolve_union(node, args, scope, anchor)
        if origin == "builtins.list" or _typing(origin, "List"):
            if len(args) != 1:
                self._unsupported(scope, node, anchor, "list takes one type argument")
                return None
            inner = self.resolve(args[0], scope, anchor)
            return ir.TypeSchema("list", source, (inner,)) if inner else None
        if origin == "builtins.dict" or _typing(origin, "Dict"):
            if len(args) != 2:
                self._unsupported(scope, node, anchor, "dict takes two type arguments")
                return None
            key = self.resolve(args[0], scope, anchor)
            if key is not None and key.kind != "str":
                self._unsupported(scope, node, anchor, "dictionary keys must be str")
                return None
            value = self.resolve(args[1], scope, anchor)
            return ir.TypeSchema("dict", source, (key, value)) if key and value else None
        if origin == "builtins.tuple" or _typing(origin, "Tuple"):
            if any(isinstance(a, cst.Ellipsis) for a in args) or not args:
                self._unsupported(
                    scope, node, anchor, "only fixed-length tuples; use list[T] for any length"
                )
                return None
            items = [self.resolve(a, scope, anchor) for a in args]
            if any(i is None for i in items):
                return None
            return ir.TypeSchema("tuple", source, tuple(i for i in items if i is not None))
        self._unsupported(scope, node, anchor)
        return None

    def _resolve_literal(
        self,
        node: cst.Subscript,
        args: list[cst.BaseExpression],
        scope: ModuleScope,
        anchor: cst.CSTNode | None,
    ) -> ir.TypeSchema | None:
        values: list[str | int | bool] = []
        for arg in args:
            value = _literal_value(arg)
            if value is None:
                self._unsupported(
                    scope,
                    node,
                    anchor,
                    f"Literal values must be str, int or bool, not `{scope.code(arg)}`",
                )
                return None
            values.append(value)
        return ir.TypeSchema("literal", scope.code(node), values=tuple(values))

    def _resolve_union(
        self,
        node: cst.BaseExpression,
        members: list[cst.BaseExpression],
        scope: ModuleScope,
        anchor: cst.CSTNode | None,
    ) -> ir.TypeSchema | None:
        source = scope.code(node)
        nones = [m for m in members if _is_none(m, scope)]
        others = [m for m in members if not _is_none(m, scope)]
        if len(others) != 1 or not nones:
            self._unsupported(
                scope, node, anchor, "the only union supported is Optional[T] (T | None)"
            )
            return None
        inner = self.resolve(others[0], scope, anchor)
        return ir.TypeSchema("optional", source, (inner,)) if inner else None

    # User classes -----------------------------------------------------------------------------

    def find_class(self, qualified: str, hops: int = 0) -> ResolvedClass | None:
        """The class a dotted name refers to inside the package, following re-exports."""
        if hops > 20:
            return None
        module, _, name = qualified.rpartition(".")
        scope = self.lookup(module) if module else None
        if scope is None:
            return None
        node = scope.classes.get(name)
        if node is not None:
            return ResolvedClass(scope, node, self._classify(scope, node))
        bindings = scope.bindings.get(name)
        if bindings and bindings[-1].qualified and bindings[-1].qualified != qualified:
            return self.find_class(bindings[-1].qualified, hops + 1)
        return None

    def _classify(self, scope: ModuleScope, node: cst.ClassDef, hops: int = 0) -> ClassShape | None:
        bases = {scope.qualify(b.value) for b in node.bases}
        if bases & _ENUM_BASES:
            return "enum"
        if bases & _NAMEDTUPLE_BASES:
            return "namedtuple"
        if bases & _TYPEDDICT_BASES:
            return "typeddict"
        if bases & _PYDANTIC_BASES:
            return "pydantic"
        for base in self._package_bases(scope, node):
            # A subclass of the package's own TypedDict / pydantic model is one too.
            shape = self._classify(base.scope, base.node, hops + 1) if hops < 20 else None
            if shape in _INHERITING_SHAPES:
                return shape
        for decorator in node.decorators:
            expr = decorator.decorator
            target = expr.func if isinstance(expr, cst.Call) else expr
            if scope.qualify(target) in _DATACLASS:
                return "dataclass"
        return None

    def _package_bases(self, scope: ModuleScope, node: cst.ClassDef) -> list[ResolvedClass]:
        """The base classes of `node` that are classes of this package, in order."""
        found = []
        for base in node.bases:
            qualified = scope.qualify(base.value)
            resolved = self.find_class(qualified) if qualified else None
            if resolved is not None:
                found.append(resolved)
        return found

    def _resolve_class(
        self,
        qualified: str,
        scope: ModuleScope,
        annotation: cst.BaseExpression,
        anchor: cst.CSTNode | None,
    ) -> ir.TypeSchema | None:
        found = self.find_class(qualified)
        if found is None:
            self._unsupported(
                scope,
                annotation,
                anchor,
                f"`{qualified}` is not a class defined in this package",
            )
            return None
        key = f"{found.scope.name}.{found.node.name.value}"
        if found.shape is None:
            self._unsupported(
                scope,
                annotation,
                anchor,
                f"class `{key}` is not an Enum, NamedTuple, @dataclass, TypedDict or pydantic"
                " BaseModel",
            )
            return None
        if key in self._resolving:
            self._unsupported(scope, annotation, anchor, f"class `{key}` refers to itself")
            return None
        if key not in self._classes:
            self._resolving.append(key)
            try:
                self._shapes[(found.scope.name, found.node.name.value)] = found.shape
                if found.shape == "enum":
                    self._classes[key] = self._enum_schema(found)
                else:
                    self._classes[key] = self._record_schema(found)
            finally:
                self._resolving.pop()
        return self._classes[key]

    def _enum_schema(self, found: ResolvedClass) -> ir.TypeSchema | None:
        scope, node = found.scope, found.node
        values: list[str | int | bool] = []
        ok = True
        for stmt in _class_statements(node):
            if not isinstance(stmt, cst.Assign) or len(stmt.targets) != 1:
                continue
            target = stmt.targets[0].target
            if not isinstance(target, cst.Name) or _is_sunder(target.value):
                continue
            value = _literal_value(stmt.value)
            if value is None:
                ok = False
                if isinstance(stmt.value, cst.Call) and scope.qualify(stmt.value.func) in _AUTO:
                    message = (
                        f"enum member `{node.name.value}.{target.value}` uses auto(); the"
                        " compiler needs the value written out"
                    )
                else:
                    message = (
                        f"enum member `{node.name.value}.{target.value}` must have a literal"
                        " str, int or bool value"
                    )
                self.diagnostics.append(
                    Diagnostic(scope.location(stmt.value), message, scope.code(stmt), "")
                )
                continue
            values.append(value)
        if ok and not values:
            self.diagnostics.append(
                Diagnostic(
                    scope.location(node),
                    f"enum `{node.name.value}` has no members",
                    f"class {node.name.value}",
                )
            )
            ok = False
        if not ok:
            return None
        return ir.TypeSchema(
            "enum",
            node.name.value,
            values=tuple(values),
            name=node.name.value,
            module=scope.name,
        )

    def _record_schema(self, found: ResolvedClass) -> ir.TypeSchema | None:
        scope, node = found.scope, found.node
        fields = self._record_fields(found, depth=0)
        if fields is not None and not fields:
            self.diagnostics.append(
                Diagnostic(
                    scope.location(node),
                    f"class `{node.name.value}` has no annotated fields",
                    f"class {node.name.value}",
                )
            )
            return None
        if fields is None:
            return None
        return ir.TypeSchema(
            "object",
            node.name.value,
            name=node.name.value,
            module=scope.name,
            fields=tuple(fields),
        )

    def _record_fields(self, found: ResolvedClass, depth: int) -> list[ir.FieldSpec] | None:
        """The class's annotated fields, inherited ones first (TypedDict, pydantic); None: error.

        Descriptions come from the class docstring (`Attributes:`/`Args:`) or, for pydantic,
        from `Field(description="...")` as the default or inside `Annotated[...]`.
        """
        scope, node = found.scope, found.node
        from promptcast.frontend.discover import docstring_literal

        fields: list[ir.FieldSpec] = []
        ok = True
        if found.shape in _INHERITING_SHAPES and depth < 20:
            for base in self._package_bases(scope, node):
                inherited = self._record_fields(base, depth + 1)
                if inherited is None:
                    ok = False
                else:
                    fields.extend(f for f in inherited if f.name not in {g.name for g in fields})
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        doc = parse_docstring(docstring_literal(tuple(body)))
        descriptions = {**doc.params, **doc.attributes}
        for stmt in _class_statements(node):
            if not isinstance(stmt, cst.AnnAssign) or not isinstance(stmt.target, cst.Name):
                continue
            annotation = stmt.annotation.annotation
            head = annotation.value if isinstance(annotation, cst.Subscript) else annotation
            if scope.qualify(head) in _CLASSVAR:
                continue
            schema = self.resolve(annotation, scope)
            if schema is None:
                ok = False
                continue
            name = stmt.target.value
            description = descriptions.get(name) or self._field_description(stmt, scope)
            spec = ir.FieldSpec(name, schema, description)
            # A redefined field keeps its inherited position, as pydantic and typing order them.
            at = next((i for i, f in enumerate(fields) if f.name == name), len(fields))
            fields[at : at + 1] = [spec]
        return fields if ok else None

    def _field_description(self, stmt: cst.AnnAssign, scope: ModuleScope) -> str:
        """`description=` of a pydantic `Field(...)` default or `Annotated[...]` metadata."""
        calls: list[cst.BaseExpression] = [stmt.value] if stmt.value is not None else []
        annotation = stmt.annotation.annotation
        if isinstance(annotation, cst.Subscript) and _typing(
            scope.qualify(annotation.value), "Annotated"
        ):
            calls += [e.slice.value for e in annotation.slice[1:] if isinstance(e.slice, cst.Index)]
        for call in calls:
            if isinstance(call, cst.Call) and scope.qualify(call.func) in _PYDANTIC_FIELD:
                for arg in call.args:
                    if arg.keyword is not None and arg.keyword.value == "description":
                        value = _literal_value(arg.value)
                        if isinstance(value, str):
                            return value
        return ""


def _class_statements(node: cst.ClassDef) -> list[cst.BaseSmallStatement]:
    if not isinstance(node.body, cst.IndentedBlock):
        return list(node.body.body) if isinstance(node.body, cst.SimpleStatementSuite) else []
    out: list[cst.BaseSmallStatement] = []
    for stmt in node.body.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            out.extend(stmt.body)
    return out


def _is_sunder(name: str) -> bool:
    return name.startswith("_") and name.endswith("_")


def _is_none(node: cst.BaseExpression, scope: ModuleScope) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def _union_members(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return [*_union_members(node.left), *_union_members(node.right)]
    return [node]


def _literal_value(node: cst.BaseExpression) -> str | int | bool | None:
    """The value of a str/int/bool literal expression (`"a"`, `3`, `-3`, `True`), else None."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    if (
        isinstance(node, cst.UnaryOperation)
        and isinstance(node.operator, cst.Minus)
        and isinstance(node.expression, cst.Integer)
    ):
        return -int(node.expression.evaluated_value)
    if isinstance(node, cst.Name) and node.value in ("True", "False"):
        return node.value == "True"
    return None
