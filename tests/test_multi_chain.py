"""`@pc.multi_chain_comparison`: m sampled reasoning attempts, one comparison call; the same
requests in development and in the built module; bootstrap fills the attempts' demos."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.evaluate import Example
from promptcast.lockfile import Lock
from promptcast.optimizers import OptimizationTask, make_optimizer, optimize
from promptcast_runtime import Completion, ParseError, using

FIXTURE = Path(__file__).parent / "fixtures" / "onepath"
sys.path.insert(0, str(FIXTURE))

from onepath import steps  # noqa: E402


class CountingLM:
    """Attempt k (by its seed) answers total k + 4; the comparison answers the first total it
    is shown. Records every request (messages and parameters)."""

    def __init__(self, broken_attempts: int = 0) -> None:
        self.requests: list[tuple[list[dict[str, str]], dict[str, Any]]] = []
        self.broken = broken_attempts

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.requests.append(([dict(m) for m in messages], dict(params)))
        user = messages[-1]["content"]
        if "attempt_1" not in user:  # an attempt
            seed = int(params.get("seed", 0))
            if seed < self.broken:
                return Completion("[[ ## reasoning ## ]]\nhmm\n\n[[ ## total ## ]]\nmany")
            return Completion(
                f"[[ ## reasoning ## ]]\ntry {seed}\n\n[[ ## total ## ]]\n{seed + 4}\n\n"
                '[[ ## items ## ]]\n["tea"]\n\n[[ ## completed ## ]]'
            )
        totals = re.findall(r"total: (\d+)", user)
        best = totals[0] if totals else "0"
        return Completion(
            f"[[ ## reasoning ## ]]\nAttempts said {totals}.\n\n[[ ## total ## ]]\n{best}\n\n"
            '[[ ## items ## ]]\n["tea"]\n\n[[ ## completed ## ]]'
        )


def test_m_attempts_each_sampled_with_its_own_seed_then_one_comparison() -> None:
    lm = CountingLM()
    with candidate(lm=lm):
        totals = steps.best_total("tea 2, cake 3")
    assert totals == steps.Totals(4, ["tea"])
    attempts, (compare_messages, compare_params) = lm.requests[:2], lm.requests[2]
    assert len(lm.requests) == 3  # m=2 attempts + 1 comparison
    assert [p["seed"] for _, p in attempts] == [0, 1]
    assert all(p["temperature"] == 0.7 and p["max_tokens"] == 900 for _, p in attempts)
    # The comparison is sent with the step's own sampling (decorator's max_tokens, greedy).
    assert compare_params == {"max_tokens": 900, "temperature": 0.0}
    user = compare_messages[-1]["content"]
    assert "[[ ## attempt_1 ## ]]\nReasoning: try 0\nAnswer: total: 4" in user
    assert "[[ ## attempt_2 ## ]]\nReasoning: try 1\nAnswer: total: 5" in user


def test_an_unreadable_attempt_is_shown_as_such_and_none_readable_raises() -> None:
    lm = CountingLM(broken_attempts=1)
    with candidate(lm=lm):
        steps.best_total("r")
    assert "(this attempt's answer could not be read:" in lm.requests[-1][0][-1]["content"]
    with candidate(lm=CountingLM(broken_attempts=2)), pytest.raises(ParseError):
        steps.best_total("r")


def _built(out: Path) -> Any:
    write_tree(plan_build(FIXTURE / "onepath", Lock()), out)
    spec = importlib.util.spec_from_file_location("built_mcc", out / "onepath" / "steps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["built_mcc"] = module
    spec.loader.exec_module(module)
    return module


def test_the_built_module_sends_the_same_requests_sync_and_awaited(tmp_path: Path) -> None:
    built = _built(tmp_path)
    dev_lm, built_lm = CountingLM(), CountingLM()
    with candidate(lm=dev_lm):
        dev = steps.best_total("tea 2")
    with using(built_lm):
        shipped = built.best_total("tea 2")
        awaited = asyncio.run(built.best_total_async("tea 2"))
    assert dev == shipped == awaited
    bodies = [json.dumps(r, sort_keys=True) for r in built_lm.requests]
    assert [json.dumps(r, sort_keys=True) for r in dev_lm.requests] == bodies[:3] == bodies[3:]
    code = (tmp_path / "onepath" / "steps.py").read_text()
    assert '"kind": "multi_chain_comparison",' in code and '"m": 2,' in code


def test_bootstrap_fills_the_attempts_demos_with_reasoning() -> None:
    examples = [
        Example({"receipt": f"r{i}", "total": 4, "items": ["tea"]}, "m.jsonl", i + 1,
                ("receipt",), ("total", "items"))
        for i in range(4)
    ]  # fmt: skip
    task = OptimizationTask(
        steps.best_total, examples[:3], examples[3:], "exact_match", CountingLM(), threads=1
    )
    result = optimize(
        task, make_optimizer("bootstrap", {"max_bootstrapped_demos": 2, "max_labeled_demos": 0})
    )
    demos = result.states["onepath.steps:best_total"].demos
    assert len(demos) == 2
    for demo in demos:
        assert set(demo) == {"receipt", "reasoning", "total", "items"}
        assert demo["reasoning"].startswith("Attempts said")
    lm = CountingLM()
    with candidate(states=result.states, lm=lm):
        steps.best_total("r9")
    first_attempt = lm.requests[0][0]
    assert any("Attempts said" in m["content"] for m in first_attempt[1:-1])  # demo turns
    assert not any("Attempts said" in m["content"] for m in lm.requests[-1][0][1:-1])
