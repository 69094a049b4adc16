"""`mipro`: DSPy's MIPROv2 -- demo-set candidates x grounded instruction proposals, searched
with optuna's Tree-structured Parzen Estimator.

As in `dspy/teleprompt/mipro_optimizer_v2.py`:

1. `num_candidates` demo sets per function, as random search builds them: none, labeled only,
   an unshuffled bootstrap, then seeded shuffled bootstraps of random size (defaults 4
   bootstrapped, 4 labeled, as MIPROv2's);
2. `num_candidates` instructions per function: the current one, and proposals from a grounded
   proposer that sees a summary of the training data (one LM call), the program's source, the
   current instruction, demos from a candidate set and a randomly drawn tip (DSPy's TIPS);
3. `num_trials` trials (DSPy's rule: max(2 * vars * log2(n), 1.5 n), vars = 2 per function):
   each picks an instruction and a demo set per function (optuna's TPE, `tpe.py`) and is scored on the
   dev set -- or, when dev has more than 50 rows, on a minibatch of `minibatch_size`, with the
   combination of best mean minibatch score scored on all of dev every
   `minibatch_full_eval_steps` trials.

`auto=light|medium|heavy` sets `num_candidates` to 6/12/18 and caps dev at 100/300/1000 rows,
as DSPy's presets. The best fully scored combination wins. Proposals go through the runtime
(cached, budgeted, reproducible samples).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from promptcast_runtime import Field, Predictor, Signature, render

from ..evaluate.data import Example
from .base import OptimizationError, Optimizer, Search, States
from .propose import PROPOSER_LM_PARAMS, ask_text
from .random_search import RandomSearch

AUTO = {"light": (6, 100), "medium": (12, 300), "heavy": (18, 1000)}
MIN_MINIBATCH_DEV = 50
TIPS = (
    "",
    "Don't be afraid to be creative when creating the new instruction!",
    "Keep the instruction clear and concise.",
    "Make sure your instruction is very informative and descriptive.",
    "The instruction should include a high stakes scenario in which the LM must solve the task!",
    'Include a persona that is relevant to the task in the instruction (ie. "You are a ...")',
)

SUMMARIZE: Predictor[str] = Predictor(
    Signature(
        "Given several examples from a dataset please write observations about trends that hold"
        " for most or all of the samples. Be concise; a few sentences.",
        (Field("examples", str, "Sample data points from the dataset."),),
        (Field("observations", str, "What most samples have in common."),),
    ),
    returns="observations",
    lm_params=PROPOSER_LM_PARAMS,
)

INSTRUCT: Predictor[str] = Predictor(
    Signature(
        "Use the information below to learn about a task that we are trying to solve using"
        " calls to an LM, then generate a new instruction that will be used to prompt a"
        " Language Model to better solve the task.",
        (
            Field("dataset_description", str, "A description of the dataset that we are using."),
            Field("program_code", str, "Language model program designed to solve a task."),
            Field("basic_instruction", str, "Basic instruction."),
            Field("task_demos", str, "Example inputs/outputs of our module."),
            Field("tip", str, "A suggestion for how to go about generating the new instruction."),
        ),
        (Field("proposed_instruction", str, "Propose an instruction for the language model."),),
    ),
    returns="proposed_instruction",
    lm_params=PROPOSER_LM_PARAMS,
)


@dataclass
class MIPROv2(Optimizer):
    """Instructions x demo sets per function, searched with TPE (DSPy's MIPROv2)."""

    name: ClassVar[str] = "mipro"
    auto: str | None = "light"
    num_candidates: int | None = None
    num_trials: int | None = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 4
    minibatch_size: int = 35
    minibatch_full_eval_steps: int = 5
    init_temperature: float = 0.5
    racing: bool = True
    """Race full evaluations (`Search.score(race=True)`): a trial very probably worse than the
    best so far stops after a few dev rows; the winner is always scored on all of dev."""

    def _sizes(self, n_functions: int) -> tuple[int, int, int | None]:
        if self.auto is not None and self.auto not in AUTO:
            raise OptimizationError(
                f"mipro auto must be one of {', '.join(AUTO)}, not {self.auto!r}"
            )
        n, dev_cap = AUTO[self.auto] if self.auto else (self.num_candidates or 6, None)
        if self.num_candidates is not None:
            n = self.num_candidates
        variables = 2 * n_functions
        trials = self.num_trials or int(max(2 * variables * math.log2(max(n, 2)), 1.5 * n))
        return n, trials, dev_cap

    def propose(self, search: Search) -> None:
        n, trials, dev_cap = self._sizes(len(search.functions))
        seed = search.task.seed
        functions = sorted(search.functions)
        demo_sets = self._demo_sets(search, n)
        instructions = self._instructions(search, n, demo_sets)
        from .tpe import CategoricalTPE

        space = {f"{q}:instruction": len(instructions[q]) for q in functions}
        space |= {f"{q}:demos": len(demo_sets) for q in functions}
        tpe = CategoricalTPE(space, seed)
        dev = list(search.task.devset)[: dev_cap or None]
        minibatch = len(dev) > MIN_MINIBATCH_DEV
        rng = random.Random(seed)
        seen: dict[tuple[tuple[str, int], ...], list[float]] = {}
        default = {name: 0 for name in space}  # the current instructions, no demos: zero-shot
        zero_shot = self._states(search, default, instructions, demo_sets)
        tpe.tell(default, search.score("trial 0: zero-shot", zero_shot))
        for trial in range(trials):
            params = tpe.ask()
            states = self._states(search, params, instructions, demo_sets)
            label = f"trial {trial + 1}: " + ", ".join(
                f"{search.functions[q].name} i{params[f'{q}:instruction']}/d{params[f'{q}:demos']}"
                for q in functions
            )
            if minibatch:
                batch = rng.sample(dev, min(self.minibatch_size, len(dev)))
                report = search.evaluate(states, batch, label)
                score = report.score
                seen.setdefault(tuple(sorted(params.items())), []).append(score)
                if (trial + 1) % self.minibatch_full_eval_steps == 0 or trial == trials - 1:
                    best = max(seen, key=lambda k: sum(seen[k]) / len(seen[k]))
                    full = self._states(search, dict(best), instructions, demo_sets)
                    search.score(f"full eval after trial {trial + 1}", full, race=self.racing)
            else:
                score = search.score(label, states, race=self.racing)
            tpe.tell(params, score)

    def _states(
        self,
        search: Search,
        params: dict[str, int],
        instructions: dict[str, list[str]],
        demo_sets: list[States],
    ) -> States:
        states: States = {}
        for q in search.functions:
            demos = demo_sets[params[f"{q}:demos"]][q].demos
            text = instructions[q][params[f"{q}:instruction"]]
            states[q] = dataclasses.replace(search.base_states[q], instructions=text, demos=demos)
        return states

    def _demo_sets(self, search: Search, n: int) -> list[States]:
        """Random search's candidates -3 .. n-4: none, labeled, unshuffled bootstrap, shuffled
        bootstraps of random size (DSPy's `create_n_fewshot_demo_sets`, shared by both)."""
        maker = RandomSearch(
            max_bootstrapped_demos=self.max_bootstrapped_demos,
            max_labeled_demos=self.max_labeled_demos,
        )
        return [maker.candidate(search, seed)[1] for seed in range(-3, n - 3)]

    def _instructions(
        self, search: Search, n: int, demo_sets: list[States]
    ) -> dict[str, list[str]]:
        seed = search.task.seed
        rng = random.Random(seed)
        summary = self._summary(search.task.trainset[:10], search)
        code = _source(search.task.target)
        result: dict[str, list[str]] = {}
        for qualname in sorted(search.functions):
            current = search.base_states[qualname].instructions
            found = [current]
            for index in range(1, n):
                demos = demo_sets[index % len(demo_sets)][qualname].demos[:3]
                values = {
                    "dataset_description": summary,
                    "program_code": code,
                    "basic_instruction": current,
                    "task_demos": "\n".join(render(d) for d in demos) or "No examples.",
                    "tip": rng.choice(TIPS) or "No tip.",
                }
                text = ask_text(
                    INSTRUCT, values, search.lm,
                    index=index, temperature=self.init_temperature, seed=seed,
                )  # fmt: skip
                found.append(text or current)
            result[qualname] = found
        return result

    def _summary(self, examples: Any, search: Search) -> str:
        shown = "\n".join(render(dict(ex.data)) for ex in examples if isinstance(ex, Example))
        return ask_text(SUMMARIZE, {"examples": shown}, search.lm)

    def estimate(self, n_train: int, n_dev: int) -> int:
        """An upper bound for one function: demo-set bootstraps (every training example run),
        the data summary and proposals, and every trial scored on the (capped) dev set."""
        n, trials, dev_cap = self._sizes(1)
        dev = min(n_dev, dev_cap) if dev_cap else n_dev
        per_trial = min(self.minibatch_size, dev) if dev > MIN_MINIBATCH_DEV else dev
        full = (
            (trials // self.minibatch_full_eval_steps + 1) * dev if dev > MIN_MINIBATCH_DEV else 0
        )
        return max(0, n - 2) * n_train + 1 + (n - 1) + trials * per_trial + full


def _source(target: Any) -> str:
    fn = getattr(target, "fn", target)
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__doc__", "") or ""
