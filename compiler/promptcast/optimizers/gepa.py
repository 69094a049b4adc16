"""`gepa`: reflective prompt evolution (GEPA, Agrawal et al. 2025; DSPy's `dspy.GEPA`).

The loop, per iteration:

1. pick a parent from the Pareto front over dev examples: each dev example's best score is
   held by some candidates; a candidate is drawn with probability proportional to how many
   examples it is best on (so specialists survive, not only the best average);
2. pick one LM function of the program (round robin) and a minibatch of training examples;
   run the parent on it with traces, scoring each run with the metric, whose feedback text
   (`(score, feedback)` metrics) is kept;
3. the reflection LM (`--reflection-model`, default the task model) reads the function's
   current instruction and the minibatch's inputs, outputs, scores and feedback, and writes a
   new instruction;
4. the child (parent with that instruction) runs on the same minibatch; only if its minibatch
   score beats the parent's is it scored on the whole dev set and added to the pool.

The winner is the candidate with the best average dev score (ties: the earlier). Stops after
`max_iterations` or when the budget is spent. The reflection prompt is built through the
runtime, so it is cached and counted like every other call. Not implemented: GEPA's merge step.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from promptcast_runtime import Field, Predictor, Signature, render

from .base import Optimizer, Search, States, TracedRun
from .propose import PROPOSER_LM_PARAMS, ask_text

REFLECT: Predictor[str] = Predictor(
    Signature(
        "I provided an assistant with the following instructions to perform a task for me."
        " The following are examples of different task inputs provided to the assistant along"
        " with the assistant's response for each of them, and some feedback on how the"
        " assistant's response could be better. Your task is to write a new instruction for"
        " the assistant. Read the inputs carefully and identify the input format and infer a"
        " detailed task description. Read all the assistant responses and the corresponding"
        " feedback; identify all niche and domain-specific factual information about the task"
        " and include it in the instruction, as well as any generalizable strategy the"
        " assistant used successfully.",
        (
            Field("current_instruction", str, "The instruction the assistant was given."),
            Field("examples_with_feedback", str, "Inputs, the assistant's outputs, feedback."),
        ),
        (Field("new_instruction", str, "The improved instruction for the assistant."),),
    ),
    returns="new_instruction",
    lm_params=PROPOSER_LM_PARAMS,
)


@dataclass
class GEPA(Optimizer):
    """Reflective instruction evolution over a Pareto front of dev-set specialists."""

    name: ClassVar[str] = "gepa"
    max_iterations: int = 12
    minibatch_size: int = 3
    reflection_temperature: float = 1.0

    def propose(self, search: Search) -> None:
        rng = random.Random(search.task.seed)
        reflection_lm = search.reflection_lm or search.lm
        pool: list[tuple[str, States, list[float]]] = []
        base = dict(search.base_states)
        pool.append(("seed", base, search.score_each("gepa: seed (zero-shot)", base)))
        functions = sorted(search.functions)
        train = list(search.task.trainset)
        for iteration in range(self.max_iterations):
            parent_label, parent, _ = pool[_pareto_pick(pool, rng)]
            qualname = functions[iteration % len(functions)]
            batch = rng.sample(train, min(self.minibatch_size, len(train)))
            parent_runs = search.trace(
                [(ex, parent) for ex in batch], f"gepa {iteration + 1}: parent"
            )
            instruction = self._reflect(
                search, reflection_lm, parent, qualname, parent_runs, iteration
            )
            if not instruction or instruction == parent[qualname].instructions:
                continue
            child = {
                **parent,
                qualname: dataclasses.replace(parent[qualname], instructions=instruction),
            }
            child_runs = search.trace([(ex, child) for ex in batch], f"gepa {iteration + 1}: child")
            if _total(child_runs) <= _total(parent_runs):
                search.notes.append(
                    f"gepa {iteration + 1}: child of {parent_label} not better on its minibatch"
                    f" ({_total(child_runs):.2f} <= {_total(parent_runs):.2f})"
                )
                continue
            name = search.functions[qualname].name
            label = f"gepa {iteration + 1}: {name} <- {parent_label}"
            pool.append((label, child, search.score_each(label, child)))

    def _reflect(
        self,
        search: Search,
        lm: Any,
        parent: States,
        qualname: str,
        runs: list[TracedRun],
        iteration: int,
    ) -> str:
        shown = []
        for i, run in enumerate(runs, 1):
            calls = [r for r in run.records if r.qualname == qualname]
            inputs = calls[-1].inputs if calls else run.example.inputs()
            outputs = calls[-1].fields if calls else {}
            score = run.score.value if run.score is not None else 0.0
            feedback = (
                (run.score.feedback if run.score is not None else None)
                or run.error
                or ("correct" if score >= 1 else f"expected {render(run.example.expected())}")
            )
            shown.append(
                f"# Example {i}\nInputs: {render(dict(inputs))}\n"
                f"Assistant's output: {render(dict(outputs)) if outputs else '(none)'}\n"
                f"Score: {score:.2f}\nFeedback: {feedback}"
            )
        values = {
            "current_instruction": parent[qualname].instructions,
            "examples_with_feedback": "\n\n".join(shown),
        }
        return ask_text(
            REFLECT, values, lm,
            index=iteration, temperature=self.reflection_temperature, seed=search.task.seed,
        )  # fmt: skip

    def estimate(self, n_train: int, n_dev: int) -> int:
        """An upper bound: every child accepted (each iteration: parent and child minibatch
        runs, one reflection call, a full dev evaluation), plus the seed's dev evaluation."""
        per_iteration = 2 * min(self.minibatch_size, n_train) + 1 + n_dev
        return n_dev + self.max_iterations * per_iteration


def _total(runs: list[TracedRun]) -> float:
    return sum(r.score.value for r in runs if r.score is not None)


def _pareto_pick(pool: list[tuple[str, States, list[float]]], rng: random.Random) -> int:
    """A candidate index, weighted by how many dev examples it is (one of) the best on."""
    n = len(pool[0][2])
    wins = [0] * len(pool)
    for example in range(n):
        best = max(scores[example] for _, _, scores in pool)
        for i, (_, _, scores) in enumerate(pool):
            if scores[example] == best and best > 0:
                wins[i] += 1
    if not any(wins):
        return rng.randrange(len(pool))
    return rng.choices(range(len(pool)), weights=wins)[0]
