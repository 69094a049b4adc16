"""best_of_n, majority and refine: distinct reproducible samples, the right winner, DSPy-style
hints for refine -- and the built module behaves exactly as the source does (one path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.lockfile import Lock
from promptcast_runtime import Completion, ParseError, sample, using
from promptcast_runtime.sampling import best_of_n, majority

FIXTURE = Path(__file__).parent / "fixtures" / "sampling"
sys.path.insert(0, str(FIXTURE))

from sampled import steps  # noqa: E402

ANSWERS = [3, 9, 6, 7, 6]
"""What sample i (rollout i) of `guess` answers."""


class SampleLM:
    """Answers `guess` by the sample index; answers the refine advisor; records everything."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.calls.append(([dict(m) for m in messages], dict(params)))
        if "give short, concrete advice" in messages[0]["content"]:
            return Completion("[[ ## advice ## ]]\nAim closer to seven.")
        answer = ANSWERS[params.get("rollout", 0) % len(ANSWERS)]
        return Completion(f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]")


def _built() -> Any:
    out = FIXTURE.parent.parent.parent / ".pytest_cache" / "sampling-build"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    write_tree(plan_build(FIXTURE / "sampled", Lock()), out)
    name = "built_sampled_steps"
    spec = importlib.util.spec_from_file_location(name, out / "sampled" / "steps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built() -> Any:
    return _built()


def test_samples_are_distinct_and_reproducible() -> None:
    lm = SampleLM()
    with candidate(lm=lm):
        assert steps.best_guess("which?") == 7
        assert steps.best_guess("which?") == 7
    params = [p for _, p in lm.calls]
    assert [p["rollout"] for p in params] == [0, 1, 2, 3] * 2
    assert [p["seed"] for p in params[:4]] == [0, 1, 2, 3]
    assert all(p["temperature"] == 1.0 for p in params)
    assert params[:4] == params[4:]  # the same seed draws the same samples


def test_best_of_n_stops_at_the_threshold() -> None:
    lm = SampleLM()
    with candidate(lm=lm):
        assert steps.good_enough("which?") == 9  # sample 1 (9) is within 2 of 7: stop there
    assert len(lm.calls) == 2


def test_majority_takes_the_most_frequent_value() -> None:
    lm = SampleLM()
    with candidate(lm=lm):
        assert steps.vote("which?") == 6  # 3, 9, 6, 7, 6
    assert len(lm.calls) == 5


def test_refine_passes_advice_to_the_next_attempt() -> None:
    lm = SampleLM()
    with candidate(lm=lm):
        assert steps.polished("which?") == 6  # 3 -> advice -> 9 -> advice -> 6: best is 6
    prompts = [messages for messages, _ in lm.calls]
    guesses = [m for m in prompts if "give short, concrete advice" not in m[0]["content"]]
    advice = [m for m in prompts if "give short, concrete advice" in m[0]["content"]]
    assert len(guesses) == 3 and len(advice) == 2
    assert "hint_" not in guesses[0][-1]["content"]
    for later in guesses[1:]:
        assert "[[ ## hint_ ## ]]\nAim closer to seven." in later[-1]["content"]
        assert "`hint_` (str): Advice from an earlier attempt" in later[0]["content"]
    assert "[[ ## output ## ]]\n3" in advice[0][-1]["content"]


def test_a_failing_sample_is_skipped_and_all_failing_raises() -> None:
    class Flaky(SampleLM):
        def complete(self, messages: Any, **params: Any) -> Completion:
            super().complete(messages, **params)
            if params["rollout"] == 0:
                return Completion("I cannot say.")
            return Completion(f"[[ ## answer ## ]]\n{ANSWERS[params['rollout']]}")

    with candidate(lm=Flaky()):
        assert steps.best_guess("which?") == 7
    with candidate(lm=SampleLM()):
        broken = best_of_n(lambda question: int("x"), 2, steps.closeness)
        with pytest.raises(ValueError):
            broken("q")  # not a parse failure: a bug in the callable surfaces at once

    class Never(SampleLM):
        def complete(self, messages: Any, **params: Any) -> Completion:
            return Completion("no")

    with candidate(lm=Never()), pytest.raises(ParseError):
        majority(steps.guess, 3)("which?")


@pytest.mark.parametrize("program", ["best_guess", "good_enough", "vote", "polished"])
def test_built_module_samples_exactly_as_the_source(built: Any, program: str) -> None:
    dev_lm, built_lm = SampleLM(), SampleLM()
    with candidate(lm=dev_lm):
        dev = getattr(steps, program)("which?")
    with using(built_lm):
        shipped = getattr(built, program)("which?")
    assert dev == shipped
    assert dev_lm.calls == built_lm.calls


def test_built_code_imports_the_runtime_functions(built: Any) -> None:
    text = Path(built.__file__).read_text()
    imports = text.split("from promptcast_runtime import (", 1)[1].split(")", 1)[0]
    names = {name.strip() for name in imports.split(",") if name.strip()}
    assert {"Step", "best_of_n", "build_step", "majority", "PartialStream"} <= names
    assert "from promptcast_runtime import refine as polish" in text
    assert "pc.best_of_n(" not in text and "import promptcast\n" not in text
    assert "return best_of_n(guess, 4, closeness)(question)" in text


def test_sample_context_sets_request_params_for_any_step() -> None:
    lm = SampleLM()
    with candidate(lm=lm), sample(4, temperature=0.7, seed=10):
        assert steps.guess("which?") == 6
    own = steps.guess.state().lm_params  # the step's sampling, under the sample's
    assert lm.calls[0][1] == {**own, "rollout": 4, "temperature": 0.7, "seed": 14}
