"""`adapter="auto"`: the optimizer scores chat and json zero-shot on dev and locks the better."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from promptcast.ir import FunctionState
from promptcast.optimizers import make_optimizer
from promptcast.optimizers.base import estimate_runs
from promptcast_runtime import Completion
from tests.support.optimizing import DEV, TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM

AUTO = "optpkg.steps:kind_auto"


class FormatPickyLM(ScriptedLM):
    """Right in the one format it `prefers` (chat or json), wrong in the other; no demos needed."""

    def __init__(self, prefers: str | None) -> None:
        super().__init__(QUESTIONS)
        self.prefers = prefers

    def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> Completion:
        with self._lock:
            self.requests.append([dict(m) for m in messages])
        json_mode = params.get("response_format") == {"type": "json_object"}
        text = messages[-1]["content"]
        question = next(q for q in self.labels if q in text)
        fmt = "json" if json_mode else "chat"
        right = self.prefers in (None, fmt)
        label = self.labels[question]
        answer = label if right else {"NUM": "LOC", "LOC": "HUM", "HUM": "NUM"}[label]
        if json_mode:
            return Completion(json.dumps({"answer": answer}))
        return Completion(f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]")


def test_zero_shot_state_of_an_auto_function_is_chat() -> None:
    function = steps().kind_auto
    assert function.signature.adapter == "auto"
    assert FunctionState.zero_shot(function.signature).adapter == "chat"


@pytest.mark.parametrize(
    ("prefers", "chosen"), [("json", "json"), ("chat", "chat"), (None, "chat")]
)
def test_the_better_adapter_is_locked_and_a_tie_keeps_chat(
    prefers: str | None, chosen: str
) -> None:
    lm = FormatPickyLM(prefers)
    result, _ = run(steps().kind_auto, "labeled", lm, k=2)
    assert result.states[AUTO].adapter == chosen
    trials = {c.label: c.dev_score for c in result.history if "adapter=" in c.label}
    chat, json_ = (
        trials["zero-shot, kind_auto adapter=chat"],
        trials["zero-shot, kind_auto adapter=json"],
    )
    assert (chat, json_) == {"json": (0.0, 1.0), "chat": (1.0, 0.0), None: (1.0, 1.0)}[prefers]
    assert any(note.startswith("adapter=auto for kind_auto:") for note in result.notes)
    # The labeled candidate was built on the chosen adapter.
    labeled_score = next(c.dev_score for c in result.history if c.label == "labeled k=2")
    assert labeled_score == max(chat, json_)
    # Chat's trial is the zero-shot score already taken: only json costs a dev pass.
    assert lm.calls == 3 * len(DEV)


def test_functions_without_auto_make_no_trial() -> None:
    result, lm = run(steps().kind, "labeled", ScriptedLM(QUESTIONS), k=2)
    assert not any("adapter=" in c.label for c in result.history)
    assert lm.calls == 2 * len(DEV)


def test_dry_run_estimate_counts_the_json_trial() -> None:
    optimizer = make_optimizer("labeled", {"k": 2})
    plain = estimate_runs(steps().kind, optimizer, len(TRAIN), len(DEV))
    auto = estimate_runs(steps().kind_auto, optimizer, len(TRAIN), len(DEV))
    assert auto == plain + len(DEV)
    lm = FormatPickyLM("json")
    run(steps().kind_auto, "labeled", lm, k=2)
    assert lm.calls <= auto
