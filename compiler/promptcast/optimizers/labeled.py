"""`labeled`: k labeled training examples as every function's demos (DSPy's LabeledFewShot)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from .base import Optimizer, Search
from .demos import labeled_demos


@dataclass
class LabeledFewShot(Optimizer):
    """No teacher, no traces: a seeded sample of `k` examples with their expected outputs.

    The cheapest optimizer (it only scores the result; with `dev_score=False` not even that:
    no LM call at all) and the baseline the others must beat.
    """

    name: ClassVar[str] = "labeled"
    k: int = 16
    dev_score: bool = True

    def propose(self, search: Search) -> None:
        rng = random.Random(search.task.seed)
        demos = labeled_demos(search.functions, search.task.trainset, self.k, rng)
        label, states = f"labeled k={self.k}", search.with_demos(demos)
        if self.dev_score:
            search.score(label, states)
        else:
            search.keep(label, states)

    def estimate(self, n_train: int, n_dev: int) -> int:
        return n_dev if self.dev_score else 0

    def scores_dev(self) -> bool:
        return self.dev_score
