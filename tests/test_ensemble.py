"""`ensemble`: several states of one step answering by majority vote, from spec to optimizer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from promptcast.ir import FunctionState
from promptcast.lockfile import Lock, LockEntry, LockError, save_lock, validate_entry
from promptcast.optimizers import OptimizationError
from promptcast_runtime import Completion, ParseError, SpecError, build_step, using
from promptcast_runtime.ensemble import EnsembleStep
from tests.support.optimizing import run, steps
from tests.support.scripted_lm import QUESTIONS

Label = Literal["NUM", "LOC", "HUM"]


def _member(instructions: str, **extra: Any) -> dict[str, Any]:
    return {"instructions": instructions, "demos": (), "adapter": "chat",
            "lm_params": {"temperature": 0.0}, **extra}  # fmt: skip


def _spec(members: Sequence[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "api": 2, "step": "app:kind", "kind": "predict", "instructions": "Classify.",
        "inputs": {"question": "A question."}, "outputs": {"answer": "Its type."},
        "shape": "single", "demos": (), "adapter": "chat", "lm_params": {}, "options": {},
        "ensemble": {"members": tuple(members), "reduce": "majority"}, **extra,
    }  # fmt: skip


class ByInstruction:
    """Answers by the system prompt's instruction: `vote X` answers X, `garble` a non-label."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> Completion:
        system = messages[0]["content"]
        word = system.split("vote ", 1)[1].split(".", 1)[0] if "vote " in system else "ZZZ"
        self.calls.append(word)
        return Completion(f"[[ ## answer ## ]]\n{word}\n\n[[ ## completed ## ]]")


def _step(*words: str) -> Any:
    return build_step(_spec([_member(f"Classify; vote {w}.") for w in words]), {"question": str}, Label)


def test_the_majority_answer_wins_and_every_member_is_asked() -> None:
    lm = ByInstruction()
    with using(lm):
        assert _step("LOC", "NUM", "NUM")(question="q") == "NUM"
    assert lm.calls == ["LOC", "NUM", "NUM"]


def test_a_tie_goes_to_the_first_member() -> None:
    with using(ByInstruction()):
        assert _step("HUM", "LOC")(question="q") == "HUM"
        assert _step("LOC", "HUM", "HUM", "LOC")(question="q") == "LOC"


def test_an_unparsable_member_casts_no_vote_and_all_unparsable_is_an_error() -> None:
    with using(ByInstruction()):
        assert _step("garble", "LOC", "garble")(question="q") == "LOC"
        with pytest.raises(ParseError):
            _step("garble", "garble")(question="q")


def test_the_async_form_votes_the_same() -> None:
    step = _step("LOC", "NUM", "NUM")
    with using(ByInstruction()):
        assert asyncio.run(step.acall(question="q")) == "NUM"


def test_each_member_sends_what_it_would_alone() -> None:
    members = [_member("Classify; vote LOC."), _member("Classify; vote NUM.", lm_params={"temperature": 0.3})]
    step = build_step(_spec(members), {"question": str}, Label)
    assert isinstance(step, EnsembleStep)
    plain = {k: v for k, v in _spec(members).items() if k != "ensemble"}
    single = build_step({**plain, **members[1]}, {"question": str}, Label)
    assert step.members[1].messages({"question": "q"}) == single.messages({"question": "q"})
    assert step.members[1].lm_params == {"temperature": 0.3}


@pytest.mark.parametrize(
    ("ensemble", "problem"),
    [
        ({"members": (_member("a"),), "reduce": "majority"}, "two or more members"),
        ({"members": (_member("a"), _member("b")), "reduce": "mean"}, "reduced by one of majority"),
        ({"members": (_member("a"), {"instructions": "b"}), "reduce": "majority"}, "exactly"),
    ],
)
def test_a_bad_ensemble_entry_is_a_spec_error(ensemble: Any, problem: str) -> None:
    spec = {**_spec([]), "ensemble": ensemble}
    with pytest.raises(SpecError, match=problem):
        build_step(spec, {"question": str}, Label)


def test_the_lock_refuses_bad_ensembles_and_round_trips_good_ones() -> None:
    a, b = FunctionState("A."), FunctionState("B.", demos=({"question": "q", "answer": "LOC"},))
    good = FunctionState("A.", members=(a, b))
    validate_entry("app:kind", LockEntry("sha256:x", good, model="m"))
    assert FunctionState.from_json(json.loads(json.dumps(good.to_json()))) == good
    for state, problem in [
        (FunctionState("A.", members=(a,)), "two or more"),
        (FunctionState("A.", members=(a, FunctionState("B.", members=(a, b)))), "plain state"),
        (FunctionState("A.", members=(a, FunctionState("B\ud800."))), "ensemble member 2"),
    ]:
        with pytest.raises(LockError, match=problem):
            validate_entry("app:kind", LockEntry("sha256:x", state, model="m"))


def test_the_optimizer_votes_with_the_best_candidates_and_keeps_it_only_if_it_wins() -> None:
    result, lm = run(steps().kind, "ensemble", num_candidates=2, max_labeled_demos=2)
    labels = [c.label for c in result.history]
    assert labels[-1].startswith("ensemble of ")
    ensemble = result.history[-1]
    best_single = max(c.dev_score for c in result.history[:-1] if c.complete)
    if result.best_label == ensemble.label:
        assert ensemble.dev_score > best_single
        assert len(result.states["optpkg.steps:kind"].members) >= 2
    else:
        assert ensemble.dev_score <= best_single  # a tie goes to the cheaper single state


