"""Static reading of a DSPy program's source with libcst: signatures, modules, `forward`.

Never imports or runs the program (like the frontend): DSPy need not be installed, and
reading a file cannot start an LM call or a training run hidden in it. What is read:

- class-based signatures (`class QA(dspy.Signature)` with a docstring and annotated
  `dspy.InputField(desc=...)` / `dspy.OutputField(...)` attributes) and string signatures
  (`"question, context: list[str] -> answer: int"`, also inside `dspy.Signature(text, instr)`);
- `dspy.Module` subclasses whose `__init__` assigns `dspy.Predict`, `dspy.ChainOfThought` or
  `dspy.ReAct` to attributes and whose `forward` composes them in plain Python;
- every other top-level statement: copied when it does not touch DSPy (imports, pydantic models,
  enums, tool functions, constants), dropped and reported when it is DSPy setup or a script.

Anything else DSPy-specific (assertions, `dspy.Refine`, module state other than predictors,
reading a chain of thought's `reasoning`, positional arguments to a predictor) is a
`DSPyImportError` naming the construct and `file:line`: an error is better than a guess.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Sequence
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .model import DField, DModule, DPredictor, DProgram, DSignature, DSPyImportError

PREDICTORS = {"Predict": "predict", "ChainOfThought": "chain_of_thought", "ReAct": "react"}
"""DSPy module classes `from-dspy` converts, and the promptcast kind each becomes."""
FIELD_KWARGS = {"desc", "description", "prefix"}
"""Field keywords that shape ChatAdapter's prompt (`prefix` does not, and is dropped)."""
SAMPLING_KWARGS = {"temperature", "max_tokens", "top_p", "stop", "seed"}
"""Predictor config keywords that become the step's `lm_params`."""
DSPY_NAMES = {
    "Signature",
    "InputField",
    "OutputField",
    "Module",
    "Prediction",
    *PREDICTORS,
}


