"""`promptcast build`: deterministic, standalone, type-clean output; loud refusal of bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptcast import ir
from promptcast.cli import main
from promptcast.codegen.build import plan_build
from promptcast.frontend.package import load_package
from promptcast.lockfile import Lock, LockEntry, save_lock
from tests.support.openai_server import FakeOpenAIServer

FIXTURE = Path(__file__).parent / "fixtures" / "onepath" / "onepath"
TREC = Path(__file__).parents[1] / "examples" / "trec" / "triage"


def _build(src: Path, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(out), *args])
    return result.exit_code, result.output


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_build_twice_gives_byte_identical_trees(tmp_path: Path) -> None:
    assert _build(FIXTURE, tmp_path / "a")[0] == 0
    assert _build(FIXTURE, tmp_path / "b")[0] == 0
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_build_does_not_depend_on_file_creation_order(tmp_path: Path) -> None:
    """Files copied in opposite orders (so directory listings differ) build identically."""
    names = sorted(p.name for p in FIXTURE.glob("*.py"))
    for label, order in (("fwd", names), ("rev", list(reversed(names)))):
        pkg = tmp_path / label / "onepath"
        pkg.mkdir(parents=True)
        for name in order:
            shutil.copyfile(FIXTURE / name, pkg / name)
        assert _build(pkg, tmp_path / f"out-{label}")[0] == 0
    assert _tree(tmp_path / "out-fwd") == _tree(tmp_path / "out-rev")


def test_undecorated_code_stays_byte_identical(tmp_path: Path) -> None:
    assert _build(FIXTURE, tmp_path / "out")[0] == 0
    generated = (tmp_path / "out" / "onepath" / "steps.py").read_text()
    source = (FIXTURE / "steps.py").read_text()
    # The classes and the program body are copied verbatim; the decorator and import are gone.
    for block in (
        'class Totals(NamedTuple):\n    """Totals read from a receipt."""\n\n    total: int\n    items: list[str]\n',
        '    kind = question_type(question)\n    return f"{kind}:{mood(question, [1, 2])}"\n',
    ):
        assert block in source and block in generated
    assert "promptcast as pc" not in generated and "@pc." not in generated
    assert (tmp_path / "out" / "onepath" / "__init__.py").read_bytes() == (
        FIXTURE / "__init__.py"
    ).read_bytes()


def test_check_reports_stale_files_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build(FIXTURE, out)[0] == 0
    code, output = _build(FIXTURE, out, "--check")
    assert code == 0, output
    (out / "onepath" / "steps.py").write_text("# edited\n")
    (out / "onepath" / "extra.py").write_text("")
    code, output = _build(FIXTURE, out, "--check")
    assert code == 1
    assert "onepath/steps.py" in output and "onepath/extra.py" in output
    assert "onepath/__init__.py" not in output


def test_output_overlapping_source_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(FIXTURE, pkg)
    code, output = _build(pkg, pkg / "out")
    assert code == 2 and "inside the source" in output
    code, output = _build(pkg, tmp_path)
    assert code == 2 and "inside the output" in output
    assert not (pkg / "out").exists()


def test_stale_lock_entry_names_the_changed_function(tmp_path: Path) -> None:
    signature = load_package(FIXTURE).signature("onepath.steps:mood")
    lock_path = tmp_path / "promptcast.lock.json"
    save_lock(
        Lock({signature.qualname: LockEntry("sha256:0000", ir.FunctionState("x"))}), lock_path
    )
    code, output = _build(FIXTURE, tmp_path / "out", "--lock", str(lock_path))
    assert code == 2
    assert "onepath.steps:mood" in output and "changed since it was optimized" in output
    assert not (tmp_path / "out").exists()


BAD_SOURCES = {
    "syntax": (
        "import promptcast as pc\n\n@pc.predict\ndef f(x: str) -> str\n    'Doc.'\n",
        "4:21",
    ),
    "body": (
        "import promptcast as pc\n\n@pc.predict\ndef f(x: str) -> str:\n    'Doc.'\n    return x\n",
        "6:5",
    ),
    "missing_annotation": (
        "import promptcast as pc\n\n@pc.predict\ndef f(x) -> str:\n    'Doc.'\n",
        "4:7",
    ),
    "unsupported_type": (
        "import promptcast as pc\n\n@pc.predict\ndef f(x: str) -> set[int]:\n    'Doc.'\n",
        "4:18",
    ),
    "duplicate": (
        "import promptcast as pc\n\n@pc.predict\ndef f(x: str) -> str:\n    'Doc.'\n\n"
        "@pc.predict\ndef f(x: str) -> str:\n    'Doc.'\n",
        "8:",
    ),
    "async_twin_taken": (
        "import promptcast as pc\n\n@pc.predict\ndef f(x: str) -> str:\n    'Doc.'\n\n"
        "def f_async() -> None:\n    pass\n",
        "4:",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_source_is_a_located_error_with_exit_2_and_nothing_written(
    tmp_path: Path, case: str
) -> None:
    text, where = BAD_SOURCES[case]
    pkg = tmp_path / "bad"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(text)
    out = tmp_path / "out"
    code, output = _build(pkg, out)
    assert code == 2, output
    assert f"mod.py:{where}" in output, output
    assert not out.exists()


def test_generated_code_passes_mypy_strict_and_ruff(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build(FIXTURE, out, "--vendor-runtime")[0] == 0
    assert _build(TREC, tmp_path / "trec", "--vendor-runtime")[0] == 0
    sampling = Path(__file__).parent / "fixtures" / "sampling" / "sampled"
    assert _build(sampling, tmp_path / "sampled", "--vendor-runtime")[0] == 0
    agent = Path(__file__).parent / "fixtures" / "reactpkg" / "agent"
    assert _build(agent, tmp_path / "agent", "--vendor-runtime")[0] == 0
    bin_dir = Path(sys.executable).parent
    for tree, module in (
        (out, "onepath"),
        (tmp_path / "trec", "triage"),
        (tmp_path / "sampled", "sampled"),
        (tmp_path / "agent", "agent"),
    ):
        mypy = subprocess.run(
            [str(bin_dir / "mypy"), "--strict", "--no-incremental", "-p", module],
            cwd=tree,
            capture_output=True,
            text=True,
            env={**os.environ, "MYPYPATH": str(tree)},
        )
        assert mypy.returncode == 0, mypy.stdout + mypy.stderr
        ruff = subprocess.run(
            [
                str(bin_dir / "ruff"),
                "check",
                "--isolated",
                "--select",
                "E,F,W,I",
                "--ignore",
                "E501",
                module,
            ],
            cwd=tree,
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_vendored_build_runs_in_a_bare_venv_against_a_local_server(tmp_path: Path) -> None:
    """No promptcast, no dependencies: the built module + vendored runtime + stdlib only."""
    out = tmp_path / "out"
    assert _build(TREC, out, "--vendor-runtime")[0] == 0
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    script = textwrap.dedent(
        """
        import json, sys
        try:
            import promptcast
            sys.exit("promptcast must not be importable here")
        except ImportError:
            pass
        from triage.classify import question_type
        answer = question_type("How far is it from Denver to Aspen ?")
        third_party = sorted(
            m.split(".")[0] for m in sys.modules
            if m.split(".")[0] not in sys.stdlib_module_names
            and m.split(".")[0] not in ("triage", "promptcast_runtime", "__main__")
        )
        print(json.dumps({"answer": answer, "type": type(answer).__name__, "third_party": third_party}))
        """
    )
    with FakeOpenAIServer(
        responder=lambda body: "[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]"
    ) as server:
        env = {
            "PATH": os.environ["PATH"],
            "PROMPTCAST_BASE_URL": server.url,
            "PROMPTCAST_MODEL": "fake-model",
            "PROMPTCAST_API_KEY": "test-key",
        }
        result = subprocess.run(
            [str(python), "-E", "-s", "-c", script],
            cwd=out,
            capture_output=True,
            text=True,
            env=env,
        )
        requests = server.requests
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == {"answer": "NUM", "type": "str", "third_party": []}
    assert len(requests) == 1 and requests[0]["model"] == "fake-model"
    assert "How far is it from Denver" in requests[0]["messages"][-1]["content"]


def test_plan_is_pure_no_files_written(tmp_path: Path) -> None:
    before = _tree(FIXTURE)
    plan = plan_build(FIXTURE, Lock())
    assert "onepath/steps.py" in plan.generated
    assert _tree(FIXTURE) == before


def test_a_directory_the_build_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "src"
    out.mkdir()
    (out / "main.py").write_text("print('mine')\n")
    code, output = _build(FIXTURE, out)
    assert code == 2 and "did not write" in output
    assert (out / "main.py").read_text() == "print('mine')\n"
    assert sorted(p.name for p in out.iterdir()) == ["main.py"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _build(FIXTURE, empty)[0] == 0  # an empty directory is fine, and then rebuildable
    assert (empty / ".promptcast-build").is_file()
    assert _build(FIXTURE, empty)[0] == 0
