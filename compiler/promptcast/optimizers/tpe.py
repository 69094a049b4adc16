"""A Tree-structured Parzen Estimator over categorical parameters (what MIPROv2 asks optuna for).

Why our own: MIPROv2's search space is a handful of categorical choices (an instruction and a
demo set per LM function), and optuna's TPE on such a space reduces to a few lines: after
`n_startup` random trials, split the finished trials into the best `gamma` fraction ("good")
and the rest; for each parameter, weight each choice by (good count + 1) / (bad count + 1)
with add-one smoothing over both densities, draw `n_ei_candidates` configurations from the good
density and keep the one with the highest l(x)/g(x). Parameters are modelled independently
(optuna's default `multivariate=False`). Seeded: the same trials give the same suggestions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence


class CategoricalTPE:
    def __init__(
        self,
        space: Mapping[str, int],
        seed: int = 0,
        *,
        n_startup: int = 10,
        gamma: float = 0.25,
        n_ei_candidates: int = 24,
    ) -> None:
        """`space`: parameter name -> number of choices (0..n-1)."""
        self.space = dict(space)
        self.rng = random.Random(seed)
        self.n_startup = n_startup
        self.gamma = gamma
        self.n_ei_candidates = n_ei_candidates
        self.trials: list[tuple[dict[str, int], float]] = []

    def tell(self, params: Mapping[str, int], score: float) -> None:
        self.trials.append((dict(params), score))

    def ask(self) -> dict[str, int]:
        if len(self.trials) < self.n_startup:
            return {name: self.rng.randrange(n) for name, n in self.space.items()}
        ranked = sorted(self.trials, key=lambda t: t[1], reverse=True)
        n_good = max(1, math.ceil(self.gamma * len(ranked)))
        good, bad = ranked[:n_good], ranked[n_good:]
        choice: dict[str, int] = {}
        for name, n in self.space.items():
            l = _density([p[name] for p, _ in good], n)  # noqa: E741 -- TPE's l(x)
            g = _density([p[name] for p, _ in bad], n)
            draws = self.rng.choices(range(n), weights=l, k=self.n_ei_candidates)
            choice[name] = max(draws, key=lambda x: (l[x] / g[x], -x))
        return choice


def _density(values: Sequence[int], n: int) -> list[float]:
    counts = [1.0] * n  # add-one prior: every choice stays possible
    for value in values:
        counts[value] += 1
    total = sum(counts)
    return [c / total for c in counts]
