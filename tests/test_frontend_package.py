"""Package loading: walking, reading, parsing, determinism, dev-time identity, hash stability."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptcast import ir
from promptcast.frontend import CompileError, load_package, signature_of_function
from promptcast.frontend import package as package_module
from promptcast_runtime.kinds import kind_list

FIXTURES = Path(__file__).parent / "fixtures" / "frontend"
GOODPKG = FIXTURES / "goodpkg"


def make_package(root: Path, files: dict[str, str | bytes], name: str = "pkg") -> Path:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return pkg


GOOD = '''
import promptcast as pc

@pc.predict
def f(q: str) -> str:
    """Do it."""
'''


def test_fixture_package_modules_and_signatures() -> None:
    pkg = load_package(GOODPKG)
    assert pkg.name == "goodpkg"
    assert pkg.root == GOODPKG.resolve()
    assert [m.name for m in pkg.modules] == [
        "goodpkg",
        "goodpkg.classify",
        "goodpkg.models",
        "goodpkg.spellings",
        "goodpkg.sub",
        "goodpkg.sub.more",
    ]
    assert [s.qualname for s in pkg.signatures] == [
        "goodpkg.classify:question_type",
        "goodpkg.classify:sentiment",
        "goodpkg.classify:triage",
        "goodpkg.classify:flags",
        "goodpkg.spellings:extract",
        "goodpkg.spellings:scores",
        "goodpkg.spellings:solve",
        "goodpkg.spellings:pair",
        "goodpkg.spellings:maybe",
        "goodpkg.sub.more:entity",
        "goodpkg.sub.more:label",
    ]
    classify = pkg.module("goodpkg.classify")
    assert classify.is_package is False and pkg.module("goodpkg.sub").is_package
    assert classify.source == (GOODPKG / "classify.py").read_text(encoding="utf-8")
    assert classify.tree.code == classify.source
    assert classify.path == (GOODPKG / "classify.py").resolve()
    assert [p.name for p in classify.programs] == ["pipeline"]
    assert classify.function("triage").options == {"adapter": "json"}

    qt = pkg.signature("goodpkg.classify:question_type")
    assert qt.instructions == "Classify the kind of answer a question asks for."
    assert qt.docstring.startswith("Classify the kind of answer a question asks for.\n\nArgs:")
    assert qt.inputs == (
        ir.FieldSpec("question", ir.TypeSchema("str", "str"), "A question in English."),
    )
    assert qt.outputs[0].name == "answer"
    assert qt.outputs[0].description == "The coarse TREC answer type."
    assert qt.return_type.values == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert qt.location.path.endswith("goodpkg/classify.py")
    assert (qt.location.line, qt.location.column) == (12, 1)

    triage = pkg.signature("goodpkg.classify:triage")
    assert triage.kind == "chain_of_thought"
    assert triage.return_shape == "namedtuple"
    assert [(o.name, o.description) for o in triage.outputs] == [
        ("label", "How the customer feels."),
        ("priority", "How urgent it is."),
        ("note", "Anything worth telling a human."),
    ]
    assert [i.name for i in triage.inputs] == ["ticket", "history"]
    assert pkg.signature("goodpkg.classify:sentiment").outputs[0].name == "output"


def test_walk_order_does_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_package(GOODPKG)
    real_walk = os.walk

    def reversed_walk(
        top: str | os.PathLike[str], **kw: object
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        for dirpath, dirnames, filenames in real_walk(top):
            dirnames.reverse()
            filenames.reverse()
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(package_module.os, "walk", reversed_walk)
    second = load_package(GOODPKG)
    assert [m.name for m in second.modules] == [m.name for m in first.modules]
    assert second.signatures == first.signatures


def test_skips_non_packages_and_caches(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "mod.py": GOOD,
            "scripts/tool.py": "this is not python (",  # no __init__.py: not part of the package
            "__pycache__/x.py": "(",
            ".hidden/y.py": "(",
            "notes.txt": "(",
        },
    )
    pkg = load_package(root)
    assert [m.name for m in pkg.modules] == ["pkg", "pkg.mod"]


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "single.py"
    path.write_text(textwrap.dedent(GOOD))
    pkg = load_package(path)
    assert pkg.name == "single"
    assert [s.qualname for s in pkg.signatures] == ["single:f"]


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        load_package(tmp_path)
    assert "not a Python package or module" in str(info.value)
    assert "supported: a directory containing __init__.py" in str(info.value)


def test_non_utf8_file_is_a_located_error(tmp_path: Path) -> None:
    root = make_package(tmp_path, {"good.py": GOOD, "bad.py": b"x = 1\ny = '\xe9t\xe9'\n"})
    with pytest.raises(CompileError) as info:
        load_package(root)
    [diag] = info.value.diagnostics
    assert diag.location.path.endswith("pkg/bad.py")
    assert (diag.location.line, diag.location.column) == (2, 6)
    assert "not valid UTF-8 (byte 0xe9" in diag.message


def test_syntax_error_is_located_and_collected_with_others(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "a.py": "def f(:\n    pass\n",
            "b.py": "import promptcast as pc\n\n@pc.predict\ndef g(q) -> str:\n    'Do.'\n",
        },
    )
    with pytest.raises(CompileError) as info:
        load_package(root)
    found = [
        (Path(d.location.path).name, d.location.line, d.location.column)
        for d in info.value.diagnostics
    ]
    assert found == [("a.py", 1, 7), ("b.py", 4, 7)]
    assert info.value.diagnostics[0].message.startswith("syntax error:")
    assert info.value.diagnostics[0].source_text == "def f(:"
    assert str(info.value).endswith("2 errors")


def test_nul_byte_is_a_syntax_error(tmp_path: Path) -> None:
    root = make_package(tmp_path, {"a.py": b"x = 1\ny = \x00\n"})
    with pytest.raises(CompileError) as info:
        load_package(root)
    [diag] = info.value.diagnostics
    assert (diag.location.line, diag.location.column) == (2, 5)
    assert "syntax error: source contains a NUL byte" in diag.message


def test_bom_is_accepted(tmp_path: Path) -> None:
    root = make_package(tmp_path, {"mod.py": b"\xef\xbb\xbf" + textwrap.dedent(GOOD).encode()})
    pkg = load_package(root)
    assert pkg.signature("pkg.mod:f").location.line == 5  # GOOD starts with a blank line


# Signature hashes -----------------------------------------------------------------------------


def _signature(tmp_path: Path, name: str, source: str) -> ir.Signature:
    root = make_package(tmp_path / name, {"mod.py": source})
    return load_package(root).signature("pkg.mod:f")


HASH_BASE = '''
import promptcast as pc

@pc.predict
def f(q: str, n: int = 2) -> list[str]:
    """Do it.

    Args:
        q: The question.
    """
'''


def test_hash_is_stable_and_tracks_what_matters(tmp_path: Path) -> None:
    for sub in ("a", "b", "c", "d", "e", "f", "g"):
        (tmp_path / sub).mkdir()
    base = _signature(tmp_path, "a", HASH_BASE)
    again = _signature(tmp_path, "b", HASH_BASE)
    assert base.hash() == again.hash()
    assert base.hash().startswith("sha256:")

    moved = _signature(
        tmp_path, "c", "# a comment\n\nX = 1\n\n" + HASH_BASE + "\n\ndef later():\n    pass\n"
    )
    assert moved.location != base.location
    assert moved.hash() == base.hash()

    retyped = _signature(tmp_path, "d", HASH_BASE.replace("list[str]", "list[int]"))
    assert retyped.hash() != base.hash()
    redoc = _signature(tmp_path, "e", HASH_BASE.replace("The question.", "The query."))
    assert redoc.hash() != base.hash()
    rekind = _signature(tmp_path, "f", HASH_BASE.replace("pc.predict", "pc.chain_of_thought"))
    assert rekind.hash() != base.hash()
    reindented = _signature(tmp_path, "g", HASH_BASE.replace('"""Do it.', '"""\n    Do it.'))
    assert reindented.hash() == base.hash()  # cleandoc: same text, same prompt


# Development time -----------------------------------------------------------------------------


@pytest.fixture
def goodpkg(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(FIXTURES))
    yield
    for name in list(sys.modules):
        if name == "goodpkg" or name.startswith("goodpkg."):
            del sys.modules[name]


@pytest.mark.usefixtures("goodpkg")
def test_dev_time_signature_equals_build_time() -> None:
    built = load_package(GOODPKG)
    assert len(built.signatures) == 11
    for sig in built.signatures:
        module_name, name = sig.qualname.split(":")
        live = getattr(importlib.import_module(module_name), name)
        for fn in (live, getattr(live, "fn", live)):  # decorator object and the raw function
            dev = signature_of_function(fn)
            assert dev == sig
            assert dev.hash() == sig.hash()


@pytest.mark.usefixtures("goodpkg")
def test_dev_time_rejects_non_lm_functions() -> None:
    module = importlib.import_module("goodpkg.classify")
    with pytest.raises(ValueError, match=f"is not a {kind_list()} function"):
        signature_of_function(getattr(module.pipeline, "fn", module.pipeline))


def test_dev_time_cache_sees_edits_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_package(tmp_path, {"devmod.py": GOOD}, name="devpkg")
    monkeypatch.syspath_prepend(str(tmp_path))

    def fresh() -> object:
        sys.modules.pop("devpkg.devmod", None)
        sys.modules.pop("devpkg", None)
        return importlib.import_module("devpkg.devmod")

    try:
        module = fresh()
        fn = module.f  # type: ignore[attr-defined]
        first = signature_of_function(fn)
        assert first.qualname == "devpkg.devmod:f"
        assert signature_of_function(fn) is not None
        path = root / "devmod.py"
        path.write_text(textwrap.dedent(GOOD).replace("Do it.", "Do it now."))
        os.utime(path, ns=(1, 1_000_000_000))
        module = fresh()
        assert signature_of_function(module.f).instructions == "Do it now."  # type: ignore[attr-defined]
        path.write_text(textwrap.dedent(GOOD).replace("q: str", "q: set[str]"))
        os.utime(path, ns=(2, 2_000_000_000))
        module = fresh()
        with pytest.raises(CompileError, match=r"devmod\.py:5:10: unsupported type `set\[str\]`"):
            signature_of_function(module.f)  # type: ignore[attr-defined]
    finally:
        for name in ("devpkg.devmod", "devpkg"):
            sys.modules.pop(name, None)


def test_main_module_name_from_path(tmp_path: Path) -> None:
    root = make_package(tmp_path, {"sub/__init__.py": "", "sub/run.py": GOOD}, name="app")
    assert package_module._module_name_from_path(root / "sub" / "run.py") == "app.sub.run"
    assert package_module._module_name_from_path(root / "__init__.py") == "app"


def test_signature_is_frozen_and_hashable_parts() -> None:
    sig = load_package(GOODPKG).signatures[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sig.name = "x"  # type: ignore[misc]
