"""The one interface every optimizer sits behind, and the machinery all of them share.

An optimizer only *proposes* candidate states (qualname -> FunctionState) and asks
`Search.score` to score each on the dev set (raced, if it asks: weak candidates stop after a few
rows); the task's objective picks the winner among the fully scored ones -- by default the
highest score, a tie to the state that costs fewer tokens per call (`selection`). Everything else
lives here so each optimizer module holds nothing but its search logic:

- running the user's program with a candidate, through the engine's one interface to it
  (`engine.program.ProgramEngine`: run these states on this input, get the output and the
  trace of every step call) -- optimizers never touch the decorators or the development
  context, and see each step as its `ir.Signature`;
- discovering which LM steps a `@pc.program` calls, by tracing it on training examples;
- the run's one call budget (`max_calls`): when it is spent, `SearchStopped` unwinds the search
  and `optimize` returns the best candidate that was *fully* scored;
- accounting that does not depend on the cache: LM requests and tokens are counted on every
  request, cached or paid, so a rerun with a warm cache records the same numbers in the lock.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from promptcast_runtime import LM, LMError
from promptcast_runtime.kinds import AUTO_ADAPTER

from ..engine.budget import BudgetExhausted, LMBudget, UsageSnapshot
from ..engine.metering import CountingLM, with_budget
from ..engine.program import ProgramEngine, RunFailed, StepCall
from ..engine.runner import DEFAULT_THREADS, ItemError, Progress, Skipped, run_parallel
from ..errors import PromptcastError
from ..evaluate.data import Example
from ..evaluate.evaluate import EvalReport, evaluate
from ..evaluate.metrics import Metric, MetricFn, Score, get_metric
from ..ir import AUTO_CHOICES, FunctionState, Signature, canonical_json
from .capabilities import auto_protocol_steps, choose_protocols, settle_endpoint
from .selection import Objective, Scored, choose, hopeless, interval, separation, stages

States = dict[str, FunctionState]
Target = Any
"""The program an optimizer works on: an LM function or a `@pc.program` (the engine runs it)."""

DISCOVERY_EXAMPLES = 3
"""How many training examples a program is traced on to find the LM functions it calls."""


class OptimizationError(PromptcastError):
    """The optimization cannot run (no LM function found, the LM is unreachable, bad params)."""


class SearchStopped(Exception):  # noqa: N818 -- an event, like BudgetExhausted
    """The call budget ran out mid-search; carries BudgetExhausted's message."""


@dataclass(frozen=True)
class OptimizationTask:
    """Everything an optimizer needs; `functions` None means "discover them by tracing"."""

    target: Target
    trainset: Sequence[Example]
    devset: Sequence[Example]
    metric: str | Metric | MetricFn
    lm: LM
    functions: Mapping[str, Signature] | None = None
    threads: int = DEFAULT_THREADS
    seed: int = 0
    max_calls: int | None = None
    progress: bool | None = False
    max_usd: float | None = None
    reflection_lm: LM | None = None
    """The LM that proposes/reflects (GEPA); None: the task LM."""
    lm_params: Mapping[str, Any] | None = None
    """The project's sampling parameters (under each decorator's; `[tool.promptcast]`)."""
    run_lm_params: Mapping[str, Any] | None = None
    """This run's `--lm-param` overrides (over everything): scored, then locked."""
    objective: Objective = field(default_factory=Objective)
    """How the winner is chosen among fully scored candidates (`--objective`)."""
    prune_demos: bool = False
    """After the search, try the winner without each of its demos (`--prune-demos`)."""
    lock: Any = None
    """The project's lock (`lockfile.Lock`) when the command has one: `finetune`'s teacher is
    the locked state of each step (zero-shot where it has no entry)."""


