"""`bootstrap`: DSPy's BootstrapFewShot, with the teacher run in parallel.

The semantics follow `dspy/teleprompt/bootstrap.py`:

1. the teacher is the program with labeled demos (LabeledFewShot, k = `max_labeled_demos`),
   each example's own demo removed from the teacher's prompt while that example runs;
2. training examples run in order until `max_bootstrapped_demos` of them pass the metric
   (`metric_threshold`, else any non-zero score); a failing example may be retried
   `max_rounds - 1` times at temperature 0.7 + 0.001 * round;
3. every function traced in a passing run gets that call as a demo (inputs + all outputs,
   reasoning included; one call per function per example, DSPy's 50/50 rule);
4. each function's demos are its first `max_bootstrapped_demos` traces, topped up with labeled
   examples sampled from the training examples that did not bootstrap, up to
   `max_labeled_demos` in total.

Unlike DSPy's sequential loop, examples run in waves on the thread pool. A wave holds at most
as many examples as demos are still missing, so it never runs an example DSPy would have
skipped: the same examples run, the same demos come out, in less wall time.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..evaluate.data import Example
from ..ir import Demo, FunctionState
from .base import Optimizer, Search, States, TracedRun
from .demos import labeled_demo, labeled_demos, pick_one, trace_demo


@dataclass
class BootstrapFewShot(Optimizer):
    """Demos from the program's own successful runs (see module doc); DSPy's defaults."""

    name: ClassVar[str] = "bootstrap"
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    metric_threshold: float | None = None

    def propose(self, search: Search) -> None:
        states = bootstrap_states(
            search,
            list(search.task.trainset),
            max_bootstrapped=self.max_bootstrapped_demos,
            max_labeled=self.max_labeled_demos,
            max_rounds=self.max_rounds,
            threshold=self.metric_threshold,
            label="bootstrap",
        )
        search.score("bootstrap", states)

    def estimate(self, n_train: int, n_dev: int) -> int:
        return n_train * max(1, self.max_rounds) + n_dev


def bootstrap_states(
    search: Search,
    trainset: Sequence[Example],
    *,
    max_bootstrapped: int,
    max_labeled: int,
    max_rounds: int,
    threshold: float | None,
    label: str,
) -> States:
    """One BootstrapFewShot compile over `trainset` (in this order): the student's states."""
    seed = search.task.seed
    teacher = search.with_demos(
        labeled_demos(search.functions, trainset, max_labeled, random.Random(seed))
        if max_labeled
        else {}
    )
    traces: dict[str, list[Demo]] = {q: [] for q in search.functions}
    bootstrapped: set[int] = set()
    next_index = 0
    while len(bootstrapped) < max_bootstrapped and next_index < len(trainset):
        wave_size = min(search.task.threads, max_bootstrapped - len(bootstrapped))
        wave = list(range(next_index, min(len(trainset), next_index + wave_size)))
        next_index = wave[-1] + 1
        pending = wave
        passed: dict[int, TracedRun] = {}
        for round_index in range(max(1, max_rounds)):
            if not pending:
                break
            items = [
                (trainset[i], _teacher_for(search, teacher, trainset[i], round_index))
                for i in pending
            ]
            runs = search.trace(items, f"{label} round {round_index + 1}")
            for i, run in zip(pending, runs, strict=True):
                if _passes(run, threshold):
                    passed[i] = run
            pending = [i for i in pending if i not in passed]
        for i in sorted(passed):
            bootstrapped.add(i)
            by_function: dict[str, list[Demo]] = {}
            for record in passed[i].records:
                if record.qualname in traces:
                    by_function.setdefault(record.qualname, []).append(trace_demo(record))
            for qualname, demos in by_function.items():
                traces[qualname].append(pick_one(demos))
    search.notes.append(
        f"{label}: {len(bootstrapped)} of {next_index} training examples bootstrapped"
    )
    validation = [ex for i, ex in enumerate(trainset) if i not in bootstrapped]
    random.Random(seed).shuffle(validation)
    rng = random.Random(seed)
    raw: list[Example] = validation
    student: dict[str, tuple[Demo, ...]] = {}
    for qualname in sorted(search.functions):
        augmented = traces[qualname][:max_bootstrapped]
        size = max(0, min(max_labeled - len(augmented), len(raw)))
        raw = rng.sample(raw, size)  # DSPy samples each function's labels from the previous sample
        labeled = (labeled_demo(search.functions[qualname], ex) for ex in raw)
        student[qualname] = (*augmented, *(d for d in labeled if d is not None))
    return search.with_demos(student)


def _teacher_for(
    search: Search, teacher: States, example: Example, round_index: int
) -> dict[str, FunctionState]:
    """The teacher's states for one example: without that example's own demo; hotter retries."""
    states: dict[str, FunctionState] = {}
    for qualname, state in teacher.items():
        own = labeled_demo(search.functions[qualname], example)
        demos = tuple(d for d in state.demos if d != own)
        params: dict[str, Any] = dict(state.lm_params)
        if round_index > 0:
            params["temperature"] = 0.7 + 0.001 * round_index
        states[qualname] = dataclasses.replace(state, demos=demos, lm_params=params)
    return states


def _passes(run: TracedRun, threshold: float | None) -> bool:
    if run.error is not None or run.score is None:
        return False
    if threshold:
        return run.score.value >= threshold
    return run.score.value > 0
