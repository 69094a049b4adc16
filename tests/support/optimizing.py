"""Helpers shared by the optimizer tests: import the fixture package, run an optimizer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from promptcast.optimizers import OptimizationResult, OptimizationTask, make_optimizer, optimize

from .scripted_lm import QUESTIONS, ScriptedLM, examples

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

QS = list(QUESTIONS)
TRAIN, DEV = QS[:8], QS[8:]


def steps() -> Any:
    import optpkg.steps

    return optpkg.steps


def run(
    target: Any,
    optimizer: str,
    lm: ScriptedLM | None = None,
    *,
    train: list[str] = TRAIN,
    dev: list[str] = DEV,
    threads: int = 4,
    seed: int = 0,
    max_calls: int | None = None,
    **args: Any,
) -> tuple[OptimizationResult, ScriptedLM]:
    lm = lm or ScriptedLM(QUESTIONS)
    task = OptimizationTask(
        target,
        examples(train),
        examples(dev),
        "exact_match",
        lm,
        threads=threads,
        seed=seed,
        max_calls=max_calls,
    )
    return optimize(task, make_optimizer(optimizer, args)), lm