@dataclass(frozen=True)
class CandidateRecord:
    """One scored candidate: its label, dev score, and LM requests made so far in the run.

    `dev_examples` is how many dev rows the score is over: all of them, or fewer when racing
    stopped the candidate early (`complete` False: it cannot win). Tokens are the mean per LM
    call over those rows, cached calls included; `interval` is the score's 95% interval.
    """

    label: str
    dev_score: float
    lm_requests: int
    dev_examples: int = 0
    complete: bool = True
    prompt_tokens_per_call: float | None = None
    completion_tokens_per_call: float | None = None
    interval: tuple[float, float] | None = None
    stopped_because: str | None = None
    states: Mapping[str, FunctionState] | None = field(default=None, compare=False, repr=False)
    """The candidate's state per function, for the report (never locked)."""
    tokens_per_example: float | None = None
    """Tokens (prompt + completion) of one program run -- every LM call it makes -- per dev
    row: what one production call costs, and what the objective compares (an ensemble of 3 or a
    ReAct agent makes several LM calls per run)."""

    @property
    def tokens_per_call(self) -> float:
        """Mean tokens of one LM call of this state (prompt + completion)."""
        return (self.prompt_tokens_per_call or 0.0) + (self.completion_tokens_per_call or 0.0)

    @property
    def cost(self) -> float:
        """Tokens per program run (per LM call when the run was not measured per row)."""
        return self.tokens_per_example if self.tokens_per_example is not None else self.tokens_per_call


@dataclass(frozen=True)
class RunUsage:
    """What a run spent.

    `requests` and the token counts include cached requests, so they are the same on a cold and a
    warm cache (the lock records these). `paid` is the engine LM's own reading -- paid calls,
    cache hits, cost -- which does depend on the cache (the CLI prints it, the lock does not).
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    paid: UsageSnapshot = field(default_factory=UsageSnapshot)


@dataclass(frozen=True)
class OptimizationResult:
    """The winning states and how the search got there.

    `dev_score_before` is the score of the unoptimized program (docstrings, no demos);
    `dev_score_after` that of the returned states. `stopped` is set when the budget ended the
    search early; the states are then the best fully scored candidate (zero-shot if none was).
    """

    optimizer: str
    params: dict[str, Any]
    seed: int
    metric: str
    states: States
    dev_score_before: float | None
    dev_score_after: float | None
    best_label: str | None
    history: tuple[CandidateRecord, ...]
    usage: RunUsage
    seconds: float = 0.0
    stopped: str | None = None
    notes: tuple[str, ...] = ()
    functions: dict[str, Signature] = field(default_factory=dict)
    """The steps optimized, as the IR describes them."""
    objective: str = "accuracy"
    """How the winner was chosen (`Objective.describe()`)."""
    training: dict[str, Any] = field(default_factory=dict)
    """Weight optimization (`finetune`): the trained model, its base model, trainer and
    parameters, and the training set's hash and size -- recorded in the lock when set."""


@dataclass(frozen=True)
class TracedRun:
    """One program run on one example: the prediction, its score and every LM call it made."""

    example: Example
    prediction: Any
    score: Score | None
    records: tuple[StepCall, ...]
    error: str | None = None


RACE_CONFIDENCE = 0.95
"""One-sided confidence with which racing calls a candidate worse than the best before stopping
it (`selection.hopeless`)."""


@dataclass
class DevScores:
    """One distinct candidate's dev rows scored so far and the LM calls they took."""

    scores: dict[int, float] = field(default_factory=dict)
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def per_call(self) -> tuple[float | None, float | None]:
        """Mean prompt and completion tokens per LM call (None before any call)."""
        if not self.requests:
            return None, None
        return self.prompt_tokens / self.requests, self.completion_tokens / self.requests

    def tokens_per_example(self) -> float:
        """Tokens (prompt + completion) per dev row scored: one program run's cost."""
        rows = len(self.scores)
        return (self.prompt_tokens + self.completion_tokens) / rows if rows else 0.0


def candidate_key(states: Mapping[str, FunctionState]) -> str:
    """What makes two candidates the same one: their states, as canonical JSON."""
    return canonical_json({q: s.to_json() for q, s in sorted(states.items())})


def run_budget(task: OptimizationTask) -> LMBudget | None:
    """One budget for every LM of the run (task and reflection), or None when unlimited."""
    if task.max_calls is None and task.max_usd is None:
        return None
    return LMBudget(task.max_calls, task.max_usd)


