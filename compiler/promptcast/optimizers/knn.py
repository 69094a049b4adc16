"""`knn`: each call shows the k training examples nearest to it (DSPy's KNNFewShot, without
an embedding model).

DSPy's KNNFewShot embeds the training set with a user-supplied vectorizer (an embedding model
the program then needs at run time) and, for every call, bootstraps demos from the k nearest
examples -- LM calls inside every production call. Here the nearest examples *are* the demos:
the pool (every usable training example, its labeled outputs as the demo) is baked into the
generated module as data and ranked per call by BM25 over the inputs
(`promptcast_runtime.nearest`), stdlib only, with no LM call and no service at run time.

A reasoning step's pool needs reasoning (a reasoning-less demo teaches the step to stop
reasoning, `rationalize`): with `reasoning="complete"` (default) its pool is the training
examples rationalized -- one LM call per example, dropped when the model does not reach the
label. A step with no labels in the data (an inner step of a program) keeps its zero-shot state.

Size: the pool holds at most `max_pool` examples (default 1,000; a seeded sample when the
training set is larger). Each demo is its fields as literals, so a 1,000-question TREC pool adds
~0.1 MB to the generated module; the BM25 index is built on the first call, in milliseconds.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import ClassVar

from ..ir import Demo
from .base import OneCandidateOptimizer, OptimizationError, Search, States
from .bootstrap import check_reasoning_policy
from .demos import labeled_demo
from .rationalize import rationalize, reasoning_steps


@dataclass
class KNNFewShot(OneCandidateOptimizer):
    """Per-call nearest training examples as demos (see module doc)."""

    name: ClassVar[str] = "knn"
    k: int = 3
    max_pool: int = 1000
    reasoning: str = "complete"
    """How a reasoning step's pool is filled: "complete" (rationalized) or "dspy" (labels)."""

    def __post_init__(self) -> None:
        check_reasoning_policy(self.reasoning)
        if self.k < 1 or self.k > 64:
            raise OptimizationError(f"knn k={self.k}: expected 1 to 64")
        if self.max_pool < 1:
            raise OptimizationError(f"knn max_pool={self.max_pool}: expected 1 or more")

    def propose(self, search: Search) -> None:
        self.settle(search, f"knn k={self.k}", self.states(search))

    def states(self, search: Search) -> States:
        """The base states with each labeled step's pool and k."""
        train = list(search.task.trainset)
        if len(train) > self.max_pool:
            train = random.Random(search.task.seed).sample(train, self.max_pool)
            search.notes.append(f"knn: pool sampled to {self.max_pool} of {len(search.task.trainset)}")
        reasoners = reasoning_steps(search.functions) if self.reasoning == "complete" else frozenset()
        states = dict(search.base_states)
        for qualname, signature in search.functions.items():
            pool: list[Demo]
            if qualname in reasoners:
                pool = rationalize(search, qualname, train, search.base_states, len(train), "knn")
            else:
                pool = [d for ex in train if (d := labeled_demo(signature, ex)) is not None]
            if pool:
                states[qualname] = dataclasses.replace(
                    states[qualname], demos=(), nearest_k=self.k, demo_pool=tuple(pool)
                )
            search.notes.append(f"knn: {signature.name} draws {self.k} of {len(pool)} demos per call")
        return states

    def estimate(self, n_train: int, n_dev: int) -> int:
        rationalized = min(n_train, self.max_pool) if self.reasoning == "complete" else 0
        return rationalized + self.dev_runs(n_dev)
