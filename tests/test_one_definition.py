"""One definition per step: the kind registry, the runtime contract, headers per lock entry.

These hold the design's promises that no other test states directly: every layer reads one
table of kinds, a generated module refuses a runtime that cannot build its specs, and
`build --check` flags only the modules whose lock entries changed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import promptcast as pc
from promptcast import ir
from promptcast.cli import main
from promptcast.frontend.discover import DECORATOR_OPTIONS, SUPPORTED_DECORATORS
from promptcast.lockfile import Lock, LockEntry, save_lock
from promptcast_runtime import RUNTIME_API, build_step
from promptcast_runtime.contract import RuntimeVersionError
from promptcast_runtime.kinds import KINDS
from promptcast_runtime.step import SpecError

ROOT = Path(__file__).parents[1]

TWO_MODULES = {
    "__init__.py": "",
    "first.py": '''\
        import promptcast as pc


        @pc.predict
        def shout(text: str) -> str:
            """Repeat the text in capitals."""
        ''',
    "second.py": '''\
        import promptcast as pc


        @pc.chain_of_thought
        def count(text: str) -> int:
            """Count the words."""
        ''',
}


def _package(root: Path, files: dict[str, str], name: str = "twomods") -> Path:
    pkg = root / name
    pkg.mkdir(parents=True)
    for rel, text in files.items():
        (pkg / rel).write_text(textwrap.dedent(text))
    return pkg


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# --- the registry -----------------------------------------------------------------------------


def test_every_layer_lists_the_registry_kinds() -> None:
    for name, kind in KINDS.items():
        assert callable(getattr(pc, name)), name  # a decorator per kind, none written by hand
        assert kind.summary in (getattr(pc, name).__doc__ or "")
        assert DECORATOR_OPTIONS[name] == {o.name for o in kind.options}
        assert kind.example in SUPPORTED_DECORATORS
    assert set(DECORATOR_OPTIONS) == {*KINDS, "program"}


def test_help_lists_every_optimizer() -> None:
    from promptcast.optimizers.registry import OPTIMIZERS

    code, text = _invoke("optimize", "--help")
    assert code == 0
    flat = " ".join(text.split())
    for name in OPTIMIZERS:
        assert name in flat, name


def test_a_react_user_is_told_about_react_not_chain_of_thought(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "mod.py": '''\
                import promptcast as pc


                def add(a: int, b: int) -> int:
                    """Add."""
                    return a + b


                @pc.react(tools=[add])
                def solve(reasoning: str) -> int:
                    """Solve it."""
                ''',
        },
        "agentpkg",
    )
    code, text = _invoke("build", str(pkg), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "`solve` is a react function, which adds an output named `reasoning`" in text


def test_option_values_are_checked_by_the_registry_in_both_paths(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`lm_params` must be free of 'messages'"):
        pc.predict(lm_params={"messages": []})(lambda text: None)
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "mod.py": '''\
                import promptcast as pc


                @pc.predict(lm_params={"temperature": 5})
                def shout(text: str) -> str:
                    """Repeat the text in capitals."""
                ''',
        },
        "badparams",
    )
    code, text = _invoke("build", str(pkg), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "mod.py:4:" in text and "a temperature from 0 to 2, not 5" in text


# --- the runtime contract ---------------------------------------------------------------------


def _spec(**changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "api": RUNTIME_API,
        "step": "pkg.mod:f",
        "kind": "predict",
        "instructions": "Do it.",
        "inputs": {"text": ""},
        "outputs": {"answer": ""},
        "shape": "single",
        "demos": (),
        "adapter": "chat",
        "lm_params": {"max_tokens": 8, "temperature": 0.0},
        "options": {"parse_retries": 0},
    }
    spec.update(changes)
    return spec


def test_build_step_refuses_a_spec_of_another_api_naming_both_and_what_to_do() -> None:
    with pytest.raises(RuntimeVersionError) as newer:
        build_step(_spec(api=RUNTIME_API + 1), inputs={"text": str}, returns=str)
    text = str(newer.value)
    assert f"pkg.mod:f was built for promptcast_runtime API {RUNTIME_API + 1}" in text
    assert f"supports API {RUNTIME_API}" in text and "upgrade promptcast_runtime" in text
    with pytest.raises(RuntimeVersionError, match="rebuild it with `promptcast build`"):
        build_step(_spec(api=1), inputs={"text": str}, returns=str)
    assert isinstance(newer.value, ImportError)  # raised while the module is imported


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "summarize"}, "unknown module kind 'summarize'"),
        ({"adapter": "xml"}, "unknown adapter 'xml'"),
        ({"lm_params": {"messages": []}}, "lm_params must be free of 'messages'"),
        ({"options": {"parse_retries": 99}}, "`parse_retries` must be a whole number"),
        ({"options": {"max_iters": 2}}, "has no option(s) ['max_iters']"),
        ({"shape": "tuple"}, "shape must be one of"),
    ],
)
def test_build_step_refuses_a_spec_it_cannot_build(change: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        build_step(_spec(**change), inputs={"text": str}, returns=str)
    assert message in str(caught.value) and "pkg.mod:f" in str(caught.value)


@pytest.mark.parametrize(
    ("oldest", "newest", "advice"),
    [
        (RUNTIME_API - 1, RUNTIME_API - 1, "upgrade promptcast_runtime"),  # an older runtime
        (RUNTIME_API + 1, RUNTIME_API + 1, "rebuild it with `promptcast build`"),  # newer
    ],
)
def test_a_built_module_beside_another_runtime_fails_at_import_with_one_clear_error(
    tmp_path: Path, oldest: int, newest: int, advice: str
) -> None:
    pkg = _package(tmp_path / "src", TWO_MODULES)
    out = tmp_path / "out"
    assert _invoke("build", str(pkg), "-o", str(out), "--vendor-runtime")[0] == 0
    contract = out / "promptcast_runtime" / "contract.py"
    text = contract.read_text()
    text = text.replace(f"RUNTIME_API = {RUNTIME_API}\n", f"RUNTIME_API = {newest}\n")
    text = text.replace(
        f"OLDEST_SUPPORTED_API = {RUNTIME_API}\n", f"OLDEST_SUPPORTED_API = {oldest}\n"
    )
    contract.write_text(text)
    result = subprocess.run(
        [sys.executable, "-c", "import twomods.first"],
        cwd=out,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(out)},
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("promptcast_runtime.contract.RuntimeVersionError: twomods.first:shout")
    assert f"built for promptcast_runtime API {RUNTIME_API}" in last
    assert str(out / "promptcast_runtime") in last and advice in last


def test_generated_code_imports_only_names_the_runtime_lists(tmp_path: Path) -> None:
    from promptcast_runtime import GENERATED_NAMES

    pkg = _package(tmp_path / "src", TWO_MODULES)
    out = tmp_path / "out"
    assert _invoke("build", str(pkg), "-o", str(out))[0] == 0
    for module in ("first.py", "second.py"):
        tree = ast.parse((out / "twomods" / module).read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "promptcast_runtime"
            for alias in node.names
        }
        assert imported and imported <= set(GENERATED_NAMES), imported


# --- headers name the lock entries a module uses ------------------------------------------------


def test_build_check_after_reoptimizing_one_function_names_only_its_module(
    tmp_path: Path,
) -> None:
    from promptcast.frontend.package import load_package

    pkg = _package(tmp_path / "src", TWO_MODULES)
    package = load_package(pkg)
    signatures = {s.name: s for m in package.modules for s in m.signatures}
    lock_path = tmp_path / "promptcast.lock.json"

    def entry(name: str, instructions: str) -> LockEntry:
        signature = signatures[name]
        state = ir.FunctionState.zero_shot(signature)
        state = ir.FunctionState(instructions, (), state.adapter, state.lm_params)
        return LockEntry(signature.hash(), state, model="openai/qwen0.5b")

    save_lock(
        Lock(
            {
                signatures["shout"].qualname: entry("shout", "Shout it."),
                signatures["count"].qualname: entry("count", "Count them."),
            }
        ),
        lock_path,
    )
    out = tmp_path / "out"
    assert _invoke("build", str(pkg), "-o", str(out), "--lock", str(lock_path))[0] == 0
    save_lock(  # re-optimize `count` only
        Lock(
            {
                signatures["shout"].qualname: entry("shout", "Shout it."),
                signatures["count"].qualname: entry("count", "Count every word."),
            }
        ),
        lock_path,
    )
    code, text = _invoke("build", str(pkg), "-o", str(out), "--lock", str(lock_path), "--check")
    assert code == 1
    assert "twomods/second.py" in text and "twomods/first.py" not in text


def test_header_values_from_the_lock_cannot_inject_code(tmp_path: Path) -> None:
    """A model or score with a newline would end the `#` comment; the lock refuses them."""
    from promptcast.frontend.package import load_package

    pkg = _package(tmp_path / "src", TWO_MODULES)
    signature = next(s for m in load_package(pkg).modules for s in m.signatures)
    lock_path = tmp_path / "promptcast.lock.json"
    state = ir.FunctionState.zero_shot(signature)
    for model, optimization, complaint in (
        ("fake\nimport os; os.system('touch PWNED')", {}, "is not a model name"),
        ("fake", {"dev_score_after": "1\nimport os"}, "dev_score_after must be a finite"),
    ):
        save_lock(
            Lock({signature.qualname: LockEntry(signature.hash(), state, model, optimization)}),
            lock_path,
        )
        code, text = _invoke(
            "build", str(pkg), "-o", str(tmp_path / "out"), "--lock", str(lock_path)
        )
        assert code == 2 and complaint in text, text
    assert not (tmp_path / "out").exists()


def test_a_file_name_with_a_newline_stays_inside_the_header_comment(tmp_path: Path) -> None:
    from promptcast.codegen.emit import render_header

    header = render_header("pkg/evil\nimport os.py", "0.1.0", "sha256:x", ["m\r"], [])
    assert len(header.splitlines()) == 3
    assert all(line.startswith("#") for line in header.splitlines())


# --- sampling is state ------------------------------------------------------------------------


def test_a_format_1_lock_ships_the_sampling_it_was_scored_with(tmp_path: Path) -> None:
    import json

    from promptcast.lockfile import FORMAT_1_LM_PARAMS, load_lock

    path = tmp_path / "old.lock.json"
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "compiler": "0.1.0",
                "functions": {
                    "a.b:c": {
                        "signature_hash": "sha256:0",
                        "model": "openai/qwen0.5b",
                        "state": {"instructions": "x", "demos": [], "adapter": "chat"},
                        "optimization": {},
                    }
                },
            }
        )
    )
    assert load_lock(path).entries["a.b:c"].state.lm_params == FORMAT_1_LM_PARAMS


def test_zero_shot_sampling_is_kind_then_project_then_decorator() -> None:
    def signature(kind: str, declared: dict[str, object] | None = None) -> ir.Signature:
        options = (("lm_params", declared),) if declared else ()
        return ir.Signature(
            "m:f",
            "f",
            "m",
            kind,
            "Do.",
            "Do.",
            (),
            (),
            ir.TypeSchema("str", "str"),
            "single",
            ir.SourceLocation("m.py", 1, 1),
            options=options,
        )

    assert ir.FunctionState.zero_shot(signature("predict")).lm_params == {
        "max_tokens": 512,
        "temperature": 0.0,
    }
    assert ir.FunctionState.zero_shot(signature("chain_of_thought")).lm_params["max_tokens"] >= 1024
    project = {"max_tokens": 2000, "top_p": 0.5}
    mixed = ir.FunctionState.zero_shot(signature("predict", {"max_tokens": 64}), project)
    assert mixed.lm_params == {"max_tokens": 64, "temperature": 0.0, "top_p": 0.5}
    assert mixed.with_lm_params({"temperature": 0.3}).lm_params["temperature"] == 0.3
    # Declaring sampling in the decorator changes the signature hash (the lock goes stale),
    # but leaving it out keeps the hash every existing lock recorded.
    assert signature("predict", {"max_tokens": 64}).hash() != signature("predict").hash()