class Search:
    """One optimization run in progress: the shared LM, the functions, the candidates so far."""

    def __init__(self, task: OptimizationTask) -> None:
        if not task.trainset:
            raise OptimizationError("the training set is empty")
        if not task.devset:
            raise OptimizationError("the dev set is empty")
        self.task = task
        self.metric = get_metric(task.metric)
        budget = run_budget(task)
        self.lm = CountingLM(with_budget(task.lm, budget))
        # GEPA's reflection model, when it is another model: the same budget, its own meter.
        self.reflection_lm = (
            CountingLM(with_budget(task.reflection_lm, budget))
            if task.reflection_lm is not None
            else None
        )
        self._meters = [self.lm] + ([self.reflection_lm] if self.reflection_lm is not None else [])
        self.engine = ProgramEngine(task.target, self.lm, task.run_lm_params)
        self.functions: dict[str, Signature] = {}
        self.base_states: States = {}
        self.history: list[CandidateRecord] = []
        self.best: tuple[float, str, States] | None = None
        """The objective's pick among fully scored candidates: (dev score, label, states)."""
        self.unscored: tuple[str, States] | None = None  # `keep`: a result taken unscored
        self.notes: list[str] = []
        self.training: dict[str, Any] = {}  # set by a weight optimizer (`finetune`)
        self._memo: dict[str, DevScores] = {}  # candidate -> its dev rows scored so far
        self._complete: list[tuple[Scored, str, States, str]] = []  # (scored, label, states, key)
        self._order = list(range(len(task.devset)))  # the rows a raced candidate sees first
        random.Random(task.seed).shuffle(self._order)
        self._paid_start = self._paid()

    # --- running the program ------------------------------------------------------------------

    def call(self, inputs: Mapping[str, Any], states: Mapping[str, FunctionState] | None) -> Any:
        """The target's output for `inputs` with these candidate states, through the run's LM."""
        return self.engine.output(inputs, states)

    def trace(
        self,
        items: Sequence[tuple[Example, Mapping[str, FunctionState] | None]],
        description: str,
    ) -> list[TracedRun]:
        """Run each (example, states) pair in parallel, tracing and scoring it.

        A failure (parse error, metric error) is that run's `error`; a spent budget raises
        `SearchStopped` after the batch's completed items are discarded.
        """

        def run_one(item: tuple[Example, Mapping[str, FunctionState] | None]) -> TracedRun:
            example, states = item
            try:
                run = self.engine.run(example.inputs(), states)
            except RunFailed as failed:
                if isinstance(failed.error, BudgetExhausted):
                    raise failed.error from None
                return TracedRun(example, None, None, failed.calls, str(failed))
            try:
                score = self.metric(example, run.output)
            except BudgetExhausted:
                raise
            except Exception as exc:
                return TracedRun(example, None, None, run.calls, f"{type(exc).__name__}: {exc}")
            return TracedRun(example, run.output, score, run.calls)

        progress = Progress(description, self.task.progress, self.lm.snapshot)
        batch = run_parallel(run_one, list(items), self.task.threads, progress)
        if batch.stopped is not None:
            raise SearchStopped(str(batch.stopped))
        runs: list[TracedRun] = []
        for (example, _), outcome in zip(items, batch, strict=True):
            if isinstance(outcome, (ItemError, Skipped)):
                runs.append(TracedRun(example, None, None, (), str(outcome)))
            else:
                runs.append(outcome)
        _raise_if_lm_down([r.error for r in runs])
        return runs

    def evaluate(
        self, states: Mapping[str, FunctionState], examples: Sequence[Example], label: str
    ) -> EvalReport:
        """`evaluate` of the target with `states` (raises SearchStopped if the budget ran out)."""
        report = evaluate(
            lambda **inputs: self.call(inputs, states),
            examples,
            self.metric,
            self.task.threads,
            usage=self.lm,
            progress=self.task.progress,
            description=label,
        )
        if report.stopped:
            raise SearchStopped(report.stopped)
        _raise_if_lm_down([r.error for r in report.results])
        return report

    # --- candidates -----------------------------------------------------------------------------

    def score(
        self,
        label: str,
        states: Mapping[str, FunctionState],
        *,
        record: bool = True,
        race: bool = False,
    ) -> float:
        """The dev score of `states` (each dev row of a distinct candidate is scored once).

        With `race`, the candidate is scored on growing prefixes of dev (a seeded order) and
        stopped once it cannot, or very probably does not, beat the best fully scored candidate
        (`selection.hopeless`); its score is then over the rows it saw, and it cannot win.
        With `record`, it joins the history; a fully scored one may become the best, as the
        task's objective chooses (by default the highest score, a tie to the cheaper state).
        """
        key = candidate_key(states)
        total = len(self.task.devset)
        reference = self._reference(key) if race else None
        stopped: str | None = None
        if reference is None:
            self._score_rows(key, label, states, range(total))
        else:
            ref_scores, ref_cost = reference
            for size in stages(total):
                rows = self._order[:size]
                dev = self._score_rows(key, label, states, rows)
                if size == total:
                    break
                allowance = self.task.objective.allowance(ref_cost, dev.tokens_per_example())
                stopped = hopeless(
                    [dev.scores[i] for i in rows],
                    [ref_scores[i] for i in rows],
                    sum(ref_scores.values()),
                    total,
                    allowance,
                    RACE_CONFIDENCE,
                )
                if stopped is not None:
                    break
        if record:
            return self._record(label, states, key, stopped)
        values = list(self._memo[key].scores.values())
        return sum(values) / len(values) if values else 0.0  # EvalReport.score, from the memo

    def _record(
        self, label: str, states: Mapping[str, FunctionState], key: str, stopped: str | None
    ) -> float:
        """The candidate joins the history (and, fully scored, the choice); its score so far."""
        dev = self._memo[key]
        values = list(dev.scores.values())
        value = sum(values) / len(values) if values else 0.0
        complete = len(dev.scores) == len(self.task.devset)
        prompt, completion = dev.per_call()
        self.history.append(
            CandidateRecord(
                label,
                value,
                self.usage().requests,
                dev_examples=len(values),
                complete=complete,
                prompt_tokens_per_call=prompt,
                completion_tokens_per_call=completion,
                interval=interval(values),
                stopped_because=stopped,
                states=dict(states),
                tokens_per_example=dev.tokens_per_example() if values else None,
            )
        )
        if complete:
            self._add_complete(label, states, key, value, dev.tokens_per_example())
        return value

    def halve(self, candidates: Sequence[tuple[str, Mapping[str, FunctionState]]]) -> None:
        """Successive halving over a pool of candidates (`selection.stages` rows per rung).

        Every candidate still in the race is scored on the rung's rows (a seeded order of dev);
        the better half (by mean over those rows; a tie to the cheaper, then the earlier) goes
        on, the rest stop there and are recorded as raced out; the last ones are scored on all of
        dev and the objective picks among every fully scored candidate. Deterministic: the same
        seed, pool and cache give the same rungs and the same winner.
        """
        keys = [candidate_key(states) for _, states in candidates]
        total = len(self.task.devset)
        alive = list(range(len(candidates)))
        for size in stages(total):
            rows = self._order[:size]
            for i in alive:
                label, states = candidates[i]
                self._score_rows(keys[i], label, states, rows)
            if size == total or len(alive) == 1:
                break
            keep = max(1, math.ceil(len(alive) / 2))

            def rank(i: int, rows: list[int] = rows) -> tuple[float, float, int]:
                dev = self._memo[keys[i]]
                return (-sum(dev.scores[r] for r in rows) / len(rows), dev.tokens_per_example(), i)

            ranked = sorted(alive, key=rank)
            for i in sorted(ranked[keep:]):
                label, states = candidates[i]
                why = f"successive halving: not in the better {keep} of {len(alive)} on {size} rows"
                self._record(label, states, keys[i], why)
            alive = sorted(ranked[:keep])
        for i in alive:
            label, states = candidates[i]
            self._score_rows(keys[i], label, states, range(total))
            self._record(label, states, keys[i], None)

    def _add_complete(
        self, label: str, states: Mapping[str, FunctionState], key: str, value: float, cost: float
    ) -> None:
        """A fully scored candidate joins the choice; the objective re-picks the best."""
        scored = Scored(len(self._complete), value, cost)
        self._complete.append((scored, label, dict(states), key))
        picked = choose(self.task.objective, [entry[0] for entry in self._complete])
        assert picked is not None
        _, best_label, best_states, _ = self._complete[picked.index]
        self.best = (picked.score, best_label, best_states)

    def _reference(self, key: str) -> tuple[dict[int, float], float] | None:
        """What a raced candidate must beat: the best-scoring complete candidate (a tie: the
        cheaper), as per-row scores and tokens per call; None when there is none yet."""
        found = self._best_other(key)
        if found is None:
            return None
        scored, *_, ref_key = found
        return self._memo[ref_key].scores, scored.cost

    def _best_other(self, key: str) -> tuple[Scored, str, States, str] | None:
        """The best-scoring complete candidate other than `key` (a tie: the cheaper, then
        the earlier): the racing reference and the runner-up of the separation note."""
        others = [entry for entry in self._complete if entry[3] != key]
        if not others:
            return None
        return max(others, key=lambda e: (e[0].score, -e[0].cost, -e[0].index))

    def complete_candidates(self) -> list[tuple[str, States, float, float]]:
        """Every fully scored candidate so far: (label, states, dev score, tokens per call)."""
        return [(label, states, sc.score, sc.cost) for sc, label, states, _ in self._complete]

    def separation_note(self) -> str | None:
        """Whether dev separates the winner from the best other fully scored candidate."""
        if self.best is None or len(self._complete) < 2:
            return None
        best_key = candidate_key(self.best[2])
        runner = self._best_other(best_key)
        if runner is None:
            return None
        rows = range(len(self.task.devset))
        found = separation(
            [self._memo[best_key].scores[i] for i in rows],
            [self._memo[runner[3]].scores[i] for i in rows],
        )
        if found.separated:
            return None
        return found.describe(self.best[1], runner[1])

    def keep(self, label: str, states: Mapping[str, FunctionState]) -> None:
        """Take `states` as the result without a dev score (an optimizer whose one candidate
        needs no choosing, asked to spend nothing on dev); a scored candidate still wins."""
        self.unscored = (label, dict(states))
        self.notes.append(f"{label}: kept without scoring it on dev (dev_score=false)")

    def choose_adapters(self) -> None:
        """Settle each `adapter="auto"` function's adapter before the search proper.

        Each choice is scored zero-shot on dev (the other functions as they stand) and the
        better one becomes the function's base state, so every candidate the optimizer then
        builds -- and the lock -- uses it. Both trials join the history; a tie keeps chat.
        """
        for qualname, signature in self.functions.items():
            if signature.adapter != AUTO_ADAPTER:
                continue
            scores: dict[str, float] = {}
            for adapter in AUTO_CHOICES:
                state = dataclasses.replace(self.base_states[qualname], adapter=adapter)
                label = f"zero-shot, {signature.name} adapter={adapter}"
                scores[adapter] = self.score(label, {**self.base_states, qualname: state})
            chosen = max(AUTO_CHOICES, key=lambda a: scores[a])
            self.base_states[qualname] = dataclasses.replace(
                self.base_states[qualname], adapter=chosen
            )
            tried = ", ".join(f"{a} {scores[a]:.3f}" for a in AUTO_CHOICES)
            self.notes.append(f"adapter=auto for {signature.name}: {tried} -> {chosen}")

    def score_each(self, label: str, states: Mapping[str, FunctionState]) -> list[float]:
        """Per-dev-example scores of `states` (for Pareto fronts); recorded as `score` does."""
        self.score(label, states)
        key = candidate_key(states)
        scores = self._memo[key].scores
        return [scores[i] for i in range(len(self.task.devset))]

    def _score_rows(
        self, key: str, label: str, states: Mapping[str, FunctionState], rows: Iterable[int]
    ) -> DevScores:
        """Score the dev `rows` this candidate has not been scored on yet; its memo entry.

        The run's meters are read around the evaluation, so the candidate's tokens per call
        are its own (candidates are scored one at a time; cached calls count, as everywhere).
        """
        dev = self._memo.setdefault(key, DevScores())
        missing = [i for i in rows if i not in dev.scores]
        if not missing:
            return dev
        before = (self.lm.requests, self.lm.prompt_tokens, self.lm.completion_tokens)
        report = self.evaluate(states, [self.task.devset[i] for i in missing], label)
        dev.requests += self.lm.requests - before[0]
        dev.prompt_tokens += self.lm.prompt_tokens - before[1]
        dev.completion_tokens += self.lm.completion_tokens - before[2]
        for i, result in zip(missing, report.results, strict=True):
            dev.scores[i] = result.score
        return dev

    def with_demos(self, demos: Mapping[str, Sequence[Mapping[str, Any]]]) -> States:
        """The base (zero-shot) states with these demos per function."""
        return {
            q: dataclasses.replace(state, demos=tuple(dict(d) for d in demos.get(q, ())))
            for q, state in self.base_states.items()
        }

    def usage(self) -> RunUsage:
        """What the run spent so far, the reflection model's calls included."""
        return RunUsage(
            requests=sum(m.requests for m in self._meters),
            prompt_tokens=sum(m.prompt_tokens for m in self._meters),
            completion_tokens=sum(m.completion_tokens for m in self._meters),
            paid=self._paid() - self._paid_start,
        )

    def _paid(self) -> UsageSnapshot:
        return sum((m.snapshot() for m in self._meters), UsageSnapshot())

    # --- discovery --------------------------------------------------------------------------------

    def discover(self) -> None:
        """Find the LM steps the target calls; set their zero-shot base states."""
        if self.task.functions is not None:
            functions = dict(self.task.functions)
        else:
            functions = self.engine.steps() or self._traced_functions()
        if not functions:
            raise OptimizationError(f"{self.engine.qualname} calls no LM function")
        self.functions = dict(sorted(functions.items()))
        self.base_states = {
            q: self.engine.zero_shot(q, self.task.lm_params, self.task.run_lm_params)
            for q in self.functions
        }

    def _traced_functions(self) -> dict[str, Signature]:
        examples = list(self.task.trainset[:DISCOVERY_EXAMPLES])
        runs = self.trace([(ex, None) for ex in examples], "tracing")
        found: dict[str, Signature] = {}
        for run in runs:
            for qualname, signature in self.engine.steps_seen(run.records).items():
                found.setdefault(qualname, signature)
        if not found:
            # Every traced run failed before its first successful call: fall back to the LM
            # functions the program's code names (a parse error does not make a step vanish).
            found = self.engine.steps_named()
        if not found:
            errors = "; ".join(sorted({r.error for r in runs if r.error})) or "no errors"
            raise OptimizationError(
                f"{self.engine.qualname} made no LM function call on the first {len(examples)} "
                f"training example(s) ({errors})"
            )
        return found


