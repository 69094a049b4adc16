"""Read a user's package (or one function at development time) into IR.

`load_package` is the build-time entry point: it walks the package in sorted order, so the
result never depends on the filesystem's listing order, parses every module with libcst,
discovers the decorated functions and builds their Signatures. It reads everything before it
reports anything, then raises one `CompileError` listing every problem.

`signature_of_function` is the development-time entry point: called on a live decorated
function, it parses just that function's source file (cached by path and mtime) and returns
the same Signature the build would produce, so what a developer runs is what gets compiled.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from promptcast import ir
from promptcast.frontend.discover import DecoratedFunction, Discovery, PromptcastImport, discover
from promptcast.frontend.errors import CompileError, Diagnostic, raise_if_any
from promptcast.frontend.scope import ModuleScope, Positions, build_scope
from promptcast.frontend.signature import build_signature
from promptcast.frontend.types import TypeResolver
from promptcast_runtime.kinds import kind_list


@dataclass(frozen=True)
class ParsedFile:
    """A source file read and parsed: what the cache keeps and every later stage starts from."""

    path: Path
    display_path: str
    source: str
    tree: cst.Module
    positions: Positions


@dataclass(frozen=True)
class ModuleInfo:
    """One module of the user's package, as the compiler sees it.

    `tree` is the libcst Module whose node objects `discovery` refers to (codegen rewrites it);
    `source` the file's text exactly as read. `signatures` holds one Signature per
    LM function (any registered kind), in source order.
    """

    path: Path
    display_path: str
    name: str
    is_package: bool
    source: str
    tree: cst.Module
    scope: ModuleScope
    discovery: Discovery
    signatures: tuple[ir.Signature, ...]

    @property
    def functions(self) -> tuple[DecoratedFunction, ...]:
        """Every decorated function (LM functions and programs), in source order."""
        return self.discovery.functions

    @property
    def programs(self) -> tuple[DecoratedFunction, ...]:
        return self.discovery.programs

    @property
    def imports(self) -> tuple[PromptcastImport, ...]:
        """The promptcast import statements codegen removes."""
        return self.discovery.imports

    def function(self, name: str) -> DecoratedFunction:
        """The decorated function called `name` (its node, decorator options, location)."""
        for fn in self.discovery.functions:
            if fn.name == name:
                return fn
        raise KeyError(name)


@dataclass(frozen=True)
class Package:
    """A user's package: its modules sorted by dotted name.

    `root` is the package directory (or the single .py file); `name` its top-level dotted name.
    """

    root: Path
    name: str
    modules: tuple[ModuleInfo, ...]

    @property
    def signatures(self) -> tuple[ir.Signature, ...]:
        """Every LM function's Signature, by module name then source order."""
        return tuple(s for m in self.modules for s in m.signatures)

    @property
    def programs(self) -> tuple[tuple[ModuleInfo, DecoratedFunction], ...]:
        return tuple((m, p) for m in self.modules for p in m.programs)

    def module(self, name: str) -> ModuleInfo:
        for info in self.modules:
            if info.name == name:
                return info
        raise KeyError(name)

    def signature(self, qualname: str) -> ir.Signature:
        """The Signature with qualified name `package.module:function`."""
        for sig in self.signatures:
            if sig.qualname == qualname:
                return sig
        raise KeyError(qualname)


# Reading and parsing --------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """How errors name a file: relative to the working directory when inside it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def parse_file(path: Path, diagnostics: list[Diagnostic]) -> ParsedFile | None:
    """Read `path` as UTF-8 and parse it, or record why not (located) and return None."""
    shown = display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        diagnostics.append(
            Diagnostic(ir.SourceLocation(shown, 1, 1), f"cannot read file: {exc.strerror}")
        )
        return None
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        diagnostics.append(
            Diagnostic(
                ir.SourceLocation(shown, line, col),
                f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start});"
                " promptcast reads source files as UTF-8",
            )
        )
        return None
    try:
        tree = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        diagnostics.append(_syntax_error(shown, source, exc))
        return None
    positions = dict(MetadataWrapper(tree, unsafe_skip_copy=True).resolve(PositionProvider))
    return ParsedFile(path.resolve(), shown, source, tree, positions)


def _syntax_error(shown: str, source: str, exc: cst.ParserSyntaxError) -> Diagnostic:
    """Python's own message and position when it has one (libcst's are often coarser)."""
    line, col, message = exc.editor_line, exc.editor_column, exc.message
    if "\x00" in source:
        offset = source.index("\x00")
        line = source.count("\n", 0, offset) + 1
        col = offset - (source.rfind("\n", 0, offset) + 1) + 1
        text = source.splitlines()[line - 1].replace("\x00", "\\x00")
        return Diagnostic(
            ir.SourceLocation(shown, line, col), "syntax error: source contains a NUL byte", text
        )
    try:
        ast.parse(source)
    except SyntaxError as py_exc:
        if py_exc.lineno:
            line, col = py_exc.lineno, py_exc.offset or 1
            message = py_exc.msg
    except (ValueError, MemoryError, RecursionError):
        pass
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return Diagnostic(ir.SourceLocation(shown, line, col), f"syntax error: {message}", text)


def _module_scope(parsed: ParsedFile, name: str, is_package: bool) -> ModuleScope:
    return build_scope(name, is_package, parsed.display_path, parsed.tree, parsed.positions)


