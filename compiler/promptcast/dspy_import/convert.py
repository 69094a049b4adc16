"""`from-dspy` end to end: read the DSPy source and state, write a promptcast project.

The output directory gets a package (`<package>/__init__.py`, `<package>/<module>.py`), a
`promptcast.lock.json` whose entries hold DSPy's saved instructions and demos with
`adapter="dspy"`, and a `pyproject.toml` whose `[tool.promptcast]` points `promptcast build`
at them. Before anything is written, the generated source goes through the real frontend (the
same one `build` uses) in a temporary directory: the lock's signature hashes are the ones the
build will check, and a description the docstring cannot carry exactly (DSPy keeps newlines,
a docstring item reflows them) is an error rather than a silently different prompt.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptcast_runtime.dspy_adapter import DSPY_VERSION
from promptcast_runtime.kinds import check_lm_params, get_kind, step_lm_params

from .. import ir
from ..codegen.build import plan_from_package
from ..errors import PromptcastError
from ..frontend import CompileError, load_package
from ..lockfile import Lock, LockEntry, validate_entry
from .model import DProgram, DSPyImportError
from .reader import read_program
from .state import apply_state, dspy_version, load_state
from .writer import module_source


@dataclass
class Conversion:
    """What `convert` wrote, for the command's report."""

    out: Path
    package: str
    module: str
    steps: dict[str, str] = field(default_factory=dict)
    """Lock qualname -> the DSPy predictor it came from."""
    programs: list[str] = field(default_factory=list)
    demos: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def convert(
    source: Path,
    state_path: Path | None,
    out: Path,
    *,
    package: str | None = None,
    model: str = "",
    lm_params: dict[str, Any] | None = None,
    force: bool = False,
) -> Conversion:
    """Convert the DSPy program in `source` (with its saved state) into a project in `out`."""
    program = read_program(source)
    notes = [f"skipped {s}" for s in program.skipped]
    state_version = None
    if state_path is not None:
        state = load_state(state_path)
        state_version = dspy_version(state)
        notes += apply_state(program, state, state_path)
        if state_version and state_version != DSPY_VERSION:
            notes.append(
                f"the state was saved by DSPy {state_version}; adapter 'dspy' reproduces"
                f" {DSPY_VERSION}'s ChatAdapter (compare with bench/dspy_identical.py)"
            )
    package = package or _identifier(source.stem)
    module = _identifier(source.stem)
    if not package.isidentifier() or not package.islower():
        raise DSPyImportError(f"--package {package!r}: not a lower-case Python package name")
    overrides = dict(lm_params or {})
    problem = check_lm_params(overrides)
    if problem:
        raise DSPyImportError(f"--lm-param: lm_params must be {problem}")
    if out.exists() and any(out.iterdir()) and not force:
        raise DSPyImportError(f"{out}: exists and is not empty (pass --force to replace it)")
    header = (
        f"# Converted from {source.name} by `promptcast from-dspy`"
        + (f" with its saved state {state_path.name}" if state_path else "")
        + ".\n# The optimized instructions and demos are in promptcast.lock.json (adapter"
        f' "dspy": DSPy {DSPY_VERSION}\'s prompt format).'
    )
    text, names, programs = module_source(program, header, _module_doc(source))
    conversion = Conversion(out, package, module, programs=programs, notes=notes)
    with tempfile.TemporaryDirectory(prefix="promptcast-from-dspy-") as tmp:
        root = Path(tmp) / "project"
        pkg = root / package
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(
            f'"""Converted from {source.name} by `promptcast from-dspy`."""\n', encoding="utf-8"
        )
        (pkg / f"{module}.py").write_text(text, encoding="utf-8")
        try:
            loaded = load_package(pkg)
        except CompileError as exc:
            raise DSPyImportError(
                f"{source}: the converted source does not compile as promptcast:\n{exc}"
            ) from None
        lock = Lock()
        for m in program.modules:
            for predictor in m.predictors:
                function = names[(m.name, predictor.attr)]
                qualname = f"{package}.{module}:{function}"
                signature = loaded.signature(qualname)
                _check_descriptions(program, predictor, signature)
                params = step_lm_params(
                    get_kind(signature.kind), {**predictor.lm_params, **overrides}
                )
                locked = ir.FunctionState(
                    instructions=predictor.signature.instructions,
                    demos=tuple(predictor.demos),
                    adapter="dspy",
                    lm_params=params,
                )
                entry = LockEntry(
                    signature_hash=signature.hash(),
                    state=locked,
                    model=model,
                    optimization={
                        "optimizer": "dspy",
                        "imported_from": {
                            "source": source.name,
                            "state": state_path.name if state_path else None,
                            "predictor": predictor.state_key or predictor.attr,
                            "dspy_version": state_version,
                        },
                    },
                )
                validate_entry(qualname, entry)
                lock = lock.with_entry(qualname, entry)
                conversion.steps[qualname] = predictor.state_key or predictor.attr
                conversion.demos[qualname] = len(predictor.demos)
        try:  # what `promptcast build` will do with it, in memory: fail here, not there
            plan_from_package(loaded, pkg, lock)
        except PromptcastError as exc:
            raise DSPyImportError(
                f"{source}: the converted project does not build: {exc}"
            ) from None
        (root / "promptcast.lock.json").write_text(lock.dumps(), encoding="utf-8")
        target = f"{package}.{module}:{programs[0]}"
        (root / "pyproject.toml").write_text(_pyproject(package, target, model), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(root, out)
    return conversion


def _check_descriptions(program: DProgram, predictor: Any, signature: ir.Signature) -> None:
    """Each field's description as the frontend reads it back must be DSPy's, exactly."""
    read = {f.name: f.description for f in (*signature.inputs, *signature.outputs)}
    for f in predictor.signature.fields:
        if read.get(f.name, "") != f.desc:
            raise DSPyImportError(
                f"{program.path}:{f.line}: the description of `{f.name}` ({f.desc!r}) cannot be"
                f" written as a docstring item exactly (it reads back as {read.get(f.name)!r});"
                " DSPy would send it as is, so the prompt would differ"
            )


def _identifier(stem: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem).lower()
    return name if name and not name[0].isdigit() else f"p_{name}"


def _module_doc(source: Path) -> str | None:
    try:
        return ast.get_docstring(ast.parse(source.read_text(encoding="utf-8")), clean=False)
    except SyntaxError:
        return None


def _pyproject(package: str, target: str, model: str) -> str:
    lines = [
        "# Written by `promptcast from-dspy`; every key is also a command-line flag.",
        "[tool.promptcast]",
        f'source = "{package}"',
        'out = "build"',
        f'target = "{target}"',
    ]
    if model:
        lines.append(f'model = "{model}"')
    return "\n".join(lines) + "\n"
