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

One deliberate departure, on by default (`stratify=False` restores DSPy's choice exactly): for a
function whose outputs include a label (Literal, Enum, bool), the first passing traces are
mostly the labels the model already over-predicts -- qwen0.5b on TREC bootstrapped ENTY, ENTY,
DESC, ENTY and then answered ENTY to most test questions. With `stratify`, training examples keep
running until each such function has traces of `max_bootstrapped_demos` different labels (or as
many as its label set has), and its demos take the first trace of each label, in training order,
before any label repeats. Functions without a label output keep the first traces, as DSPy does.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ..evaluate.data import Example
from ..ir import Demo, FunctionState, Signature, canonical_json
from .base import Optimizer, Search, States, TracedRun
from .demos import labeled_demo, labeled_demos, pick_one, trace_demo

_LABEL_KINDS: Final = frozenset({"literal", "enum", "bool"})


@dataclass
class BootstrapFewShot(Optimizer):
    """Demos from the program's own successful runs (see module doc); DSPy's defaults."""

    name: ClassVar[str] = "bootstrap"
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    metric_threshold: float | None = None
    stratify: bool = True

    def propose(self, search: Search) -> None:
        states = bootstrap_states(
            search,
            list(search.task.trainset),
            max_bootstrapped=self.max_bootstrapped_demos,
            max_labeled=self.max_labeled_demos,
            max_rounds=self.max_rounds,
            threshold=self.metric_threshold,
            label="bootstrap",
            stratify=self.stratify,
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
    stratify: bool = False,
) -> States:
    """One BootstrapFewShot compile over `trainset` (in this order): the student's states."""
    seed = search.task.seed
    teacher = search.with_demos(
        labeled_demos(search.functions, trainset, max_labeled, random.Random(seed))
        if max_labeled
        else {}
    )
    wanted = {
        qualname: _labels_wanted(function.signature, max_bootstrapped) if stratify else 0
        for qualname, function in search.functions.items()
    }
    traces: dict[str, list[tuple[int, Demo]]] = {q: [] for q in search.functions}
    passed_count = 0
    next_index = 0

    def missing() -> int:
        """Examples still needed at least: demos short of the count, or labels short of variety.

        Each passing example adds at most one label, so a wave this size never runs an example
        the sequential loop would have skipped.
        """
        short = max_bootstrapped - passed_count
        for qualname, labels in wanted.items():
            seen = {_label_of(search.functions[qualname].signature, d) for _, d in traces[qualname]}
            short = max(short, labels - len(seen))
        return short

    while missing() > 0 and next_index < len(trainset):
        wave_size = min(search.task.threads, missing())
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
            passed_count += 1
            by_function: dict[str, list[Demo]] = {}
            for record in passed[i].records:
                if record.qualname in traces:
                    by_function.setdefault(record.qualname, []).append(trace_demo(record))
            for qualname, demos in by_function.items():
                traces[qualname].append((i, pick_one(demos)))
    chosen = {
        qualname: _choose(search.functions[qualname].signature, found, max_bootstrapped, stratify)
        for qualname, found in traces.items()
    }
    used = {i for picks in chosen.values() for i, _ in picks}
    search.notes.append(
        f"{label}: {passed_count} of {next_index} training examples passed, "
        f"{len(used)} used as demos"
    )
    validation = [ex for i, ex in enumerate(trainset) if i not in used]
    random.Random(seed).shuffle(validation)
    rng = random.Random(seed)
    raw: list[Example] = validation
    student: dict[str, tuple[Demo, ...]] = {}
    for qualname in sorted(search.functions):
        augmented = [demo for _, demo in chosen[qualname]]
        size = max(0, min(max_labeled - len(augmented), len(raw)))
        raw = rng.sample(raw, size)  # DSPy samples each function's labels from the previous sample
        labeled = (labeled_demo(search.functions[qualname], ex) for ex in raw)
        student[qualname] = (*augmented, *(d for d in labeled if d is not None))
    return search.with_demos(student)


def _label_fields(signature: Signature) -> tuple[str, ...]:
    """The outputs that name a class from a fixed set: the fields stratification balances."""
    return tuple(f.name for f in signature.outputs if f.type.kind in _LABEL_KINDS)


def _labels_wanted(signature: Signature, max_bootstrapped: int) -> int:
    """How many different labels the demos should show: 0 for a function without a label."""
    fields = [f for f in signature.outputs if f.type.kind in _LABEL_KINDS]
    if not fields:
        return 0
    combinations = 1
    for spec in fields:
        combinations *= len(spec.type.values) if spec.type.kind != "bool" else 2
    return min(max_bootstrapped, combinations)


def _label_of(signature: Signature, demo: Demo) -> str:
    """The demo's label values as one comparable key."""
    return canonical_json([demo.get(name) for name in _label_fields(signature)])


def _choose(
    signature: Signature, found: list[tuple[int, Demo]], k: int, stratify: bool
) -> list[tuple[int, Demo]]:
    """`k` of the traces in training order; with `stratify`, each label's first trace first."""
    if not stratify or not _label_fields(signature):
        return found[:k]
    firsts: list[tuple[int, Demo]] = []
    seen: set[str] = set()
    for item in found:
        key = _label_of(signature, item[1])
        if key not in seen:
            seen.add(key)
            firsts.append(item)
    rest = [item for item in found if item not in firsts]
    picked = (firsts + rest)[:k]
    return sorted(picked, key=lambda item: item[0])


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