def prune_demos(search: Search) -> None:
    """Drop the winner's demos one at a time (last first) where dropping does not lower its
    dev score: each pruned state is scored (raced) like any candidate, and the objective's
    tie rule -- the cheaper state wins a tie -- is what keeps a pruned one. Greedy: one dev
    pass per demo at most, fewer where racing stops a worse one early."""
    if search.best is None:
        search.notes.append("prune_demos: no scored winner to prune")
        return
    dropped = 0
    for qualname in sorted(search.functions):
        index = len(search.best[2][qualname].demos) - 1
        while index >= 0:
            current = search.best[2]
            state = current[qualname]
            if index >= len(state.demos):
                index -= 1
                continue
            demos = state.demos[:index] + state.demos[index + 1 :]
            pruned = {**current, qualname: dataclasses.replace(state, demos=demos)}
            name = search.functions[qualname].name
            search.score(f"pruned: {name} without demo {index + 1}", pruned, race=True)
            if search.best[2] is not current and search.best[2].get(qualname) == pruned[qualname]:
                dropped += 1
            index -= 1
    search.notes.append(f"prune_demos: dropped {dropped} demo(s) without lowering the dev score")


def _selection_notes(search: Search) -> list[str]:
    """What racing saved and whether dev could tell the winner from the runner-up."""
    notes: list[str] = []
    raced = [c for c in search.history if not c.complete]
    if raced:
        total = len(search.task.devset)
        seen = sum(c.dev_examples for c in raced)
        notes.append(
            f"racing stopped {len(raced)} of {len(search.history)} candidates early: "
            f"{seen} dev rows scored instead of {len(raced) * total}"
        )
    if search.task.objective.kind != "accuracy":
        notes.append(f"objective {search.task.objective.describe()}")
    separation = search.separation_note()
    if separation is not None:
        notes.append(separation)
    return notes


