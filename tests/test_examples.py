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
    "agent": "planets",
    "sentiment": "reviews",
    "followup": "followup",
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
    from planets.tools import calculate, lookup

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
    from planets.tools import PLANETS

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


def test_orders_pipeline_bootstraps_demos_for_both_steps_from_the_final_label() -> None:
    """`route` = read_order then shipping_tier; only `tier` is labeled. A scripted LM reads
    orders right, and picks tiers right only once its prompt has demos: bootstrapping from
    whole-program traces must give both steps demos, and lift the dev score."""
    import re

    from promptcast.evaluate import load_dataset
    from promptcast.evaluate.data import bind
    from promptcast.optimizers import OptimizationTask, make_optimizer, optimize
    from promptcast_runtime import Completion

    sys.path.insert(0, str(ROOT / "examples" / "orders"))
    from orders.pipeline import route

    data = ROOT / "examples" / "orders" / "data"
    rows = {
        json.loads(line)["message"]: json.loads(line)
        for name in ("train", "dev")
        for line in (data / f"{name}.jsonl").read_text().splitlines()
    }

    class OrdersLM:
        def complete(self, messages: list[dict[str, str]], **params: object) -> Completion:
            user = messages[-1]["content"]
            if "[[ ## message ## ]]" in user:
                message = re.search(r"\[\[ ## message ## \]\]\n(.*?)\n\n", user, re.S)
                assert message is not None
                row = rows[message.group(1)]
                fields = ("item", "quantity", "unit_price", "express")
                return Completion(
                    "".join(f"[[ ## {f} ## ]]\n{json.dumps(row[f])}\n\n" for f in fields)
                )
            order = json.loads(user.split("[[ ## order ## ]]\n", 1)[1].split("\n\n", 1)[0])
            total = order["quantity"] * order["unit_price"]
            right = "freight" if total >= 1000 else "express" if order["express"] else "standard"
            has_demos = len(messages) > 2
            return Completion(f"[[ ## answer ## ]]\n{right if has_demos else 'standard'}")

    def examples(name: str) -> list[object]:
        loaded = load_dataset(data / f"{name}.jsonl")
        return bind(loaded.examples, inputs=["message"], outputs=["answer"], label="tier")

    task = OptimizationTask(route, examples("train"), examples("dev"), "exact_match", OrdersLM())
    result = optimize(
        task, make_optimizer("bootstrap", {"max_bootstrapped_demos": 2, "max_labeled_demos": 0})
    )
    read, tier = (
        result.states["orders.extract:read_order"],
        result.states["orders.pipeline:shipping_tier"],
    )
    assert len(read.demos) == 2 and set(read.demos[0]) == {
        "message",
        "item",
        "quantity",
        "unit_price",
        "express",
    }
    assert len(tier.demos) == 2 and set(tier.demos[0]) == {"order", "answer"}
    assert result.dev_score_before is not None and result.dev_score_after is not None
    assert result.dev_score_after > result.dev_score_before