def _analyse(
    parsed: ParsedFile,
    scope: ModuleScope,
    resolver: TypeResolver,
    diagnostics: list[Diagnostic],
) -> ModuleInfo:
    discovery = discover(scope, diagnostics)
    signatures = []
    for fn in discovery.lm_functions:
        sig = build_signature(fn, scope, resolver, diagnostics)
        if sig is not None:
            signatures.append(sig)
    return ModuleInfo(
        path=parsed.path,
        display_path=parsed.display_path,
        name=scope.name,
        is_package=scope.is_package,
        source=parsed.source,
        tree=parsed.tree,
        scope=scope,
        discovery=discovery,
        signatures=tuple(signatures),
    )


# Build time -----------------------------------------------------------------------------------


def package_files(root: Path) -> list[tuple[str, bool, Path]]:
    """(dotted name, is_package, path) of every module under package dir `root`, sorted.

    Only directories that are packages (have `__init__.py`) are entered; hidden directories
    and `__pycache__` are skipped.
    """
    found: list[tuple[str, bool, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d != "__pycache__" and (here / d / "__init__.py").is_file()
        )
        parts = [root.name, *here.relative_to(root).parts]
        for filename in sorted(filenames):
            if not filename.endswith(".py") or filename.startswith("."):
                continue
            if filename == "__init__.py":
                found.append((".".join(parts), True, here / filename))
            else:
                found.append((".".join([*parts, filename[:-3]]), False, here / filename))
    return sorted(found)


def load_package(src: Path) -> Package:
    """Parse and analyse the package at `src` (a directory with `__init__.py`, or a .py file).

    Raises `CompileError` with every problem found, sorted by location.
    """
    src = Path(src)
    diagnostics: list[Diagnostic] = []
    if src.is_file() and src.suffix == ".py":
        files = [(src.stem, False, src)]
    elif src.is_dir() and (src / "__init__.py").is_file():
        files = package_files(src)
    else:
        raise CompileError(
            [
                Diagnostic(
                    ir.SourceLocation(display_path(src), 1, 1),
                    "not a Python package or module",
                    supported="a directory containing __init__.py, or a single .py file",
                )
            ]
        )
    scopes: dict[str, tuple[ParsedFile, ModuleScope]] = {}
    for name, is_package, path in files:
        parsed = parse_file(path, diagnostics)
        if parsed is not None:
            scopes[name] = (parsed, _module_scope(parsed, name, is_package))

    def lookup(module: str) -> ModuleScope | None:
        hit = scopes.get(module)
        return hit[1] if hit else None

    resolver = TypeResolver(lookup, diagnostics)
    modules = tuple(
        _analyse(parsed, scope, resolver, diagnostics) for parsed, scope in scopes.values()
    )
    raise_if_any(diagnostics)
    return Package(root=src.resolve(), name=files[0][0].split(".")[0], modules=modules)


# Development time -----------------------------------------------------------------------------

_cache: dict[tuple[Path, int, int], ParsedFile] = {}
_cache_lock = threading.Lock()


def _parse_cached(path: Path, diagnostics: list[Diagnostic]) -> ParsedFile | None:
    """`parse_file`, memoised by (path, mtime, size): decorators call this once per function."""
    try:
        stat = path.stat()
    except OSError:
        return parse_file(path, diagnostics)
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit.display_path == display_path(path):
        return hit
    parsed = parse_file(path, diagnostics)
    if parsed is not None:
        with _cache_lock:
            _cache[key] = parsed
    return parsed


def _module_name_from_path(path: Path) -> str:
    """Dotted name of a file run as `__main__`: walk up while directories are packages."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    here = path.resolve().parent
    while (here / "__init__.py").is_file():
        parts.insert(0, here.name)
        here = here.parent
    return ".".join(parts) or path.stem


def _module_file(module: str) -> tuple[Path, bool] | None:
    """Source file of an importable module (and whether it is a package), without importing it
    when it is already loaded."""
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError, AttributeError):
            return None
        origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    path = Path(origin)
    return path, path.name == "__init__.py"


def signature_of_function(fn: Callable[..., object]) -> ir.Signature:
    """The Signature of a live LM function (any registered kind), read from its source file.

    Equal to the one `load_package` builds for the same function. Classes imported from sibling
    modules are resolved inside the function's top-level package. Raises `CompileError` for
    any problem in the function's module, and `ValueError` if `fn` is not a decorated LM
    function found in its file.
    """
    target = inspect.unwrap(fn)
    source_file = inspect.getsourcefile(target)
    if source_file is None:
        raise ValueError(f"cannot find the source file of {fn!r}")
    path = Path(source_file)
    module = getattr(target, "__module__", None)
    if not module or module == "__main__":
        module = _module_name_from_path(path)
    name = target.__name__
    diagnostics: list[Diagnostic] = []
    parsed = _parse_cached(path, diagnostics)
    if parsed is None:
        raise CompileError(diagnostics)
    top = module.split(".")[0]
    scopes: dict[str, ModuleScope | None] = {
        module: _module_scope(parsed, module, path.name == "__init__.py")
    }

    def lookup(dotted: str) -> ModuleScope | None:
        if dotted.split(".")[0] != top:
            return None
        if dotted not in scopes:
            scopes[dotted] = None
            found = _module_file(dotted)
            if found is not None:
                sibling = _parse_cached(found[0], diagnostics)
                if sibling is not None:
                    scopes[dotted] = _module_scope(sibling, dotted, found[1])
        return scopes[dotted]

    resolver = TypeResolver(lookup, diagnostics)
    scope = scopes[module]
    assert scope is not None
    info = _analyse(parsed, scope, resolver, diagnostics)
    raise_if_any(diagnostics)
    for sig in info.signatures:
        if sig.name == name:
            return sig
    raise ValueError(
        f"{module}:{name} is not a {kind_list()} function at the top level of"
        f" {parsed.display_path}"
    )
