"""`copro`: proposals through the runtime, coordinate ascent on dev, DSPy's breadth x depth."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from promptcast.optimizers import make_optimizer
from promptcast.optimizers.base import estimate_runs
from promptcast.optimizers.propose import clean_text_answer
from tests.support.optimizing import DEV, TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM

KIND = "optpkg.steps:kind"


class InstructionSensitiveLM(ScriptedLM):
    """Proposes `Variant <n>` instructions; answers right only under the instruction it likes."""

    def __init__(self, liked: str) -> None:
        super().__init__(QUESTIONS, needs_demos=0, liked=liked)
        self.proposals: list[dict[str, Any]] = []

    def scripted(self, system: str, user: str, params: Mapping[str, Any]) -> str | None:
        if "instruction optimizer" not in system:
            return None
        with self._lock:
            self.proposals.append({"params": params, "user": user})
        return f"[[ ## proposed_instruction ## ]]\nVariant {params['rollout']}: classify well."


def test_copro_finds_the_instruction_the_model_follows() -> None:
    lm = InstructionSensitiveLM("Variant 1003")  # proposed in the second round
    result, _ = run(steps().kind, "copro", lm, breadth=4, depth=3)
    assert result.states[KIND].instructions == "Variant 1003: classify well."
    assert result.dev_score_before is not None and result.dev_score_before < 1.0
    assert result.dev_score_after == 1.0
    labels = [c.label for c in result.history]
    assert sum(label.startswith("depth 1:") for label in labels) == 4  # breadth candidates
    assert any("Variant 1003" in label and label.startswith("depth 2:") for label in labels)


def test_proposals_are_distinct_reproducible_samples_that_see_the_scores() -> None:
    lm = InstructionSensitiveLM("nothing matches")
    run(steps().kind, "copro", lm, breadth=3, depth=2)
    first = [p for p in lm.proposals if "basic_instruction" in p["user"]]
    later = [p for p in lm.proposals if "attempted_instructions" in p["user"]]
    assert [p["params"]["rollout"] for p in first] == [0, 1]  # breadth - 1
    assert [p["params"]["rollout"] for p in later] == [1000, 1001, 1002]  # breadth
    assert all(p["params"]["temperature"] == 1.4 for p in lm.proposals)
    attempts = later[0]["user"]
    assert re.search(r"Instruction #1: .*\nResulting Score #1: \d\.\d{3}", attempts)
    assert "Classify the kind of answer" in attempts  # the original instruction was a candidate
    again = InstructionSensitiveLM("nothing matches")
    run(steps().kind, "copro", again, breadth=3, depth=2)
    assert [p["user"] for p in again.proposals] == [p["user"] for p in lm.proposals]


def test_dry_run_estimate_is_within_ten_percent_of_the_calls_made() -> None:
    for breadth, depth in ((4, 3), (10, 3), (3, 1)):
        optimizer = make_optimizer("copro", {"breadth": breadth, "depth": depth})
        estimate = estimate_runs(steps().kind, optimizer, len(TRAIN), len(DEV))
        lm = InstructionSensitiveLM("nothing matches")
        run(steps().kind, "copro", lm, breadth=breadth, depth=depth)
        assert estimate >= lm.calls >= 0.9 * estimate, (breadth, depth, estimate, lm.calls)


class MarkerEchoingLM(InstructionSensitiveLM):
    """Proposes the way qwen0.5b did on TREC and sentiment: the output marker echoed after a
    quote, in a code fence, or alone, or the field's name as a label."""

    REPLIES = (
        '"[[ ## proposed_instruction ## ]] Variant A: classify well."',
        "[[ proposed_instruction ]]",
        "Variant B: classify well. [[ ## completed ## ]]",
        "```[[ ## proposed_instruction ## ]]  \nVariant C: classify well.\n\n```",
        "Proposed instruction: Variant D: classify well.",
    )

    def scripted(self, system: str, user: str, params: Mapping[str, Any]) -> str | None:
        if "instruction optimizer" not in system:
            return None
        return self.REPLIES[params["rollout"] % len(self.REPLIES)]


def test_echoed_field_markers_never_reach_a_candidate_instruction() -> None:
    lm = MarkerEchoingLM("nothing matches")
    result, _ = run(steps().kind, "copro", lm, breadth=6, depth=1)
    tried = [c.label.split(": ", 2)[-1] for c in result.history]
    assert "Variant A: classify well." in tried
    assert "Variant B: classify well." in tried
    assert "Variant C: classify well." in tried
    assert "Variant D: classify well." in tried
    assert not any("[[" in t or "```" in t or not t.strip() for t in tried), tried


@example("[[ [[ ## a ## ]] ## b ## ]]")  # a marker inside a marker
@given(st.text(alphabet=st.sampled_from('[]# _"`:\nabPrpose')) | st.text())
def test_a_cleaned_answer_never_holds_a_field_marker(text: str) -> None:
    cleaned = clean_text_answer(text, "proposed_instruction")
    marker = r"\[\[\s*(?:#+\s*\w+|#*\s*(?i:proposed_instruction|completed))\s*#*\s*\]\]"
    assert not re.search(marker, cleaned), cleaned
    assert cleaned == cleaned.strip()
