"""Source package + lock -> the generated tree, planned in memory, then written atomically.

`plan_build` makes no LM call and reads nothing but the source and the lock, so the same inputs
give byte-identical output. `write_tree` replaces the output directory in one step (an atomic
directory exchange where the OS has one), so a crash leaves the old tree or the new one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promptcast_runtime

from .. import __version__, ir
from ..errors import PromptcastError
from ..frontend.errors import CompileError, Diagnostic
from ..frontend.package import ModuleInfo, Package, load_package
from ..fsutil import remove_stale_temps, temp_prefix
from ..lockfile import Lock
from ..media import media_files
from .emit import (
    RUNTIME_NAMES,
    predictor_var,
    render_async_call,
    render_call,
    render_header,
    render_predictor,
    render_stream_calls,
    render_stream_returns,
    runtime_aliases,
)
from .rewrite import CompiledStep, rewrite_module, sampling_uses, twin_names

RUNTIME_PACKAGE = "promptcast_runtime"
MARKER = ".promptcast-build"
"""Written into every output tree: only a directory holding it may be replaced by a build."""
MARKER_TEXT = b"This directory is written by `promptcast build` and replaced whole on each build.\n"
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".promptcast"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


class BuildError(PromptcastError):
    """The build cannot go ahead (bad paths); nothing was written."""


@dataclass(frozen=True)
class BuildPlan:
    """Every file of the output tree: relative POSIX path -> bytes."""

    files: dict[str, bytes]
    generated: tuple[str, ...]  # the modules that were rewritten


def check_paths(src: Path, out: Path) -> None:
    """Refuse an output that overlaps the source either way (we would copy or erase ourselves)."""
    src_r, out_r = src.resolve(), out.resolve()
    src_dir = src_r if src_r.is_dir() else src_r.parent
    if out_r == src_dir or src_dir in out_r.parents:
        raise BuildError(f"output {out} is inside the source {src}; choose a directory outside it")
    if out_r in src_r.parents:
        raise BuildError(
            f"source {src} is inside the output {out}; choose another output directory"
        )
    if out.exists() and not out.is_dir():  # the swap would move the file away, then crash
        raise BuildError(f"output {out} exists and is not a directory; choose a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        # The whole directory is replaced: never do that to one a build did not write.
        raise BuildError(
            f"output {out} is a non-empty directory that `promptcast build` did not write "
            f"(no {MARKER} in it); refusing to replace it: choose an empty or new directory"
        )


def plan_build(
    src: Path,
    lock: Lock,
    *,
    vendor_runtime: bool = False,
    lm_params: dict[str, Any] | None = None,
) -> BuildPlan:
    """The whole output tree. `lm_params` are the project's sampling parameters, used by the
    steps the lock has no entry for (zero-shot), exactly as `optimize` and `eval` use them."""
    package = load_package(src)
    return plan_from_package(package, src, lock, vendor_runtime=vendor_runtime, lm_params=lm_params)


def plan_from_package(
    package: Package,
    src: Path,
    lock: Lock,
    *,
    vendor_runtime: bool = False,
    lm_params: dict[str, Any] | None = None,
) -> BuildPlan:
    root = src.parent
    files: dict[str, bytes] = {}
    for path in _package_files(src):
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    generated: list[str] = []
    for module in package.modules:
        if not module.signatures and not module.programs:
            continue
        rel = Path(module.path).resolve().relative_to(root.resolve()).as_posix()
        files[rel] = _generate_module(module, rel, lock, lm_params).encode("utf-8")
        generated.append(rel)
        for signature in module.signatures:  # demo images, beside the module that loads them
            state = lock.state_for(signature, lm_params)
            files.update(media_files(state, lock.root, posixpath.dirname(rel)))
    if vendor_runtime:
        files.update(_runtime_files())
    files[MARKER] = MARKER_TEXT
    return BuildPlan(dict(sorted(files.items())), tuple(sorted(generated)))


def _generate_module(
    module: ModuleInfo, rel: str, lock: Lock, lm_params: dict[str, Any] | None
) -> str:
    signatures: list[ir.Signature] = list(module.signatures)
    taken = set(_module_level_names(module.source))
    _refuse_taken_async_names(module, taken)
    promptcast_names = {name for imp in module.imports for name in imp.names}
    aliases = runtime_aliases(taken - promptcast_names)  # promptcast imports are replaced
    taken |= set(aliases.values())
    steps: list[CompiledStep] = []
    needed: set[str] = set(RUNTIME_NAMES) if signatures else set()
    models: set[str] = set()
    scores: list[str] = []
    for signature in signatures:
        state = lock.state_for(signature, lm_params)
        var = predictor_var(signature, taken)
        taken.add(var)
        entry = lock.entries.get(signature.qualname)
        target = entry.model if entry is not None else None
        steps.append(
            CompiledStep(
                signature.name,
                render_predictor(signature, state, var, aliases, target),
                render_call(signature, var),
                render_async_call(signature, var),
                render_stream_calls(signature, var),
                render_stream_returns(signature, aliases),
            )
        )
        if entry is not None:
            if entry.model:
                models.add(entry.model)
            after = entry.optimization.get("dev_score_after")
            if after is not None:
                scores.append(f"{signature.name} {float(after):.4g}")
    lock_hash = lock.entries_hash(s.qualname for s in signatures)
    header = render_header(rel, __version__, lock_hash, sorted(models), scores)
    sampling = sampling_uses(module)
    _refuse_shadowed_sampling(module, sampling, taken - promptcast_names - set(aliases.values()))
    runtime_import = _runtime_import(needed, aliases, sampling)
    return rewrite_module(module, steps, header, runtime_import)


def _refuse_taken_async_names(module: ModuleInfo, taken: set[str]) -> None:
    """Each LM function gets twins (`<name>_async`, `<name>_stream`, `<name>_astream`,
    `rewrite.twin_names`); the module must not use those names."""
    clashes = [
        (s, twin, what)
        for s in module.signatures
        for twin, what in twin_names(s.name).items()
        if twin in taken
    ]
    if clashes:
        raise CompileError(
            Diagnostic(
                s.location,
                f"`{twin}` is defined in this module, but the build generates it as"
                f" {what} of `{s.name}`; rename yours",
                twin,
            )
            for s, twin, what in clashes
        )


def _runtime_import(
    needed: set[str], aliases: dict[str, str], sampling: dict[str, str] | None = None
) -> str:
    """The runtime import lines, laid out as isort does: plain names, then one line per alias.

    `sampling` (local name -> runtime name) adds the sampling functions the module uses.
    """
    local = {name: aliases[name] for name in needed}
    for as_name, name in (sampling or {}).items():
        local.setdefault(name, as_name)
    ordered = sorted(local, key=_isort_key)
    plain = [name for name in ordered if local[name] == name]
    lines = [f"from {RUNTIME_PACKAGE} import {', '.join(plain)}\n"] if plain else []
    if lines and len(lines[0]) > 89:  # past isort's 88 columns: one name per line, as it wraps
        lines = [f"from {RUNTIME_PACKAGE} import (\n" + "".join(f"    {n},\n" for n in plain) + ")\n"]
    lines += [
        f"from {RUNTIME_PACKAGE} import {name} as {local[name]}\n"
        for name in ordered
        if local[name] != name
    ]
    return "".join(lines)


def _refuse_shadowed_sampling(module: ModuleInfo, uses: dict[str, str], taken: set[str]) -> None:
    """`pc.best_of_n` builds to a bare `best_of_n`; a module that defines its own cannot."""
    clashes = sorted(local for local in uses if local in taken)
    if clashes:
        first = module.imports[0].location if module.imports else None
        raise CompileError(
            Diagnostic(
                first or module.signatures[0].location,
                f"`{name}` is defined in this module, but the build turns `pc.{name}` into the"
                f" runtime's `{name}`; rename yours",
                name,
            )
            for name in clashes
        )


def _isort_key(name: str) -> tuple[int, str]:
    """isort's default order of imported names: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def _module_level_names(source: str) -> Iterator[str]:
    import ast

    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            yield from (t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from ((a.asname or a.name).split(".")[0] for a in node.names)


def _package_files(src: Path) -> Iterator[Path]:
    if src.is_file():
        yield src
        return
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix not in _SKIP_SUFFIXES:
                yield path


def _runtime_files() -> dict[str, bytes]:
    """The runtime's own source, for `--vendor-runtime`: stdlib-only, so it travels as is."""
    runtime_dir = Path(promptcast_runtime.__file__).parent
    files = {
        f"{RUNTIME_PACKAGE}/{path.name}": path.read_bytes()
        for path in sorted(runtime_dir.glob("*.py"))
    }
    files[f"{RUNTIME_PACKAGE}/py.typed"] = b""
    return files


def stale_files(plan: BuildPlan, out: Path) -> list[str]:
    """Relative paths that differ between the plan and the tree on disk (missing, changed, extra)."""
    stale = []
    on_disk = (
        {p.relative_to(out).as_posix() for p in _package_files(out)} if out.is_dir() else set()
    )
    for rel, data in plan.files.items():
        path = out / rel
        if not path.is_file() or path.read_bytes() != data:
            stale.append(rel)
    stale.extend(sorted(on_disk - set(plan.files)))
    return sorted(stale)


def write_tree(plan: BuildPlan, out: Path) -> None:
    """Write the whole tree to a sibling temp dir, then swap it in for `out` in one step."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, ".new")  # trees a killed build left half-written
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out), suffix=".new", dir=out.parent))
    try:
        for rel, data in plan.files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if out.exists():
            _exchange(tmp, out)  # tmp now holds the old tree
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> None:
    """Atomically swap two directories (Linux renameat2); elsewhere, two renames."""
    libc_name = ctypes.util.find_library("c")
    renameat2 = (
        getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
    )
    if renameat2 is not None:
        result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if result == 0:
            return
    old = b.with_name(b.name + ".old")
    os.replace(b, old)
    os.replace(a, b)
    os.replace(old, a)
