"""No import cycles in either package, counting imports inside functions too.

An import inside a function only postpones a cycle: the two modules still depend on each other,
and the first import from the "wrong" side at the wrong moment fails. This walks every import
statement of both packages (at any depth) and fails naming each cycle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = [
    (ROOT / "compiler" / "promptcast", "promptcast"),
    (ROOT / "runtime" / "promptcast_runtime", "promptcast_runtime"),
]


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports (a parent package's own `__init__`
    excluded: Python always initializes parents first, which is not a cycle)."""
    modules = {_module_name(p, root)[0]: p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        _, is_package = _module_name(path, root)
        here = name.split(".") if is_package else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                named = [f"{target}.{a.name}" for a in node.names]
                submodules = [n for n in named if n in modules]
                deps.update(submodules)
                if len(submodules) < len(named):
                    deps.add(target)
        graph[name] = {
            d for d in deps if d in modules and d != name and not name.startswith(d + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(("root", "package"), PACKAGES, ids=[p for _, p in PACKAGES])
def test_no_import_cycles(root: Path, package: str) -> None:
    graph = import_graph(root, package)
    assert len(graph) > 10
    assert cycles(graph) == []


def test_the_runtime_never_imports_the_compiler() -> None:
    graph = import_graph(*PACKAGES[1])
    for path in PACKAGES[1][0].rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            assert not any(n == "promptcast" or n.startswith("promptcast.") for n in names), path
    assert graph


def test_optimizers_see_a_program_only_through_the_engine_and_the_ir() -> None:
    """DESIGN: optimizers never import the decorators or the development context."""
    graph = import_graph(*PACKAGES[0])
    optimizers = [m for m in graph if m.startswith("promptcast.optimizers.")]
    assert len(optimizers) >= 8
    for module in optimizers:
        forbidden = graph[module] & {"promptcast.api", "promptcast.context", "promptcast.targets"}
        assert not forbidden, (module, forbidden)
