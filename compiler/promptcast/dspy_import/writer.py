"""Converted program -> promptcast source text (one module) and lock entries.

Each DSPy predictor becomes one decorated function (`@pc.predict`, `@pc.chain_of_thought`,
`@pc.react`) named after its attribute, with `adapter="dspy"`, the signature's inputs as
parameters and its outputs as the fields of a NamedTuple it returns -- so `forward`'s
`pred.answer` reads the same in the converted program. The docstring carries the source
instructions and the field descriptions (`Args:` / `Returns:`); the lock carries the saved
instructions and demos, which is what a build ships. Each module's `forward` becomes a
`@pc.program` function with the same body, `self.<predictor>(...)` calls turned into calls of
those functions and `dspy.Prediction(...)` into `types.SimpleNamespace(...)` (attribute access,
as before).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Sequence

from .model import DModule, DPredictor, DProgram, DSPyImportError

TYPING_NAMES = ("Any", "Literal", "Optional", "Union")
"""typing names a string signature's types may use, imported when they do."""


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def function_names(program: DProgram) -> dict[tuple[str, str], str]:
    """(module class, predictor attr) -> function name: the attr, or `<module>_<attr>` where
    two modules of the file use the same attr."""
    counts: dict[str, int] = {}
    for module in program.modules:
        for p in module.predictors:
            counts[p.attr] = counts.get(p.attr, 0) + 1
    return {
        (m.name, p.attr): p.attr if counts[p.attr] == 1 else f"{_snake(m.name)}_{p.attr}"
        for m in program.modules
        for p in m.predictors
    }


def program_name(module: DModule, taken: set[str]) -> str:
    name = _snake(module.name)
    return name if name not in taken else f"{name}_program"


def _docstring(text: str) -> str:
    """`text` as a triple-quoted docstring literal, with escapes where it needs them."""
    body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    return f'"""{body}"""'


def _indent(text: str, by: str) -> str:
    return "\n".join(by + line if line.strip() else "" for line in text.splitlines())


def step_source(function: str, predictor: DPredictor, result_class: str) -> str:
    """The result NamedTuple and the decorated function of one predictor."""
    signature = predictor.signature
    lines = [f"class {result_class}(NamedTuple):"]
    lines += [f"    {f.name}: {f.annotation}" for f in signature.outputs]
    doc = [signature.instructions.strip() or f"Run `{function}`."]
    described = [f for f in signature.inputs if f.desc]
    if described:
        doc += ["", "Args:"] + [f"    {f.name}: {f.desc}" for f in described]
    outputs = [f for f in signature.outputs if f.desc]
    if outputs:
        doc += ["", "Returns:"] + [f"    {f.name}: {f.desc}" for f in outputs]
    options = ['adapter="dspy"']
    if predictor.kind == "react":
        options.insert(0, f"tools=[{', '.join(predictor.tools)}]")
        if predictor.max_iters is not None:
            options.insert(1, f"max_iters={predictor.max_iters}")
    params = ", ".join(f"{f.name}: {f.annotation}" for f in signature.inputs)
    text = "\n".join(doc)
    literal = _docstring(text + ("\n" if "\n" in text else ""))
    return "\n".join(
        [
            *lines,
            "",
            "",
            f"@pc.{predictor.kind}({', '.join(options)})",
            f"def {function}({params}) -> {result_class}:",
            _indent(literal, "    ") if "\n" in literal else "    " + literal,
        ]
    )


