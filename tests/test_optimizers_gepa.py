"""`gepa`: Pareto parent selection, reflection on traces with metric feedback, minibatch gate."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from promptcast.optimizers.gepa import _pareto_pick
from tests.support.optimizing import DEV, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM

KIND = "optpkg.steps:kind"


class ReflectiveLM(ScriptedLM):
    """Reflection calls answer `Rewrite <n>`; the task is answered right only under `liked`."""

    def __init__(self, liked: str) -> None:
        super().__init__(QUESTIONS, needs_demos=0, liked=liked)
        self.reflections: list[str] = []

    def scripted(self, system: str, user: str, params: Mapping[str, Any]) -> str | None:
        if "write a new instruction for the assistant" not in system:
            return None
        with self._lock:
            self.reflections.append(user)
        return f"[[ ## new_instruction ## ]]\nRewrite {params['rollout']}."


def test_gepa_evolves_the_instruction_the_model_follows() -> None:
    lm = ReflectiveLM("Rewrite 2.")
    result, _ = run(steps().kind, "gepa", lm, max_iterations=4, minibatch_size=2)
    assert result.states[KIND].instructions == "Rewrite 2."
    assert result.dev_score_after == 1.0
    assert result.dev_score_before is not None and result.dev_score_before < 1.0
    labels = [c.label for c in result.history]
    assert labels[0] == "gepa: seed (zero-shot)" and any(
        label.startswith("gepa 3: kind <- ") for label in labels
    )
    # Rewrites that did not beat their parent on the minibatch were never scored on dev.
    assert not any(label.startswith("gepa 1:") for label in labels)
    assert any("not better on its minibatch" in n for n in result.notes)


def test_reflection_sees_inputs_outputs_scores_and_metric_feedback() -> None:
    lm = ReflectiveLM("nothing matches")
    run(steps().kind, "gepa", lm, max_iterations=1, minibatch_size=2)
    (prompt,) = lm.reflections
    assert "[[ ## current_instruction ## ]]\nClassify the kind of answer" in prompt
    assert prompt.count("# Example ") == 2
    assert 'Inputs: {"question":' in prompt and 'Assistant\'s output: {"answer":' in prompt
    assert "Score: 0.00" in prompt or "Score: 1.00" in prompt
    assert "expected exactly" in prompt  # exact_match's feedback text


def test_pareto_pick_weights_specialists_by_the_examples_they_win() -> None:
    pool = [
        ("a", {}, [1.0, 0.0, 0.0, 0.0]),
        ("b", {}, [0.0, 1.0, 1.0, 1.0]),
        ("c", {}, [0.0, 0.0, 0.0, 0.0]),  # best on nothing: never a parent
    ]
    rng = random.Random(0)
    picks = [_pareto_pick(pool, rng) for _ in range(400)]
    assert picks.count(2) == 0
    assert 60 < picks.count(0) < 140 and picks.count(1) > 260


def test_the_seed_candidate_reuses_the_zero_shot_dev_pass() -> None:
    lm = ReflectiveLM("nothing matches")
    result, _ = run(steps().kind, "gepa", lm, max_iterations=0)
    assert lm.calls == len(DEV)  # scored once: "before" and the seed are the same candidate
    assert [c.label for c in result.history] == ["gepa: seed (zero-shot)"]
