"""`--optimizer finetune` and `better_together` end to end with a scripted LM and the fake
fine-tuning server: what is trained on (the runtime's own rendering), what is locked, what a
built module sends, budgets and --dry-run."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from promptcast.ir import FunctionState
from promptcast.lockfile import Lock, LockEntry, LockError, load_lock, save_lock
from promptcast.optimizers import OptimizationError, OptimizationTask, make_optimizer, optimize
from promptcast.optimizers.record import lock_entries
from promptcast.steps import step_spec
from promptcast_runtime import Completion, build_step
from tests.support.finetune_server import FakeFineTuningServer
from tests.support.optimizing import DEV, TRAIN, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM, examples

ALWAYS = ["How many legs has a spider?", "Where is Paris?", "Who wrote Hamlet?", "Where is Lima?"]
"""The base model answers these right zero-shot (the teacher's passing runs)."""
PASSING = [q for q in TRAIN if q in ALWAYS or QUESTIONS[q] == "HUM"]
"""The teacher's passing training runs: ALWAYS, and HUM (the scripted model's wrong answer)."""


class TrainableLM(ScriptedLM):
    """Right zero-shot only on ALWAYS (with demos: always); a request naming a fine-tuned
    model (`model` = "ft:...") is always right -- the training worked."""

    model = "openai/base-model"

    def __init__(self) -> None:
        super().__init__(QUESTIONS, always=ALWAYS, needs_demos=1)
        self.params: list[dict[str, Any]] = []
        self._guard = threading.Lock()

    def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> Completion:
        with self._guard:
            self.params.append(dict(params))
        if str(params.get("model", "")).startswith("ft:"):
            question = messages[-1]["content"].split("\n")[1]
            answer = QUESTIONS.get(question, "HUM")
            return Completion(f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]")
        return super().complete(messages, **params)


def _task(lm: Any, **kw: Any) -> OptimizationTask:
    return OptimizationTask(
        steps().kind, examples(TRAIN), examples(DEV), "exact_match", lm, threads=2, **kw
    )


def _finetune(server: FakeFineTuningServer, tmp_path: Path, **args: Any) -> Any:
    return make_optimizer(
        "finetune",
        {"api_base": server.url, "poll_seconds": 0.0, "workdir": str(tmp_path), **args},
    )


def test_finetune_trains_on_the_runtime_rendering_and_scores_the_trained_model(
    tmp_path: Path,
) -> None:
    lm = TrainableLM()
    with FakeFineTuningServer(polls=1) as server:
        result = optimize(_task(lm), _finetune(server, tmp_path, epochs=3))
    kind = steps().kind
    state = result.states[kind.qualname]
    assert state.model == "ft:base:promptcast:ftjob-1"
    assert result.dev_score_before is not None and result.dev_score_after == 1.0
    assert result.dev_score_after > result.dev_score_before
    # Trained on the passing teacher runs only, each the exact request the student sends.
    (upload,) = server.files.values()
    rows = [json.loads(line)["messages"] for line in upload.splitlines()]
    passing = PASSING
    assert len(rows) == len(passing)
    step = kind.predictor(FunctionState.zero_shot(kind.signature))
    expected = {
        q: [
            *step.messages({"question": q}),
            {
                "role": "assistant",
                "content": f"[[ ## answer ## ]]\n{QUESTIONS[q]}\n\n[[ ## completed ## ]]",
            },
        ]
        for q in passing
    }
    assert sorted(rows, key=json.dumps) == sorted(expected.values(), key=json.dumps)
    assert server.creates[0]["model"] == "base-model"  # the endpoint's name for --model
    assert server.creates[0]["hyperparameters"] == {"n_epochs": 3}
    # Scored through the request the built module sends: it names the trained model.
    scored = [p for p in lm.params if p.get("model") == state.model]
    assert len(scored) == len(DEV)
    training = result.training
    assert training["model"] == state.model and training["base_model"] == "base-model"
    assert training["trainer"] == "openai" and training["params"]["epochs"] == 3
    assert training["training_set"]["conversations"] == len(passing)
    assert training["training_set"]["sha256"].startswith("sha256:")
    assert training["job_id"] == "ftjob-1"


def test_the_lock_records_the_trained_model_and_the_build_spec_sends_it(tmp_path: Path) -> None:
    lm = TrainableLM()
    with FakeFineTuningServer(polls=0) as server:
        result = optimize(_task(lm), _finetune(server, tmp_path))
    entries = lock_entries(result, model="openai/base-model", datasets={})
    path = tmp_path / "promptcast.lock.json"
    lock = Lock()
    for qualname, entry in entries.items():
        lock = lock.with_entry(qualname, entry)
    save_lock(lock, path)
    data = json.loads(path.read_text())
    (entry,) = data["functions"].values()
    assert entry["state"]["model"] == "ft:base:promptcast:ftjob-1"
    assert entry["optimization"]["training"]["training_set"]["conversations"] == len(PASSING)
    assert entry["model"] == "openai/base-model"  # what the run optimized with: the base
    kind = steps().kind
    state = load_lock(path).state_for(kind.signature)
    spec = step_spec(kind.signature, state, "openai/base-model")
    assert spec["model"] == "ft:base:promptcast:ftjob-1"
    built = build_step(spec, inputs={"question": str}, returns=kind.annotations["return"])
    seen = TrainableLM()
    assert built.forward({"question": "Where is Oslo?"}, seen).value == "LOC"
    assert seen.params[-1]["model"] == "ft:base:promptcast:ftjob-1"
    built.forward({"question": "Where is Oslo?"}, seen, model="ft:other")  # a call's own wins
    assert seen.params[-1]["model"] == "ft:other"


def test_a_lock_without_a_trained_model_is_unchanged_and_a_bad_name_is_refused(
    tmp_path: Path,
) -> None:
    state = FunctionState("Do it.")
    assert "model" not in state.to_json()
    assert FunctionState.from_json(state.to_json()) == state
    kind = steps().kind
    bad = LockEntry(kind.signature.hash(), FunctionState("Do it.", model="x y\n"))
    path = tmp_path / "lock.json"
    save_lock(Lock({kind.qualname: bad}), path)
    with pytest.raises(LockError, match="trained model 'x y\\\\n' is not a model name"):
        load_lock(path)


def test_a_spec_model_that_is_not_a_name_is_a_spec_error() -> None:
    from promptcast_runtime.step import SpecError

    kind = steps().kind
    spec = {**step_spec(kind.signature, FunctionState.zero_shot(kind.signature)), "model": 3}
    with pytest.raises(SpecError, match="model must be a model name"):
        build_step(spec, inputs={"question": str}, returns=kind.annotations["return"])


def test_the_teacher_is_the_locked_state(tmp_path: Path) -> None:
    """A locked state with demos teaches: every training run passes, and the student keeps
    the demos it was trained with unless exclude_demos."""
    kind = steps().kind
    demo = {"question": "Who founded Rome?", "answer": "HUM"}
    locked = FunctionState.zero_shot(kind.signature)
    locked = FunctionState(locked.instructions, (demo,), locked.adapter, locked.lm_params)
    lock = Lock({kind.qualname: LockEntry(kind.signature.hash(), locked)})
    lm = TrainableLM()
    with FakeFineTuningServer(polls=0) as server:
        result = optimize(_task(lm, lock=lock), _finetune(server, tmp_path))
        (upload,) = server.files.values()
    rows = [json.loads(line)["messages"] for line in upload.splitlines()]
    assert len(rows) == len(TRAIN)  # with a demo, the scripted base answers all right
    assert all(len(r) == 5 for r in rows)  # system, demo user+assistant, user, answer
    assert result.states[kind.qualname].demos == (demo,)
    with FakeFineTuningServer(polls=0) as server:
        result = optimize(_task(lm, lock=lock), _finetune(server, tmp_path, exclude_demos=True))
        (upload,) = server.files.values()
    assert all(len(json.loads(line)["messages"]) == 3 for line in upload.splitlines())
    assert result.states[kind.qualname].demos == ()


def test_a_failed_job_fails_the_optimize_with_the_providers_message(tmp_path: Path) -> None:
    with (
        FakeFineTuningServer(polls=0, fail_message="the file has 3 lines; at least 10") as server,
        pytest.raises(OptimizationError, match="at least 10"),
    ):
        optimize(_task(TrainableLM()), _finetune(server, tmp_path))


def test_a_rerun_resumes_the_recorded_job(tmp_path: Path) -> None:
    with FakeFineTuningServer(polls=0) as server:
        first = optimize(_task(TrainableLM()), _finetune(server, tmp_path))
        second = optimize(_task(TrainableLM()), _finetune(server, tmp_path))
    assert first.states == second.states
    assert len(server.creates) == 1 and len(server.files) == 1


def test_budgets_refuse_training_before_anything_is_uploaded(tmp_path: Path) -> None:
    with FakeFineTuningServer(polls=0) as server:
        result = optimize(_task(TrainableLM()), _finetune(server, tmp_path, max_train_tokens=10))
        assert result.stopped is not None and "max_train_tokens=10" in result.stopped
        assert result.states[steps().kind.qualname].model == ""  # zero-shot kept
        with pytest.raises(OptimizationError, match="price per 1M training tokens is unknown"):
            optimize(_task(TrainableLM(), max_usd=1.0), _finetune(server, tmp_path))
        result = optimize(
            _task(TrainableLM(), max_usd=0.0001), _finetune(server, tmp_path, price=25.0)
        )
        assert result.stopped is not None and "exceeds --max-usd" in result.stopped
        assert not server.files and not server.creates
        capped = optimize(_task(TrainableLM()), _finetune(server, tmp_path, max_train_examples=2))
    assert capped.training["training_set"]["conversations"] == 2


def test_better_together_chains_prompts_weights_prompts(tmp_path: Path) -> None:
    lm = TrainableLM()
    with FakeFineTuningServer(polls=0) as server:
        optimizer = make_optimizer(
            "better_together",
            {
                "api_base": server.url,
                "poll_seconds": 0.0,
                "workdir": str(tmp_path),
                "max_labeled_demos": 2,
                "max_bootstrapped_demos": 2,
            },
        )
        result = optimize(_task(lm), optimizer)
    labels = [c.label for c in result.history]
    assert labels == ["p", "p -> w", "p -> w -> p"]
    (upload,) = server.files.values()
    rows = [json.loads(line)["messages"] for line in upload.splitlines()]
    assert len(rows) == len(TRAIN)  # the p step's demos made every teacher run pass
    assert all(len(r) == 3 for r in rows)  # exclude_demos: trained on the zero-shot prompt
    final = result.states[steps().kind.qualname]
    assert final.model == "ft:base:promptcast:ftjob-1"
    last = result.history[-1]
    assert last.states is not None and last.states[steps().kind.qualname].demos  # p again
    assert result.dev_score_after == 1.0


def test_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(OptimizationError, match="trainer='gpu'"):
        make_optimizer("finetune", {"trainer": "gpu"})
    with pytest.raises(OptimizationError, match="teacher='best'"):
        make_optimizer("finetune", {"teacher": "best"})
    with pytest.raises(OptimizationError, match="strategy='p -> x'"):
        make_optimizer("better_together", {"strategy": "p -> x"})


def test_a_program_trains_one_model_on_every_steps_calls(tmp_path: Path) -> None:
    """DSPy's multitask default: one model for the program, trained on the calls of all its
    steps (here `kind`, then `shout` on its answer); every step then calls it."""
    lm = TrainableLM()
    program = steps().two_steps
    task = OptimizationTask(program, examples(TRAIN), examples(DEV), "exact_match", lm, threads=2)
    with FakeFineTuningServer(polls=0) as server:
        result = optimize(task, _finetune(server, tmp_path))
        (upload,) = server.files.values()
    rows = [json.loads(line)["messages"] for line in upload.splitlines()]
    assert len(rows) == 2 * len(PASSING)
    systems = {r[0]["content"].split("\n")[1] for r in rows}
    assert len(systems) == 2  # the two steps' own prompts (`question` and `text` inputs)
    assert {s.model for s in result.states.values()} == {"ft:base:promptcast:ftjob-1"}
    assert len(result.states) == 2