def static_functions(target: Target) -> dict[str, Signature]:
    """The LM steps a target's code names, without running it (for --dry-run and discovery's
    fallback)."""
    engine = ProgramEngine(target, lm=None)
    return engine.steps() or engine.steps_named()


def _raise_if_lm_down(errors: Sequence[str | None]) -> None:
    """Every example failing with an LM transport error means no LM: stop instead of scoring 0."""
    if errors and all(e is not None and e.startswith(LMError.__name__) for e in errors):
        raise OptimizationError(f"every LM call failed; first error: {errors[0]}")


class Optimizer(abc.ABC):
    """An optimizer is a dataclass of its parameters with a `propose` step (see module doc)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def propose(self, search: Search) -> None:
        """Score candidates with `search.score`; the best one becomes the result."""

    @abc.abstractmethod
    def estimate(self, n_train: int, n_dev: int) -> int:
        """An upper bound of program runs `propose` makes (before cache hits), for --dry-run."""

    def dry_run_lines(self, target: Target, trainset: Sequence[Example]) -> list[str]:
        """What else `--dry-run` should say before anything is spent (a trainer's examples,
        tokens, epochs and price); nothing for a prompt optimizer."""
        return []

    def scores_dev(self) -> bool:
        """Whether `optimize` scores the zero-shot program on dev first (the "before" score).

        Optimizers that choose between candidates need dev anyway; one with a single
        candidate (bootstrap, labeled) can skip it, as DSPy's BootstrapFewShot never scores."""
        return True

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