class _Reader:
    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.shown = str(path)
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError as exc:
            raise DSPyImportError(
                f"{self.shown}:{exc.raw_line}: not valid Python: {exc.message}"
            ) from None
        self.wrapper = MetadataWrapper(module)
        self.module = self.wrapper.module
        self.positions = self.wrapper.resolve(PositionProvider)
        self.dspy_aliases: set[str] = set()
        """Names bound to the `dspy` package (`import dspy`, `import dspy as d`)."""
        self.dspy_names: dict[str, str] = {}
        """Local name -> DSPy name for `from dspy import Predict as P`."""
        self.signatures: dict[str, DSignature] = {}

    # --- helpers ------------------------------------------------------------------------------

    def line(self, node: cst.CSTNode) -> int:
        return int(self.positions[node].start.line)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

    def fail(self, node: cst.CSTNode, message: str) -> DSPyImportError:
        text = self.code(node).splitlines()[0][:100] if self.code(node) else ""
        return DSPyImportError(f"{self.shown}:{self.line(node)}: {message}: `{text}`")

    def dspy_name(self, expr: cst.BaseExpression) -> str | None:
        """`Predict` for `dspy.Predict`, `dspy.predict.Predict` or an imported `Predict`."""
        if isinstance(expr, cst.Name):
            return self.dspy_names.get(expr.value)
        if isinstance(expr, cst.Attribute):
            root: cst.BaseExpression = expr
            while isinstance(root, cst.Attribute):
                root = root.value
            if isinstance(root, cst.Name) and root.value in self.dspy_aliases:
                return expr.attr.value
        return None

    def touches_dspy(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The first name in `node` that refers to DSPy, or None."""
        names = set(self.dspy_aliases) | set(self.dspy_names)
        found: list[cst.CSTNode] = []

        class Finder(cst.CSTVisitor):
            def visit_Name(self, name: cst.Name) -> None:
                if name.value in names and not found:
                    found.append(name)

        node.visit(Finder())
        return found[0] if found else None

    def literal(self, expr: cst.BaseExpression, what: str) -> object:
        try:
            return ast.literal_eval(self.code(expr))
        except (ValueError, SyntaxError):
            raise self.fail(expr, f"{what} must be a literal value") from None

    # --- top level ----------------------------------------------------------------------------

    def read(self) -> DProgram:
        for stmt in self.module.body:
            self.note_imports(stmt)
        kept: list[str] = []
        skipped: list[str] = []
        modules: list[DModule] = []
        pending: list[cst.ClassDef] = []
        for index, stmt in enumerate(self.module.body):
            if index == 0 and isinstance(stmt, cst.SimpleStatementLine) and _is_docstring(stmt):
                continue  # the module docstring: the writer puts it back at the top
            if isinstance(stmt, cst.ClassDef):
                bases = [self.dspy_name(b.value) for b in stmt.bases]
                if "Signature" in bases:
                    self.signatures[stmt.name.value] = self.class_signature(stmt)
                    continue
                if "Module" in bases:
                    pending.append(stmt)
                    continue
                if any(bases) or any(
                    b.value.value in self.signatures
                    for b in stmt.bases
                    if isinstance(b.value, cst.Name)
                ):
                    raise self.fail(stmt, "a class deriving from a DSPy class other than"
                                    " dspy.Signature or dspy.Module is not supported")  # fmt: skip
            if self.is_dspy_import(stmt):
                continue
            if _is_main_guard(stmt):
                skipped.append(f"line {self.line(stmt)}: `if __name__ == ...` (a script)")
                continue
            hit = self.touches_dspy(stmt)
            if hit is not None:
                if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)):
                    raise self.fail(
                        hit, f"`{stmt.name.value}` uses DSPy outside a signature or module"
                    )
                first = self.code(stmt).splitlines()[0][:80]
                skipped.append(f"line {self.line(stmt)}: `{first}` (DSPy setup)")
                continue
            kept.append(self.module.code_for_node(stmt).strip("\n"))
        for cls in pending:
            modules.append(self.dspy_module(cls))
        if not modules:
            raise DSPyImportError(
                f"{self.shown}: no `dspy.Module` subclass found; from-dspy converts a module"
                " whose `forward` composes Predict / ChainOfThought / ReAct"
            )
        return DProgram(self.shown, modules, kept, skipped)

    def note_imports(self, stmt: cst.CSTNode) -> None:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    name = self.code(alias.name)
                    if name == "dspy" or name.startswith("dspy."):
                        bound = alias.asname.name if alias.asname else None
                        if isinstance(bound, cst.Name):
                            self.dspy_aliases.add(bound.value)
                        else:
                            self.dspy_aliases.add("dspy")
            elif isinstance(small, cst.ImportFrom) and small.module is not None:
                module = self.code(small.module)
                if module != "dspy" and not module.startswith("dspy."):
                    continue
                if isinstance(small.names, cst.ImportStar):
                    raise self.fail(small, "`from dspy import *` hides which names are DSPy's")
                for alias in small.names:
                    real = self.code(alias.name)
                    bound_name: cst.BaseExpression = (
                        alias.asname.name if alias.asname else alias.name
                    )
                    if isinstance(bound_name, cst.Name):
                        self.dspy_names[bound_name.value] = real

    def is_dspy_import(self, stmt: cst.CSTNode) -> bool:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return False
        for small in stmt.body:
            if isinstance(small, cst.Import) and all(
                self.code(a.name).split(".")[0] == "dspy" for a in small.names
            ):
                return True
            if (
                isinstance(small, cst.ImportFrom)
                and small.module is not None
                and self.code(small.module).split(".")[0] == "dspy"
            ):
                return True
        return False

    # --- signatures ---------------------------------------------------------------------------

    def class_signature(self, cls: cst.ClassDef) -> DSignature:
        body = list(cls.body.body)
        doc: str | None = None
        fields: list[DField] = []
        for i, stmt in enumerate(body):
            if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
                raise self.fail(stmt, f"signature `{cls.name.value}`: only a docstring and"
                                " annotated fields are supported in a signature class")  # fmt: skip
            small = stmt.body[0]
            if (
                i == 0
                and isinstance(small, cst.Expr)
                and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
            ):
                doc = str(self.literal(small.value, "the docstring"))
                continue
            if isinstance(small, (cst.Pass, cst.Expr)) and (
                isinstance(small, cst.Pass) or self.code(small) == "..."
            ):
                continue
            if not isinstance(small, cst.AnnAssign) or not isinstance(small.target, cst.Name):
                raise self.fail(stmt, f"signature `{cls.name.value}`: a field must be written"
                                " `name: type = dspy.InputField(...)` or `dspy.OutputField(...)`")  # fmt: skip
            fields.append(self.class_field(cls.name.value, small))
        if not any(f.role == "input" for f in fields) or not any(
            f.role == "output" for f in fields
        ):
            raise self.fail(cls, f"signature `{cls.name.value}` needs an input and an output field")
        instructions = inspect.cleandoc(doc) if doc is not None else _default_instructions(fields)
        return DSignature(cls.name.value, instructions, fields, self.line(cls))

    def class_field(self, owner: str, node: cst.AnnAssign) -> DField:
        assert isinstance(node.target, cst.Name)
        name = node.target.value
        value = node.value
        if not isinstance(value, cst.Call):
            raise self.fail(node, f"field `{owner}.{name}` must be assigned dspy.InputField(...)"
                            " or dspy.OutputField(...)")  # fmt: skip
        kind = self.dspy_name(value.func)
        if kind not in ("InputField", "OutputField"):
            raise self.fail(node, f"field `{owner}.{name}`: `{self.code(value.func)}` is not"
                            " dspy.InputField or dspy.OutputField")  # fmt: skip
        desc: str | None = None
        description: str | None = None
        for arg in value.args:
            if arg.keyword is None:
                raise self.fail(arg, f"field `{owner}.{name}`: positional arguments")
            key = arg.keyword.value
            if key not in FIELD_KWARGS:
                raise self.fail(
                    arg,
                    f"field `{owner}.{name}`: `{key}=` is not supported (DSPy turns it into"
                    " prompt text or validation promptcast does not reproduce); supported:"
                    " desc, description, prefix",
                )
            text = self.literal(arg.value, f"`{key}=`")
            if not isinstance(text, str):
                raise self.fail(arg, f"field `{owner}.{name}`: `{key}=` must be a string")
            if key == "desc":
                desc = text
            elif key == "description":
                description = text
        annotation = self.code(node.annotation.annotation)
        return DField(
            name,
            "input" if kind == "InputField" else "output",
            annotation,
            desc if desc is not None else (description or ""),
            self.line(node),
        )

    def string_signature(
        self, node: cst.CSTNode, text: str, instructions: str | None
    ) -> DSignature:
        if text.count("->") != 1:
            raise self.fail(node, "a string signature needs exactly one `->`")
        left, right = text.split("->")
        fields = [
            *self.string_fields(node, left, "input"),
            *self.string_fields(node, right, "output"),
        ]
        if not fields or not any(f.role == "input" for f in fields):
            raise self.fail(node, "a string signature needs input and output fields")
        if instructions is None:
            instructions = _default_instructions(fields)
        return DSignature(None, inspect.cleandoc(instructions), fields, self.line(node))

    def string_fields(self, node: cst.CSTNode, text: str, role: str) -> list[DField]:
        out: list[DField] = []
        for part in _split_top_level(text):
            name, _, annotation = part.partition(":")
            name, annotation = name.strip(), annotation.strip() or "str"
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise self.fail(node, f"string signature field {name!r} is not a name")
            try:
                ast.parse(annotation, mode="eval")
            except SyntaxError:
                raise self.fail(node, f"string signature field `{name}`: type {annotation!r}"
                                " is not a Python annotation") from None  # fmt: skip
            out.append(DField(name, role, annotation, "", self.line(node)))
        return out

    def signature_arg(self, expr: cst.BaseExpression) -> DSignature:
        """The signature argument of a predictor: a class name, a string, or
        `dspy.Signature("...", "instructions")`."""
        if isinstance(expr, cst.Name) and expr.value in self.signatures:
            return self.signatures[expr.value]
        if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
            return self.string_signature(expr, str(self.literal(expr, "the signature")), None)
        if isinstance(expr, cst.Call) and self.dspy_name(expr.func) == "Signature":
            args = [a for a in expr.args if a.keyword is None]
            if not args or len(args) > 2 or len(args) != len(expr.args):
                raise self.fail(expr, "dspy.Signature(...) takes a string signature and"
                                " optional instructions here")  # fmt: skip
            text = self.literal(args[0].value, "the signature")
            instructions = self.literal(args[1].value, "instructions") if len(args) > 1 else None
            if not isinstance(text, str) or not isinstance(instructions, (str, type(None))):
                raise self.fail(expr, "dspy.Signature(...) takes strings here")
            return self.string_signature(expr, text, instructions)
        raise self.fail(expr, "a predictor's signature must be a dspy.Signature class defined in"
                        " this file, a string signature, or"
                        " dspy.Signature(\"...\", \"...\")")  # fmt: skip

    # --- modules ------------------------------------------------------------------------------

    def dspy_module(self, cls: cst.ClassDef) -> DModule:
        init: cst.FunctionDef | None = None
        forward: cst.FunctionDef | None = None
        for stmt in cls.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
                init = stmt
            elif isinstance(stmt, cst.FunctionDef) and stmt.name.value == "forward":
                forward = stmt
            elif isinstance(stmt, cst.SimpleStatementLine) and _is_docstring(stmt):
                continue
            else:
                raise self.fail(stmt, f"module `{cls.name.value}`: only `__init__` and"
                                " `forward` are supported in a dspy.Module")  # fmt: skip
        if init is None or forward is None:
            raise self.fail(cls, f"module `{cls.name.value}` needs `__init__` and `forward`")
        predictors = self.predictors(cls.name.value, init)
        params, body, returns, uses_prediction = self.forward(cls.name.value, forward, predictors)
        return DModule(
            cls.name.value, predictors, params, body, returns, self.line(cls), uses_prediction
        )

    def predictors(self, owner: str, init: cst.FunctionDef) -> list[DPredictor]:
        params = [p.name.value for p in init.params.params]
        extra = isinstance(init.params.star_arg, cst.Param) or init.params.star_kwarg
        if params != ["self"] or extra or init.params.kwonly_params:
            raise self.fail(init, f"module `{owner}`: `__init__` taking arguments is not"
                            " supported (the program must be fixed at conversion time)")  # fmt: skip
        found: list[DPredictor] = []
        body = init.body.body if isinstance(init.body, cst.IndentedBlock) else ()
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                raise self.fail(stmt, f"module `{owner}`: only predictor assignments are"
                                " supported in `__init__`")  # fmt: skip
            for small in stmt.body:
                if _is_super_init(small) or _is_docstring_expr(small):
                    continue
                if not (
                    isinstance(small, cst.Assign)
                    and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Attribute)
                    and isinstance(small.targets[0].target.value, cst.Name)
                    and small.targets[0].target.value.value == "self"
                    and isinstance(small.value, cst.Call)
                ):
                    raise self.fail(small, f"module `{owner}`: `__init__` may only assign"
                                    " dspy.Predict / ChainOfThought / ReAct to `self.<name>`"
                                    " (other module state is not supported)")  # fmt: skip
                target = small.targets[0].target
                assert isinstance(target, cst.Attribute)
                found.append(self.predictor(owner, target.attr.value, small.value))
        if not found:
            raise self.fail(init, f"module `{owner}` assigns no predictor in `__init__`")
        return found

    def predictor(self, owner: str, attr: str, call: cst.Call) -> DPredictor:
        name = self.dspy_name(call.func)
        if name not in PREDICTORS:
            what = self.code(call.func)
            raise self.fail(call, f"module `{owner}`: `self.{attr} = {what}(...)` is not"
                            f" supported; from-dspy converts {', '.join('dspy.' + p for p in PREDICTORS)}")  # fmt: skip
        positional = [a for a in call.args if a.keyword is None]
        if len(positional) != 1:
            raise self.fail(call, f"`dspy.{name}(...)` needs its signature as the one"
                            " positional argument")  # fmt: skip
        signature = self.signature_arg(positional[0].value)
        predictor = DPredictor(attr, PREDICTORS[name], signature, self.line(call))
        for arg in call.args:
            if arg.keyword is None:
                continue
            key = arg.keyword.value
            if name == "ReAct" and key == "tools":
                if not isinstance(arg.value, cst.List) or not all(
                    isinstance(e.value, cst.Name) for e in arg.value.elements
                ):
                    raise self.fail(arg, "ReAct `tools=` must be a list of function names")
                predictor.tools = [
                    e.value.value for e in arg.value.elements if isinstance(e.value, cst.Name)
                ]
            elif name == "ReAct" and key == "max_iters":
                value = self.literal(arg.value, "`max_iters=`")
                if not isinstance(value, int):
                    raise self.fail(arg, "`max_iters=` must be a whole number")
                predictor.max_iters = value
            elif key in SAMPLING_KWARGS:
                predictor.lm_params[key] = self.literal(arg.value, f"`{key}=`")
            else:
                raise self.fail(arg, f"`dspy.{name}(..., {key}=...)` is not supported")
        if name == "ReAct" and not predictor.tools:
            raise self.fail(call, "dspy.ReAct needs `tools=[...]`")
        return predictor

    def forward(
        self, owner: str, node: cst.FunctionDef, predictors: Sequence[DPredictor]
    ) -> tuple[str, str, str | None, bool]:
        params = node.params
        first = params.params[0].name.value if params.params else None
        if first != "self" or params.posonly_params:
            raise self.fail(node, f"module `{owner}`: `forward` must be a plain method")
        if isinstance(params.star_arg, cst.Param):
            raise self.fail(node, f"module `{owner}`: `forward(*args)` is not supported; name"
                            " the inputs")  # fmt: skip
        if params.star_kwarg is not None:
            raise self.fail(node, f"module `{owner}`: `forward(**kwargs)` is not supported;"
                            " name the inputs")  # fmt: skip
        rest = params.with_changes(params=params.params[1:])
        returns = node.returns
        returns_text = None
        if returns is not None and self.touches_dspy(returns) is None:
            returns_text = self.code(returns.annotation)
        rewriter = _ForwardRewriter(self, {p.attr for p in predictors})
        body = node.body.visit(rewriter)
        if rewriter.error is not None:
            raise rewriter.error
        assert isinstance(body, cst.CSTNode)
        text = cst.Module(body=[]).code_for_node(body)
        return self.module.code_for_node(rest), text, returns_text, rewriter.uses_prediction


class _ForwardRewriter(cst.CSTTransformer):
    """`self.<predictor>(k=v)` -> `<predictor>(k=v)`; `dspy.Prediction(...)` ->
    `SimpleNamespace(...)`; every other use of `self` or DSPy is an error."""

    def __init__(self, reader: _Reader, attrs: set[str]) -> None:
        self.reader = reader
        self.attrs = attrs
        self.error: DSPyImportError | None = None
        self.uses_prediction = False
        self.allowed: set[int] = set()

    def fail(self, node: cst.CSTNode, message: str) -> None:
        if self.error is None:
            self.error = self.reader.fail(node, message)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
        ):
            if func.attr.value not in self.attrs:
                self.fail(node, f"`self.{func.attr.value}(...)` is not one of the module's"
                          " predictors")  # fmt: skip
                return
            if any(a.keyword is None for a in node.args):
                self.fail(node, f"`self.{func.attr.value}(...)` with positional arguments (DSPy"
                          " predictors take keyword arguments only)")  # fmt: skip
            self.allowed.add(id(func.value))
        elif self.reader.dspy_name(func) == "Prediction":
            if any(a.keyword is None for a in node.args):
                self.fail(node, "`dspy.Prediction(...)` with positional arguments")
            self.allowed.update(id(n) for n in _names(func))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.fail(node, "a function defined inside `forward` is not supported")

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "reasoning":
            self.fail(node, "reading `reasoning` from a prediction is not supported (a promptcast"
                      " chain of thought keeps its reasoning inside the step)")  # fmt: skip

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self.allowed:
            return
        if node.value == "self":
            self.fail(node, "`self` may only call the module's predictors in `forward`")
        elif node.value in self.reader.dspy_aliases or node.value in self.reader.dspy_names:
            self.fail(node, "DSPy used in `forward` beyond calling predictors and building a"
                      " dspy.Prediction is not supported")  # fmt: skip

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = original.func
        if (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
        ):
            return updated.with_changes(func=cst.Name(func.attr.value))
        if self.reader.dspy_name(func) == "Prediction":
            self.uses_prediction = True
            return updated.with_changes(func=cst.Name("SimpleNamespace"))
        return updated


def _names(node: cst.CSTNode) -> list[cst.Name]:
    out: list[cst.Name] = []

    class Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            out.append(name)

    node.visit(Collect())
    return out


def _default_instructions(fields: Sequence[DField]) -> str:
    """DSPy's `_default_instructions` for a signature without a docstring."""
    inputs = ", ".join(f"`{f.name}`" for f in fields if f.role == "input")
    outputs = ", ".join(f"`{f.name}`" for f in fields if f.role == "output")
    return f"Given the fields {inputs}, produce the fields {outputs}."


def _split_top_level(text: str) -> list[str]:
    """`a, b: dict[str, int]` -> ["a", "b: dict[str, int]"] (commas inside brackets stay)."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _is_main_guard(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.If) and "__name__" in cst.Module(body=[]).code_for_node(stmt.test)


def _is_docstring(stmt: cst.SimpleStatementLine) -> bool:
    return len(stmt.body) == 1 and _is_docstring_expr(stmt.body[0])


def _is_docstring_expr(small: cst.BaseSmallStatement) -> bool:
    return isinstance(small, cst.Expr) and isinstance(
        small.value, (cst.SimpleString, cst.ConcatenatedString)
    )


def _is_super_init(small: cst.BaseSmallStatement) -> bool:
    code = cst.Module(body=[]).code_for_node(small).replace(" ", "")
    return code in ("super().__init__()", "super(self.__class__,self).__init__()")


def read_program(path: Path) -> DProgram:
    """Read the DSPy program in `path` (never importing it)."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DSPyImportError(f"{path}: cannot read: {exc}") from None
    return _Reader(path, source).read()
