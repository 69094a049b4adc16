"""`labeled`: k labeled training examples as every function's demos (DSPy's LabeledFewShot)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from .base import OneCandidateOptimizer, Search
from .demos import labeled_demos


@dataclass
class LabeledFewShot(OneCandidateOptimizer):
    """No teacher, no traces: a seeded sample of `k` examples with their expected outputs.

    The cheapest optimizer (it only scores the result; with `dev_score=False` not even that:
    no LM call at all) and the baseline the others must beat.
    """

    name: ClassVar[str] = "labeled"
    k: int = 16

    def propose(self, search: Search) -> None:
        rng = random.Random(search.task.seed)
        demos = labeled_demos(search.functions, search.task.trainset, self.k, rng)
        self.settle(search, f"labeled k={self.k}", search.with_demos(demos))

    def estimate(self, n_train: int, n_dev: int) -> int:
        return self.dev_runs(n_dev)
