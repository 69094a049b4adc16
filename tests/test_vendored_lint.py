"""What `build --vendor-runtime` puts in a user's tree passes the user's linters as they come.

A user's `ruff check` runs with the user's configuration, which promptcast cannot know; the
least it can promise is ruff's own default rules (no configuration at all) on every Python
version we support, for the generated modules and the vendored runtime alike, and
`mypy --strict`. The project's stricter configuration is checked by `ruff check .` in CI.

Not promised: a user's ruff targeting Python 3.12+ suggests PEP 695 type parameters (UP046,
UP047) for the runtime's `Generic[T]` classes; that syntax would break the 3.10 and 3.11 users
the runtime supports, and a `noqa` for it is itself flagged (RUF100) on older targets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptcast.cli import main

BIN = Path(sys.executable).parent

CLEAN_SOURCE = '''"""Steps of every kind, written as ruff's defaults want them."""

from dataclasses import dataclass
from typing import Literal

import promptcast as pc


@dataclass
class Totals:
    """What a receipt adds up to."""

    total: int
    items: list[str]


def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@pc.predict
def kind(question: str) -> Literal["NUM", "LOC"]:
    """Classify the question."""


@pc.chain_of_thought(lm_params={"max_tokens": 2048})
def read(receipt: str, currency: str | None = None) -> Totals:
    """Read the receipt."""


@pc.react(tools=[add])
def solve(problem: str) -> int:
    """Solve the problem with the tools."""


@pc.multi_chain_comparison(m=2)
def best(receipt: str) -> Totals:
    """Add up the receipt carefully."""


@pc.program
def pipeline(question: str) -> str:
    """Classify, several times."""
    return pc.majority(kind, 3)(question)
'''


@pytest.mark.parametrize("target", ["py310", "py311"])
def test_generated_modules_and_the_vendored_runtime_pass_ruffs_default_rules(
    tmp_path: Path, target: str
) -> None:
    pkg = tmp_path / "src" / "cleanpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "steps.py").write_text(CLEAN_SOURCE)
    source_lint = subprocess.run(
        [str(BIN / "ruff"), "check", "--isolated", "--target-version", target, "."],
        cwd=pkg.parent,
        capture_output=True,
        text=True,
    )
    assert source_lint.returncode == 0, source_lint.stdout  # the test's own source is clean
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(pkg), "-o", str(out), "--vendor-runtime"])
    assert result.exit_code == 0, result.output
    ruff = subprocess.run(
        [str(BIN / "ruff"), "check", "--isolated", "--target-version", target, "."],
        cwd=out,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    assert (out / "promptcast_runtime" / "step.py").is_file()
    mypy = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-incremental", "-p", "cleanpkg"],
        cwd=out,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MYPYPATH": str(out)},
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
