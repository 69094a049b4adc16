"""The examples build, type-check strictly, and their plain-Python parts do what they say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptcast.codegen.build import plan_build, write_tree
from promptcast.lockfile import Lock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "trec": "triage",
    "orders": "orders",
    "agent": "agent",
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_builds_and_passes_mypy_strict(example: str, tmp_path: Path) -> None:
    package = EXAMPLES[example]
    write_tree(plan_build(ROOT / "examples" / example / package, Lock()), tmp_path)
    mypy = subprocess.run(
        [str(Path(sys.executable).parent / "mypy"), "--strict", "--no-incremental", "-p", package],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(tmp_path)},
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_agent_tools_are_safe_and_exact() -> None:
    sys.path.insert(0, str(ROOT / "examples" / "agent"))
    from agent.tools import calculate, lookup

    assert calculate("(95 + 146) / 2") == 120.5
    assert calculate("-3 * 2") == -6.0
    for hostile in ("__import__('os')", "open('x')", "2 ** 99999999", "[1]"):
        with pytest.raises(ValueError):
            calculate(hostile)
    assert lookup(" Mars ")["moons"] == 2
    with pytest.raises(KeyError):
        lookup("Pluto")


def test_agent_questions_are_answerable_from_the_table() -> None:
    """Every expected answer is what the tools give: the dataset is exact."""
    sys.path.insert(0, str(ROOT / "examples" / "agent"))
    from agent.tools import PLANETS

    values = {round(v, 2) for facts in PLANETS.values() for v in facts.values()}
    pairs = {
        round(op(x, y), 2)
        for a in PLANETS.values()
        for b in PLANETS.values()
        for key in a
        for x, y in [(a[key], b[key])]
        for op in (lambda p, q: p + q, lambda p, q: p - q)
    }
    for name in ("train", "dev", "test"):
        for line in (
            (ROOT / "examples" / "agent" / "data" / f"{name}.jsonl").read_text().splitlines()
        ):
            row = json.loads(line)
            assert round(row["answer"], 2) in values | pairs, row