def test_members_from_locks_and_missing_entries_are_errors(tmp_path: Path) -> None:
    kind = steps().kind
    paths = []
    for i, word in enumerate(("Classify.", "Classify the question.")):
        path = tmp_path / f"l{i}.json"
        save_lock(Lock({kind.qualname: LockEntry(kind.signature.hash(), FunctionState(word), model="m")}), path)
        paths.append(str(path))
    result, _ = run(kind, "ensemble", members_from=",".join(paths))
    assert [c.label for c in result.history][:2] == [f"member 1 ({paths[0]})", f"member 2 ({paths[1]})"]
    save_lock(Lock({}), tmp_path / "empty.json")
    with pytest.raises(OptimizationError, match="has no current entry"):
        run(kind, "ensemble", members_from=f"{paths[0]},{tmp_path / 'empty.json'}")
    with pytest.raises(OptimizationError, match="2 or more"):
        run(kind, "ensemble", size=1)
    assert QUESTIONS  # the scripted questions the runs used


@pytest.fixture
def cli_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import sys

    from tests.test_cli_optimize import fresh_process, write_project

    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    saved = list(sys.path)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    fresh_process(saved)


def _inspect_with(project: Path, state: FunctionState) -> Any:
    from click.testing import CliRunner

    from promptcast.cli import main
    from promptcast.targets import load_target

    function = load_target("cliapp.steps:kind")
    lock = Lock({function.qualname: LockEntry(function.signature.hash(), state, model="m")})
    save_lock(lock, project / "inspect.lock.json")
    return CliRunner().invoke(
        main, ["inspect", "cliapp.steps:kind", "-i", "question=Where is the Nile?", "--lock",
               str(project / "inspect.lock.json")],
    )  # fmt: skip


def test_inspect_shows_every_ensemble_member(cli_project: Path) -> None:
    state = FunctionState("First way.", members=(FunctionState("First way."), FunctionState("Second way.")))
    result = _inspect_with(cli_project, state)
    assert result.exit_code == 0, result.output
    assert "ensemble member 1 of 2" in result.output and "ensemble member 2 of 2" in result.output
    assert "First way." in result.output and "Second way." in result.output


def test_inspect_shows_the_nearest_demos_for_the_input(cli_project: Path) -> None:
    pool = ({"question": "Who wrote Hamlet?", "answer": "HUM"},
            {"question": "Where is the river Nile?", "answer": "LOC"})  # fmt: skip
    result = _inspect_with(cli_project, FunctionState("Classify.", nearest_k=1, demo_pool=pool))
    assert result.exit_code == 0, result.output
    assert "Where is the river Nile?" in result.output and "Hamlet" not in result.output


def test_a_built_ensemble_module_passes_mypy_strict(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    from promptcast.codegen.build import plan_build, write_tree

    package = tmp_path / "src" / "voteapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "kinds.py").write_text(
        textwrap.dedent(
            '''
            from typing import Literal

            import promptcast as pc


            @pc.chain_of_thought
            def kind(question: str) -> Literal["LOC", "HUM", "NUM"]:
                """Classify the kind of answer a question asks for."""
            '''
        )
    )
    sys.path.insert(0, str(tmp_path / "src"))
    try:
        from voteapp.kinds import kind  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path / "src"))
    members = (FunctionState("Classify."), FunctionState("Classify carefully.", lm_params={"temperature": 0.2}))
    state = FunctionState("Classify.", members=members)
    lock = Lock({"voteapp.kinds:kind": LockEntry(kind.signature.hash(), state, model="m")})
    out = tmp_path / "build"
    write_tree(plan_build(package, lock, vendor_runtime=True), out)
    generated = (out / "voteapp" / "kinds.py").read_text()
    assert '"ensemble"' in generated and "Classify carefully." in generated
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "voteapp/kinds.py"],
        capture_output=True, text=True, cwd=out,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_ensemble_costs_its_members_calls_so_a_tie_keeps_the_single_state() -> None:
    from promptcast.optimizers import OptimizationTask
    from promptcast.optimizers.base import Search
    from promptcast.optimizers.ensemble import vote
    from tests.support.optimizing import DEV, TRAIN
    from tests.support.scripted_lm import ScriptedLM, examples

    lm = ScriptedLM(QUESTIONS)
    search = Search(OptimizationTask(steps().kind, examples(TRAIN), examples(DEV), "exact_match", lm))
    search.discover()
    one = search.with_demos({"optpkg.steps:kind": [{"question": TRAIN[0], "answer": QUESTIONS[TRAIN[0]]}]})
    two = search.with_demos({"optpkg.steps:kind": [{"question": TRAIN[1], "answer": QUESTIONS[TRAIN[1]]}]})
    assert search.score("single", one) == 1.0
    assert search.score("ensemble", vote([one, two])) == 1.0
    single, ensemble = search.history
    assert ensemble.tokens_per_example is not None and single.tokens_per_example is not None
    assert ensemble.tokens_per_example > 1.8 * single.tokens_per_example  # two calls per run
    assert abs(ensemble.tokens_per_call - single.tokens_per_call) < 0.2 * single.tokens_per_call
    assert search.best is not None and search.best[1] == "single"
