"""`better_together`: DSPy's BetterTogether -- prompt and weight optimization in sequence.

`strategy` is a chain of `p` (prompts: BootstrapFewShot, `max_bootstrapped_demos` +
`max_labeled_demos`) and `w` (weights: BootstrapFinetune, the `finetune` optimizer's
parameters), DSPy's default `"p -> w -> p"`:

- `p` bootstraps demos with the current states as they stand (after a `w`, the student calls
  the trained model, so its demos are bootstrapped *on* the trained model);
- `w` trains on the successful runs of the current states (the teacher: `p`'s demos) and
  moves every step to the trained model; with `exclude_demos` (the default here, as a small
  local model trains on short prompts) the student keeps no demos, and the next `p` gives it
  demos found with the trained model.

Every intermediate program is scored on dev (labels `p`, `p -> w`, `p -> w -> p`); the task's
objective picks the winner, as DSPy returns the best program on its validation set. A step that
fails (a training error) is an error, not a silent fallback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..evaluate.data import Example
from .base import OptimizationError, Optimizer, Search, States, Target
from .bootstrap import bootstrap_states
from .finetune import FinetuneSettings, finetune_states, training_estimate

STEPS = ("p", "w")


@dataclass
class BetterTogether(Optimizer, FinetuneSettings):
    """Prompts, then weights, then prompts on the trained model (see module doc)."""

    name: ClassVar[str] = "better_together"
    strategy: str = "p -> w -> p"
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    exclude_demos: bool = True
    metric_threshold: float | None = None

    def __post_init__(self) -> None:
        self.check()
        steps = self.steps()
        if not steps or any(s not in STEPS for s in steps):
            raise OptimizationError(
                f"strategy={self.strategy!r}: expected steps p (prompts) and w (weights) joined "
                "by ' -> ', e.g. 'p -> w -> p'"
            )

    def steps(self) -> list[str]:
        return [s.strip() for s in self.strategy.split("->")]

    def propose(self, search: Search) -> None:
        states: States = dict(search.base_states)
        done: list[str] = []
        for index, step in enumerate(self.steps()):
            done.append(step)
            label = " -> ".join(done)
            if step == "p":
                states = bootstrap_states(
                    search,
                    list(search.task.trainset),
                    max_bootstrapped=self.max_bootstrapped_demos,
                    max_labeled=self.max_labeled_demos,
                    max_rounds=1,
                    threshold=self.metric_threshold,
                    label=f"{label} (p)",
                    reasoning="dspy",
                )
            else:
                states = finetune_states(
                    search,
                    states,
                    self,
                    threshold=self.metric_threshold,
                    label=f"step {index + 1} of {self.strategy!r}",
                )
                # Later prompt steps build on the trained model: their zero-shot base calls it.
                model = next(iter(states.values())).model
                search.base_states = {
                    q: dataclasses.replace(s, model=model) for q, s in search.base_states.items()
                }
            search.score(label, states)

    def estimate(self, n_train: int, n_dev: int) -> int:
        per_step = {"p": n_train, "w": n_train}
        return sum(per_step[s] + n_dev for s in self.steps())

    def dry_run_lines(self, target: Target, trainset: Sequence[Example]) -> list[str]:
        trainings = self.steps().count("w")
        lines = training_estimate(target, trainset, self)
        if trainings > 1:
            lines.append(f"  ({trainings} training runs: the estimate is for each)")
        return lines
