"""Discovery: every import spelling of the decorators, and every located error about shape."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from promptcast.frontend import CompileError, Package, load_package


def make_package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return pkg


def load(root: Path, source: str, name: str = "mod.py") -> Package:
    return load_package(make_package(root, {name: source}))


def errors(root: Path, source: str) -> list[tuple[int, int, str]]:
    with pytest.raises(CompileError) as info:
        load(root, source)
    for d in info.value.diagnostics:
        assert d.location.path.endswith("mod.py")
    return [(d.location.line, d.location.column, d.message) for d in info.value.diagnostics]


def one_error(root: Path, source: str) -> tuple[int, int, str]:
    found = errors(root, source)
    assert len(found) == 1, found
    return found[0]


BODY = '''
    def f(q: str) -> str:
        """Do it."""
'''


@pytest.mark.parametrize(
    ("imports", "decorator", "kind"),
    [
        ("import promptcast as pc", "@pc.predict", "predict"),
        ("import promptcast", "@promptcast.predict", "predict"),
        ("import promptcast.api", "@promptcast.api.chain_of_thought", "chain_of_thought"),
        ("from promptcast import predict", "@predict", "predict"),
        ("from promptcast import predict as p", "@p", "predict"),
        ("from promptcast import chain_of_thought as cot", "@cot()", "chain_of_thought"),
        ("import promptcast as pc", "@pc.predict()", "predict"),
        ("import promptcast as pc", '@pc.predict(adapter="json")', "predict"),
        ("from promptcast.api import predict", "@predict", "predict"),
        ("import os, promptcast as pc", "@pc.chain_of_thought", "chain_of_thought"),
    ],
)
def test_decorator_spellings(tmp_path: Path, imports: str, decorator: str, kind: str) -> None:
    pkg = load(tmp_path, f"{imports}\n\n{decorator}\n{textwrap.dedent(BODY)}")
    module = pkg.module("pkg.mod")
    assert [(f.name, f.kind) for f in module.functions] == [("f", kind)]
    assert [s.qualname for s in module.signatures] == ["pkg.mod:f"]
    assert module.signatures[0].kind == kind
    assert len(module.imports) == 1
    imp = module.imports[0]
    assert imp.location.line == 1
    assert imp.statement in module.tree.body  # the very node codegen will remove
    assert imp.only_promptcast == (not imports.startswith("import os"))


def test_options_and_node_identity(tmp_path: Path) -> None:
    pkg = load(
        tmp_path,
        '''
        import promptcast as pc

        @pc.predict(adapter="json")
        def f(q: str, n: int = 3) -> str:
            """Do it."""

        @pc.program
        def run(q: str) -> str:
            return f(q)
        ''',
    )
    module = pkg.module("pkg.mod")
    fn = module.function("f")
    assert fn.options == {"adapter": "json"}
    assert fn.node in module.tree.body
    assert fn.decorator in fn.node.decorators
    assert [p.name for _, p in pkg.programs] == ["run"]
    assert module.programs[0].location.line == 8
    # programs are recorded, not turned into Signatures
    assert [s.name for s in module.signatures] == ["f"]
    # defaults are kept in the tree for codegen
    assert isinstance(fn.node.params.params[1].default, cst.Integer)


def test_placeholder_bodies_and_one_liners(tmp_path: Path) -> None:
    pkg = load(
        tmp_path,
        '''
        import promptcast as pc

        @pc.predict
        def a(q: str) -> str:
            """Do it."""
            ...

        @pc.predict
        def b(q: str) -> str:
            "Do it."
            pass

        @pc.predict
        def c(q: str) -> str: "Do it."

        @pc.predict
        def d(q: str) -> str:
            """Do """ "it."
        ''',
    )
    sigs = pkg.module("pkg.mod").signatures
    assert [s.instructions for s in sigs] == ["Do it."] * 4


def test_unrelated_decorators_and_functions_are_ignored(tmp_path: Path) -> None:
    pkg = load(
        tmp_path,
        """
        import functools
        predict = functools.cache

        @predict
        def helper(x):
            return x
        """,
    )
    assert pkg.module("pkg.mod").functions == ()


CASES: list[tuple[str, str, tuple[int, int, str]]] = [
    (
        "method",
        '''
        import promptcast as pc

        class K:
            @pc.predict
            def m(self, q: str) -> str:
                """Do it."""
        ''',
        (5, 9, "`m` is decorated with @predict but is a method (defined inside a class)"),
    ),
    (
        "nested",
        '''
        import promptcast as pc

        def outer():
            @pc.predict
            def inner(q: str) -> str:
                """Do it."""
        ''',
        (5, 9, "is a nested function (defined inside another function)"),
    ),
    (
        "conditional-if",
        '''
        import promptcast as pc
        import sys

        if sys.version_info > (3,):
            @pc.chain_of_thought
            def f(q: str) -> str:
                """Do it."""
        ''',
        (6, 9, "is a conditional definition (inside an `if`)"),
    ),
    (
        "conditional-try",
        """
        import promptcast as pc

        try:
            @pc.program
            def f(q: str) -> str:
                return q
        except Exception:
            pass
        """,
        (5, 9, "is a conditional definition (inside a `try`)"),
    ),
    (
        "star-import",
        """
        from promptcast import *
        """,
        (1, 1, "star import from promptcast"),
    ),
    (
        "shadowed",
        '''
        from promptcast import predict

        predict = lambda f: f

        @predict
        def f(q: str) -> str:
            """Do it."""
        ''',
        (3, 1, "`predict` is imported from promptcast (at "),
    ),
    (
        "shadowed-module-alias",
        """
        import promptcast as pc

        def pc():
            pass
        """,
        (3, 1, "`pc` is imported from promptcast"),
    ),
    (
        "body",
        '''
        import promptcast as pc

        @pc.predict
        def f(q: str) -> str:
            """Do it."""
            return q.upper()
        ''',
        (6, 5, "so its body must be only its docstring (optionally followed by `...` or `pass`)"),
    ),
    (
        "body-two-placeholders",
        '''
        import promptcast as pc

        @pc.predict
        def f(q: str) -> str:
            """Do it."""
            ...
            ...
        ''',
        (6, 5, "so its body must be only its docstring"),
    ),
    (
        "body-compound",
        '''
        import promptcast as pc

        @pc.chain_of_thought
        def f(q: str) -> str:
            """Do it."""
            if q:
                pass
        ''',
        (6, 5, "@chain_of_thought function, so its body must be only its docstring"),
    ),
    (
        "no-docstring",
        """
        import promptcast as pc

        @pc.predict
        def f(q: str) -> str:
            ...
        """,
        (4, 1, "`f` has no docstring"),
    ),
    (
        "missing-param-annotation",
        '''
        import promptcast as pc

        @pc.predict
        def f(q, n: int) -> str:
            """Do it."""
        ''',
        (4, 7, "parameter `q` of `f` has no type annotation"),
    ),
    (
        "missing-return-annotation",
        '''
        import promptcast as pc

        @pc.predict
        def f(q: str):
            """Do it."""
        ''',
        (4, 1, "`f` has no return annotation"),
    ),
    (
        "star-args",
        '''
        import promptcast as pc

        @pc.predict
        def f(q: str, *rest: str) -> str:
            """Do it."""
        ''',
        (4, 15, "`f`: *rest is not supported"),
    ),
    (
        "star-kwargs",
        '''
        import promptcast as pc

        @pc.predict
        def f(q: str, **kw: str) -> str:
            """Do it."""
        ''',
        (4, 15, "`f`: **kw is not supported"),
    ),
    (
        "duplicate",
        '''
        import promptcast as pc

        @pc.predict
        def f(q: str) -> str:
            """Do it."""

        def f(q):
            return q
        ''',
        (4, 1, "`f` is defined more than once in this module (also at "),
    ),
    (
        "async",
        '''
        import promptcast as pc

        @pc.predict
        async def f(q: str) -> str:
            """Do it."""
        ''',
        (4, 1, "`f`: async functions are not supported yet"),
    ),
    (
        "unknown-option",
        '''
        import promptcast as pc

        @pc.predict(temperature=0.5)
        def f(q: str) -> str:
            """Do it."""
        ''',
        (3, 13, "@predict has no option `temperature`"),
    ),
    (
        "positional-option",
        '''
        import promptcast as pc

        @pc.predict("json")
        def f(q: str) -> str:
            """Do it."""
        ''',
        (3, 13, "@predict takes keyword arguments only"),
    ),
    (
        "non-literal-option",
        '''
        import promptcast as pc
        ADAPTER = "json"

        @pc.predict(adapter=ADAPTER)
        def f(q: str) -> str:
            """Do it."""
        ''',
        (4, 21, "the value of `adapter` must be a plain literal"),
    ),
    (
        "bad-adapter",
        '''
        import promptcast as pc

        @pc.predict(adapter="xml")
        def f(q: str) -> str:
            """Do it."""
        ''',
        (3, 21, "unknown adapter 'xml'"),
    ),
    (
        "program-called",
        """
        import promptcast as pc

        @pc.program()
        def f(q: str) -> str:
            return q
        """,
        (3, 2, "@program takes no arguments"),
    ),
    (
        "unknown-decorator",
        '''
        import promptcast as pc

        @pc.retrieve(k=3)
        def f(q: str) -> str:
            """Do it."""
        ''',
        (3, 1, "`promptcast.retrieve` is not a promptcast decorator this compiler supports"),
    ),
    (
        "two-promptcast-decorators",
        '''
        import promptcast as pc

        @pc.predict
        @pc.chain_of_thought
        def f(q: str) -> str:
            """Do it."""
        ''',
        (4, 1, "`f` has more than one promptcast decorator"),
    ),
    (
        "foreign-decorator",
        '''
        import functools
        import promptcast as pc

        @functools.cache
        @pc.predict
        def f(q: str) -> str:
            """Do it."""
        ''',
        (4, 1, "`f` is an @predict function and takes no other decorators"),
    ),
    (
        "local-import",
        """
        def main():
            import promptcast
            promptcast.configure()
        """,
        (2, 5, "promptcast must be imported at the top level of the module"),
    ),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_located_errors(tmp_path: Path, source: str, expected: tuple[int, int, str]) -> None:
    line, col, message = one_error(tmp_path, source)
    assert (line, col) == expected[:2], message
    assert expected[2] in message


def test_fstring_is_not_a_docstring(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """
        import promptcast as pc

        @pc.predict
        def f(q: str) -> str:
            f"Do {q}"
        """,
    )
    assert [(line, col) for line, col, _ in found] == [(4, 1), (5, 5)]
    assert "`f` has no docstring" in found[0][2]
    assert "body must be only its docstring" in found[1][2]


def test_all_errors_reported_sorted(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        '''
        import promptcast as pc

        @pc.predict
        def b(q) -> str:
            return 1

        @pc.predict
        def a(q: str):
            """Do it."""
        ''',
    )
    assert [(line, col) for line, col, _ in found] == [(4, 1), (4, 7), (5, 5), (8, 1)]


def test_rendered_error_names_file_text_and_supported(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        load(
            tmp_path,
            '''
            import promptcast as pc

            @pc.predict(adapter="xml")
            def f(q: str) -> str:
                """Do it."""
            ''',
        )
    text = str(info.value)
    first = text.splitlines()[0]
    assert first.endswith("pkg/mod.py:3:21: unknown adapter 'xml'")
    assert '    "xml"' in text
    assert "supported: 'chat', 'json'" in text
    assert text.endswith("1 error")


def test_discovery_order_is_source_order(tmp_path: Path) -> None:
    names = ["zeta", "alpha", "mid", "beta"]
    source = "import promptcast as pc\n" + "".join(
        f'\n@pc.predict\ndef {n}(q: str) -> str:\n    """Do {n}."""\n' for n in names
    )
    pkg = load(tmp_path, source)
    assert [s.name for s in pkg.signatures] == names
