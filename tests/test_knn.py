"""`knn`: per-call nearest training examples as demos (BM25, stdlib), from spec to lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptcast.ir import FunctionState
from promptcast.lockfile import LockEntry, LockError, validate_entry
from promptcast_runtime import SpecError, build_step
from promptcast_runtime.nearest import NearestDemos, terms
from tests.support.optimizing import DEV, TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, sections

POOL = (
    {"question": "Where is Paris?", "answer": "LOC"},
    {"question": "Who wrote Hamlet?", "answer": "HUM"},
    {"question": "How many legs has a spider?", "answer": "NUM"},
    {"question": "Where is the river Nile?", "answer": "LOC"},
)


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "api": 2,
        "step": "app:kind",
        "kind": "predict",
        "instructions": "Classify.",
        "inputs": {"question": "A question."},
        "outputs": {"answer": "Its type."},
        "shape": "single",
        "demos": (),
        "adapter": "chat",
        "lm_params": {"temperature": 0.0},
        "options": {},
        **extra,
    }


def test_bm25_ranks_the_demo_sharing_rare_words_first() -> None:
    nearest = NearestDemos(POOL, 2, ["question"])
    chosen = nearest.select({"question": "Where is the Nile delta?"})
    assert [d["question"] for d in chosen] == ["Where is the river Nile?", "Where is Paris?"]
    assert nearest.select({"question": "Who wrote Macbeth?"})[0]["answer"] == "HUM"


def test_ties_keep_pool_order_and_k_caps_the_count() -> None:
    nearest = NearestDemos(POOL, 3, ["question"])
    assert nearest.select({"question": "zzz unrelated"}) == POOL[:3]
    assert NearestDemos((), 3, ["question"]).select({"question": "x"}) == ()


@given(st.text(max_size=60), st.integers(1, 6))
def test_selection_is_deterministic_and_a_subset_of_the_pool(query: str, k: int) -> None:
    nearest = NearestDemos(POOL, k, ["question"])
    first = nearest.select({"question": query})
    assert first == NearestDemos(POOL, k, ["question"]).select({"question": query})
    assert len(first) == min(k, len(POOL)) and all(d in POOL for d in first)


def test_structured_values_are_searched_as_json_text() -> None:
    assert terms({"city": "Oslo", "n": 3}) == ["city", "oslo", "n", "3"]


def test_a_knn_step_sends_each_call_its_nearest_demos() -> None:
    step = build_step(_spec(nearest={"k": 1, "pool": POOL}), {"question": str}, Literal["LOC", "HUM", "NUM"])
    about_nile = step.messages({"question": "Is the Nile long?"})
    about_hamlet = step.messages({"question": "Who wrote Hamlet then?"})
    assert "the river Nile" in about_nile[1]["content"]
    assert "Hamlet" in about_hamlet[1]["content"]
    assert len(about_nile) == 4  # system, one demo turn pair, the question


@pytest.mark.parametrize(
    ("nearest", "problem"),
    [
        ({"k": 0, "pool": POOL}, "k of 1 or more"),
        ({"k": 2}, "mapping"),
        ({"k": 2, "pool": ["x"]}, "sequence of demo mappings"),
    ],
)
def test_a_bad_nearest_entry_is_a_spec_error(nearest: Any, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        build_step(_spec(nearest=nearest), {"question": str}, str)


def test_the_lock_refuses_a_knn_state_it_cannot_trust() -> None:
    ok = FunctionState("Classify.", nearest_k=2, demo_pool=POOL)
    validate_entry("app:kind", LockEntry("sha256:x", ok, model="m"))
    for state, problem in [
        (FunctionState("C.", nearest_k=2), "demo pool is empty"),
        (FunctionState("C.", nearest_k=True, demo_pool=POOL), "nearest k"),  # type: ignore[arg-type]
        (FunctionState("C.", nearest_k=2, demo_pool=({"q": float("nan")},)), "pool demo 1"),
    ]:
        with pytest.raises(LockError, match=problem):
            validate_entry("app:kind", LockEntry("sha256:x", state, model="m"))


def test_state_json_round_trips_and_omits_nearest_when_unused() -> None:
    state = FunctionState("Classify.", nearest_k=2, demo_pool=POOL)
    assert FunctionState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert "nearest" not in FunctionState("Classify.").to_json()


def test_knn_optimizer_pools_every_labeled_example_and_scores_it_on_dev() -> None:
    result, lm = run(steps().kind, "knn", k=2)
    state = result.states["optpkg.steps:kind"]
    assert state.nearest_k == 2 and state.demos == ()
    assert [d["question"] for d in state.demo_pool] == TRAIN
    dev_requests = [r for r in lm.requests if sections(r[-1]["content"])["question"] not in TRAIN]
    with_demos = [r for r in dev_requests if len(r) > 2]  # the rest: the zero-shot "before"
    assert len(with_demos) == len(DEV) and all(len(r) == 2 + 2 * 2 for r in with_demos)
    assert result.dev_score_after == 1.0


def test_knn_pool_of_a_reasoning_step_is_rationalized() -> None:
    from tests.test_optimizers_reasoning import HintLM

    lm = HintLM(contrary=TRAIN[:2])
    result, _ = run(steps().kind_cot, "knn", lm, k=2)
    pool = result.states["optpkg.steps:kind_cot"].demo_pool
    assert {d["question"] for d in pool} == set(TRAIN[2:])
    assert all(d["reasoning"] and d["answer"] == QUESTIONS[d["question"]] for d in pool)


def test_a_built_knn_module_passes_mypy_strict_and_ships_its_pool(tmp_path: Path) -> None:
    from promptcast.codegen.build import plan_build, write_tree
    from promptcast.lockfile import Lock

    package = tmp_path / "src" / "knnapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "kinds.py").write_text(
        textwrap.dedent(
            '''
            from typing import Literal

            import promptcast as pc


            @pc.predict
            def kind(question: str) -> Literal["LOC", "HUM", "NUM"]:
                """Classify the kind of answer a question asks for."""
            '''
        )
    )
    sys.path.insert(0, str(tmp_path / "src"))
    try:
        from knnapp.kinds import kind  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path / "src"))
    state = FunctionState("Classify.", nearest_k=2, demo_pool=POOL)
    lock = Lock({"knnapp.kinds:kind": LockEntry(kind.signature.hash(), state, model="m")})
    out = tmp_path / "build"
    write_tree(plan_build(package, lock), out)
    generated = (out / "knnapp" / "kinds.py").read_text()
    assert "Where is the river Nile?" in generated and '"nearest"' in generated
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(out / "knnapp" / "kinds.py")],
        capture_output=True, text=True, cwd=out,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
