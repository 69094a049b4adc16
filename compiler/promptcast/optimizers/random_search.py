"""`random_search`: DSPy's BootstrapFewShotWithRandomSearch.

Candidates, as in `dspy/teleprompt/random_search.py`: seed -3 zero-shot, -2 labeled demos only,
-1 bootstrap over the training set as given, then seeds 0..N-1: bootstrap over the training set
shuffled by `Random(seed)` with `Random(seed).randint(1, max_bootstrapped_demos)` bootstrapped
demos. Each is scored on the dev set -- raced by default (`racing`): every candidate is built,
then successive halving scores them all on 1/8 of dev (at least 5 rows), keeps the better half
on twice the rows, and so on, the last ones on all of dev (`halving=false`, and any run with a
budget: one by one, each stopped once it is very probably worse than the best so far);
`racing=false` scores every candidate fully, as DSPy does. The objective picks the
winner (a tie: the cheaper state). Candidate seeds are offset by the run's `--seed` (0
reproduces DSPy's candidates).

Each distinct candidate is scored once (zero-shot is the "before" score already), and the
bootstrap teacher's calls overlap between candidates, so a warm cache makes reruns free.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from .base import Optimizer, Search, States
from .bootstrap import bootstrap_states, check_reasoning_policy
from .demos import labeled_demos


@dataclass
class RandomSearch(Optimizer):
    """Best of zero-shot, labeled, bootstrap and `num_candidates` random bootstraps."""

    name: ClassVar[str] = "random_search"
    num_candidates: int = 16
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    stratify: bool = False
    metric_threshold: float | None = None
    stop_at_score: float | None = None
    reasoning: str = "complete"
    """How a reasoning step's demos are filled (`rationalize`): "complete" or "dspy"."""
    racing: bool = True
    """Race the candidates on dev instead of scoring each on all of it; the winner is always
    scored on all of dev."""
    halving: bool = True
    """With racing: build every candidate first, then successive halving over the pool
    (`Search.halve`); false: score them one by one, each stopped once it is very probably worse
    than the best so far (`Search.score(race=True)`; also what `stop_at_score` and a run with
    `--max-calls`/`--max-usd` use)."""

    def __post_init__(self) -> None:
        check_reasoning_policy(self.reasoning)

    def propose(self, search: Search) -> None:
        budget = search.task.max_calls is not None or search.task.max_usd is not None
        if self.racing and self.halving and self.stop_at_score is None and not budget:
            # Under a budget, one by one: halving scores nothing fully until its last rung, and
            # a budget stop keeps only what was fully scored.
            pool = [self.candidate(search, seed) for seed in range(-3, self.num_candidates)]
            search.halve(pool)
            return
        for seed in range(-3, self.num_candidates):
            label, states = self.candidate(search, seed)
            score = search.score(label, states, race=self.racing)
            if not search.history[-1].complete:
                continue  # stopped by racing: below the best, so below any stop_at_score hit
            if self.stop_at_score is not None and score >= self.stop_at_score:
                search.notes.append(f"stopped at {label}: score {score:.3f} >= stop_at_score")
                return

    def candidate(self, search: Search, seed: int) -> tuple[str, States]:
        """DSPy's candidate `seed`: -3 zero-shot, -2 labeled, -1 bootstrap, >= 0 shuffled.

        Also MIPROv2's demo-set candidates (DSPy builds both with `create_n_fewshot_demo_sets`).
        """
        trainset = list(search.task.trainset)
        if seed == -3:
            return "zero-shot", dict(search.base_states)
        if seed == -2:
            rng = random.Random(search.task.seed)
            demos = labeled_demos(search.functions, trainset, self.max_labeled_demos, rng)
            return f"labeled k={self.max_labeled_demos}", search.with_demos(demos)
        size = self.max_bootstrapped_demos
        label = "bootstrap"
        if seed >= 0:
            offset = seed + search.task.seed
            random.Random(offset).shuffle(trainset)
            low = min(1, self.max_bootstrapped_demos)
            size = random.Random(offset).randint(low, self.max_bootstrapped_demos)
            label = f"seed {seed}: bootstrap {size}"
        states = bootstrap_states(
            search,
            trainset,
            max_bootstrapped=size,
            max_labeled=self.max_labeled_demos,
            max_rounds=self.max_rounds,
            threshold=self.metric_threshold,
            label=label,
            stratify=self.stratify,
            reasoning=self.reasoning,
        )
        return label, states

    def estimate(self, n_train: int, n_dev: int) -> int:
        bootstraps = self.num_candidates + 1
        # The labeled-only candidate's dev pass, then each bootstrap: its teacher runs and its
        # dev pass. The zero-shot candidate is the score `optimize` already took.
        return n_dev + bootstraps * (n_train * max(1, self.max_rounds) + n_dev)