@dataclass
class OneCandidateOptimizer(Optimizer):
    """An optimizer that builds a single candidate (bootstrap, labeled): there is nothing to
    choose, so scoring on dev only reports, and `dev_score=False` skips it -- no zero-shot
    "before" score and no score of the result, as DSPy's BootstrapFewShot never scores."""

    dev_score: bool = True

    def scores_dev(self) -> bool:
        return self.dev_score

    def settle(self, search: Search, label: str, states: Mapping[str, FunctionState]) -> None:
        """Make `states` the result: scored on dev, or kept unscored with `dev_score=False`."""
        if self.dev_score:
            search.score(label, states)
        else:
            search.keep(label, states)

    def dev_runs(self, n_dev: int) -> int:
        """The program runs `settle` spends on dev (for `estimate`)."""
        return n_dev if self.dev_score else 0


def estimate_runs(target: Target, optimizer: Optimizer, n_train: int, n_dev: int) -> int:
    """An upper bound of the program runs `optimize` makes, before cache hits (--dry-run).

    The zero-shot dev score and a json trial per `adapter="auto"` function, then the
    optimizer's own runs.
    """
    functions = static_functions(target)
    auto = sum(1 for signature in functions.values() if signature.adapter == AUTO_ADAPTER)
    auto += auto_protocol_steps(functions)  # a tools trial each
    baseline = 1 if optimizer.scores_dev() else 0
    return n_dev * (baseline + auto) + optimizer.estimate(n_train, n_dev)