def module_source(
    program: DProgram, header: str, module_doc: str | None
) -> tuple[str, dict[tuple[str, str], str], list[str]]:
    """The whole promptcast module, the function name of every predictor, and the program
    function names."""
    names = function_names(program)
    taken = set(names.values())
    parts: list[str] = []
    kept = [k.rstrip("\n") for k in program.kept]
    uses_prediction = any(m.uses_prediction for m in program.modules)
    typing_needed = sorted(
        {
            n
            for m in program.modules
            for p in m.predictors
            if p.signature.name is None
            for f in p.signature.fields
            for n in TYPING_NAMES
            if re.search(rf"\b{n}\b", f.annotation)
        }
    )
    ours = ["from typing import NamedTuple", "import promptcast as pc"]
    ours += [f"from typing import {n}" for n in typing_needed]
    if uses_prediction:
        ours.append("from types import SimpleNamespace")
    plain = [k for k in kept if _simple_import(k)]
    head = [header]
    if module_doc:
        head.append(_docstring(module_doc))
    parts.append("\n".join(head))
    parts.append(organize_imports([*plain, *ours]))
    parts.extend(k for k in kept if k not in plain)
    programs: list[str] = []
    for module in program.modules:
        for predictor in module.predictors:
            function = names[(module.name, predictor.attr)]
            parts.append(step_source(function, predictor, _camel(function) + "Output"))
        name = program_name(module, taken)
        taken.add(name)
        programs.append(name)
        returns = f" -> {module.returns}" if module.returns else ""
        body = module.body
        parts.append(f"@pc.program\ndef {name}({module.params}){returns}:{body}".rstrip())
    _check_clashes(program, names, programs)
    return _formatted("\n\n\n".join(parts) + "\n"), names, programs


def _simple_import(text: str) -> bool:
    """One plain import statement (no comments, no `try`), which can move into the block."""
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return False
    return len(body) == 1 and isinstance(body[0], (ast.Import, ast.ImportFrom)) and "#" not in text


def organize_imports(statements: Sequence[str]) -> str:
    """The import block as isort's (and ruff's) defaults write it: `__future__`, standard
    library, then everything else (promptcast included: in the user's project it is a
    dependency); `import x` before `from x import y` in a section, modules sorted, one line per
    module with its names merged and sorted constants, classes, then functions."""
    straight: dict[str, set[str]] = {}
    froms: dict[tuple[int, str], set[str]] = {}
    for text in statements:
        node = ast.parse(text).body[0]
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name + (f" as {alias.asname}" if alias.asname else "")
                straight.setdefault(alias.name.split(".")[0], set()).add(name)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = {a.name + (f" as {a.asname}" if a.asname else "") for a in node.names}
            froms.setdefault((node.level, module), set()).update(names)
    sections: dict[int, list[tuple[int, str, str]]] = {}
    for top, names in straight.items():
        for name in names:
            sections.setdefault(_section(top, 0), []).append((0, name.lower(), f"import {name}"))
    for (level, module), names in froms.items():
        joined = ", ".join(sorted(names, key=_name_order))
        line = f"from {module} import {joined}"
        sections.setdefault(_section(module.split(".")[0], level), []).append(
            (1, module.lower(), line)
        )
    blocks = ["\n".join(line for *_, line in sorted(sections[k])) for k in sorted(sections)]
    return "\n\n".join(blocks)


def _section(top: str, level: int) -> int:
    if level:
        return 4  # relative: the user's own package
    if top == "__future__":
        return 0
    return 1 if top in sys.stdlib_module_names else 2


def _name_order(name: str) -> tuple[int, str]:
    """isort's `order_by_type`: CONSTANTS, then Classes, then functions and variables."""
    bare = name.split(" ")[0]
    kind = 0 if bare.isupper() and len(bare) > 1 else 1 if bare[:1].isupper() else 2
    return kind, bare


def _formatted(text: str) -> str:
    """black's layout (the compiler formats what it writes with black already); the text as
    written where black refuses it (the frontend then reports why)."""
    import black

    try:
        return black.format_str(text, mode=black.Mode())
    except Exception:  # noqa: BLE001 -- black's parse errors (InvalidInput) are not exported
        return text


def _check_clashes(
    program: DProgram, names: dict[tuple[str, str], str], programs: Sequence[str]
) -> None:
    defined: set[str] = set()
    for text in program.kept:
        match = re.match(r"(?:async\s+)?(?:def|class)\s+(\w+)", text.lstrip())
        if match:
            defined.add(match.group(1))
        for assigned in re.findall(r"^(\w+)\s*(?::[^=\n]*)?=", text, re.M):
            defined.add(assigned)
    for name in [*names.values(), *programs]:
        if name in defined or name in ("pc", "NamedTuple", "SimpleNamespace"):
            raise DSPyImportError(
                f"{program.path}: the converted function `{name}` would shadow a top-level name"
                " of the same file; rename the predictor attribute or that name"
            )