def optimize(task: OptimizationTask, optimizer: Optimizer) -> OptimizationResult:
    """Run `optimizer` on `task`: discover functions, score zero-shot, search, keep the best.

    A spent budget never raises: the result keeps the best fully scored candidate and says
    where it stopped (`stopped`).
    """
    start = time.perf_counter()
    search = Search(task)
    before: float | None = None
    stopped: str | None = None
    try:
        search.discover()
        open_protocols = settle_endpoint(search)  # one probe per capability, cached
        if optimizer.scores_dev():
            before = search.score("zero-shot (before)", search.base_states, record=False)
        search.choose_adapters()
        choose_protocols(search, open_protocols)
        optimizer.propose(search)
        if task.prune_demos:
            prune_demos(search)
    except SearchStopped as exc:
        stopped = str(exc)
    search.notes.extend(_selection_notes(search))
    if search.best is not None:
        after: float | None = search.best[0]
        label: str | None = search.best[1]
        states = search.best[2]
    elif search.unscored is not None:
        after, (label, states) = None, search.unscored
    else:
        after, label, states = before, None, dict(search.base_states)
    return OptimizationResult(
        optimizer=optimizer.name,
        params=optimizer.params(),
        seed=task.seed,
        metric=search.metric.name,
        states=states,
        dev_score_before=before,
        dev_score_after=after,
        best_label=label,
        history=tuple(search.history),
        usage=search.usage(),
        seconds=time.perf_counter() - start,
        stopped=stopped,
        notes=tuple(search.notes),
        functions=dict(search.functions),
        objective=task.objective.describe(),
        training=dict(search.training),
    )
