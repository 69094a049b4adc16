"""`simba`: Stochastic Introspective Mini-Batch Ascent (DSPy's `dspy.SIMBA`, 3.4.1).

The loop follows `dspy/teleprompt/simba.py`. Each of `max_steps` steps:

1. takes the next mini-batch of `bsize` training examples (a seeded shuffle, reshuffled when it
   runs out) and runs each example `num_candidates` times, each run with a program drawn from
   the best programs so far (softmax over their mean mini-batch scores, the baseline always
   among them) and sampled hot (temperature 1.0, a distinct seed per sample -- DSPy's
   rollout ids), so the runs of one example differ;
2. ranks the examples by how much their runs' scores vary (max - min, then max, then max -
   mean): where the same program both succeeds and fails is where there is something to learn;
3. for each such example, draws a source program (softmax again), drops some of its demos
   (a Poisson number, more when it holds `max_demos` or more), and applies one strategy at
   random: **append a demo** (the best run's trace of every step, if that run scored above the
   batch's 10th percentile) or **append a rule** (an LM compares the best and the worst run and
   writes advice per step, appended to that step's instructions, if the best is above the 10th
   and the worst below the 90th percentile) -- up to `num_candidates + 1` new programs;
4. scores the new programs on the mini-batch; the best joins the winners; all join the pool.

At the end `num_candidates + 1` winners, evenly spaced over the steps (the baseline first), are
scored on the dev set -- DSPy scores them on the training set; dev is what every promptcast
optimizer selects on -- and the objective picks the result (raced, like random_search).

All calls go through the engine (cached, budgeted, counted); the rule prompt is DSPy's
`OfferFeedback`, asked through the runtime like every optimizer prompt.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from promptcast_runtime import Field, ParseError, Predictor, Signature, to_jsonable

from ..evaluate.data import Example
from ..ir import FunctionState
from .base import OptimizationError, Optimizer, Search, States, TracedRun
from .demos import trace_demo
from .mipro import _source

SAMPLE_TEMPERATURE = 1.0
"""DSPy's resampling temperature (`prepare_models_for_resampling`)."""

ADVICE_LM_PARAMS = {"max_tokens": 1024, "temperature": 0.0}
"""The rule prompt asks for a discussion and a dict of advice: longer than a proposal."""

OFFER_FEEDBACK: Predictor[Any] = Predictor(
    Signature(
        "You will be given two trajectories of an LLM-driven program's execution. Your goal is"
        " to help the program's modules build up experience on how to maximize the reward value"
        " assigned to the program's outputs if it were to receive similar inputs in the future.\n"
        "The module won't see its own history. It will rely on your advice balancing being"
        " concrete and being generalizable.\n"
        "In your advice:\n"
        "- Avoid boilerplate. Offer advice that would change the module's behavior for the"
        " better in the future.\n"
        "- Ensure that advice offered to a module M is specific to that M's specific sub-task,"
        " not the overall program.\n"
        "- Rely on contrasting the behavior of the worse trajectory against the better trajectory"
        " in making recommendations.\n"
        "- Ensure each unique module name appears exactly once as a key in the advice"
        " dictionary.",
        (
            Field("program_code", str, "The code of the program that we are analyzing"),
            Field("modules_defn", str, "The definition of each module in the program, including its I/O"),
            Field("program_inputs", str, "The inputs to the program that we are analyzing"),
            Field("oracle_metadata", str, "Any (hidden) metadata about the training set instance we're analyzing"),
            Field("worse_program_trajectory", str, "The trajectory of the program's execution, showing each module's I/O"),
            Field("worse_program_outputs", str, "The outputs of the program that we are analyzing"),
            Field("worse_reward_value", float, "The reward value assigned to the program's outputs"),
            Field("better_program_trajectory", str, "The trajectory of the program's execution, showing each module's I/O"),
            Field("better_program_outputs", str, "The outputs of the program that we are analyzing"),
            Field("better_reward_value", float, "The reward value assigned to the program's outputs"),
            Field("module_names", list[str], "The names of the modules in the program, for which we seek advice"),
        ),
        (
            Field("discussion", str, "Discussing blame of where each module went wrong, if it did"),
            Field(
                "module_advice",
                dict[str, str],
                "For each module, describe very concretely: If the module receives ${description"
                " of input or patterns therein}, then it should ${description of content,"
                " behavior, or strategies to adopt and/or others to avoid}. Basically, your"
                " advice be such that if the module has access to your tip, it would be much"
                " more likely to act like the successful trajectory rather than the"
                " lower-scoring trajectory.",
            ),
        ),
    ),
    returns="module_advice",
    lm_params=ADVICE_LM_PARAMS,
)  # fmt: skip


@dataclass
class SIMBA(Optimizer):
    """Mini-batch ascent with appended demos or rules (see module doc); DSPy's defaults."""

    name: ClassVar[str] = "simba"
    bsize: int = 32
    num_candidates: int = 6
    max_steps: int = 8
    max_demos: int = 4
    temperature_for_sampling: float = 0.2
    temperature_for_candidates: float = 0.2
    racing: bool = True
    """Race the final dev evaluations (`Search.score(race=True)`)."""

    def propose(self, search: Search) -> None:
        train = list(search.task.trainset)
        if len(train) < self.bsize:
            raise OptimizationError(
                f"simba: the training set has {len(train)} examples, fewer than bsize={self.bsize}"
                " (pass --optimizer-arg bsize=N)"
            )
        run = _Run(self, search, train)
        winners = run.ascend()
        last = len(winners) - 1
        count = self.num_candidates + 1
        picks = [0] * count if last < 1 else [round(i * last / (count - 1)) for i in range(count)]
        for position, index in enumerate(dict.fromkeys(picks)):
            label = "simba: baseline" if index == 0 else f"simba: winner of step {index}"
            search.score(label, winners[index], race=self.racing and position > 0)

    def estimate(self, n_train: int, n_dev: int) -> int:
        per_step = self.bsize * self.num_candidates + (self.num_candidates + 1) * (self.bsize + 1)
        return self.max_steps * per_step + (self.num_candidates + 1) * n_dev


class _Run:
    """One SIMBA optimization: the program pool, its mini-batch scores and the rng streams."""

    def __init__(self, options: SIMBA, search: Search, train: list[Example]) -> None:
        self.options = options
        self.search = search
        self.train = train
        self.rng = random.Random(search.task.seed)
        self.programs: list[States] = [dict(search.base_states)]
        self.scores: list[list[float]] = [[]]
        self.strategies = ("demo", "rule") if options.max_demos > 0 else ("rule",)

    def mean(self, index: int) -> float:
        scores = self.scores[index]
        return sum(scores) / len(scores) if scores else 0.0

    def top(self, k: int) -> list[int]:
        """The k programs with the best mean mini-batch score, the baseline always kept."""
        ranked = sorted(range(len(self.programs)), key=self.mean, reverse=True)[:k]
        if 0 not in ranked and ranked:
            ranked[-1] = 0
        return list(dict.fromkeys(ranked))

    def softmax(self, indices: Sequence[int], temperature: float) -> int:
        weights = [math.exp(self.mean(i) / temperature) for i in indices]
        return self.rng.choices(list(indices), weights=weights, k=1)[0]

    def ascend(self) -> list[States]:
        options, search = self.options, self.search
        order = list(range(len(self.train)))
        self.rng.shuffle(order)
        position = 0
        winners: list[States] = [self.programs[0]]
        for step in range(options.max_steps):
            if position + options.bsize > len(self.train):
                self.rng.shuffle(order)
                position = 0
            batch = [self.train[i] for i in order[position : position + options.bsize]]
            position += options.bsize
            items: list[tuple[Example, States]] = []
            for sample in range(options.num_candidates):
                for example in batch:
                    source = self.softmax(self.top(options.num_candidates), options.temperature_for_sampling)
                    items.append((example, _hot(self.programs[source], sample)))
            runs = search.trace(items, f"simba step {step + 1}: sampling")
            candidates = self._candidates(batch, runs, step)
            if not candidates:
                continue
            evaluated = search.trace(
                [(ex, states) for states in candidates for ex in batch],
                f"simba step {step + 1}: {len(candidates)} candidates",
            )
            means: list[float] = []
            for i, states in enumerate(candidates):
                scores = [_value(r) for r in evaluated[i * len(batch) : (i + 1) * len(batch)]]
                self.programs.append(states)
                self.scores.append(scores)
                means.append(sum(scores) / len(scores))
            winners.append(candidates[means.index(max(means))])
        return winners

    def _candidates(self, batch: list[Example], runs: list[TracedRun], step: int) -> list[States]:
        options = self.options
        size = len(batch)
        all_scores = [_value(r) for r in runs]
        low, high = _percentile(all_scores, 10), _percentile(all_scores, 90)
        buckets: list[tuple[list[TracedRun], tuple[float, float, float]]] = []
        for i in range(size):
            bucket = sorted(runs[i::size], key=_value, reverse=True)
            best, worst = _value(bucket[0]), _value(bucket[-1])
            mean = sum(_value(r) for r in bucket) / len(bucket)
            buckets.append((bucket, (best - worst, best, best - mean)))
        buckets.sort(key=lambda b: b[1], reverse=True)
        made: list[States] = []
        for bucket, _ in buckets:
            source = self.softmax(self.top(options.num_candidates), options.temperature_for_candidates)
            states = self._drop_demos(dict(self.programs[source]))
            strategy = self.rng.choice(self.strategies)
            if strategy == "demo":
                states = self._append_demo(bucket, states, low)
            else:
                changed = self._append_rule(bucket, states, low, high, step)
                if changed is None:
                    continue  # the advice call failed to parse: DSPy skips the candidate too
                states = changed
            made.append(states)
            if len(made) >= options.num_candidates + 1:
                break
        return made

    def _drop_demos(self, states: States) -> States:
        most = max((len(s.demos) for s in states.values()), default=0)
        cap = self.options.max_demos if self.options.max_demos > 0 else 3
        count = min(max(_poisson(self.rng, most / cap), int(most >= cap)), most)
        dropped = {self.rng.randrange(most) for _ in range(count)} if most else set()
        return {
            q: dataclasses.replace(s, demos=tuple(d for i, d in enumerate(s.demos) if i not in dropped))
            for q, s in states.items()
        }

    def _append_demo(self, bucket: list[TracedRun], states: States, low: float) -> States:
        good = bucket[0]
        if _value(good) <= low:
            return states
        last: dict[str, Any] = {}
        for record in good.records:
            if record.qualname in states:
                last[record.qualname] = trace_demo(record)
        return {
            q: dataclasses.replace(s, demos=(*s.demos, last[q])) if q in last else s
            for q, s in states.items()
        }

    def _append_rule(
        self, bucket: list[TracedRun], states: States, low: float, high: float, step: int
    ) -> States | None:
        good, bad = bucket[0], bucket[-1]
        if _value(good) <= low or _value(bad) >= high:
            return states
        search = self.search
        names = {q: search.functions[q].name for q in states}
        values = {
            "program_code": _source(search.task.target),
            "modules_defn": _modules(search, states),
            "program_inputs": _json(good.example.inputs()),
            "oracle_metadata": _json({k: good.example.data[k] for k in good.example.output_names}),
            "worse_program_trajectory": _trajectory(bad, names),
            "worse_program_outputs": _json(to_jsonable(bad.prediction)),
            "worse_reward_value": _value(bad),
            "better_program_trajectory": _trajectory(good, names),
            "better_program_outputs": _json(to_jsonable(good.prediction)),
            "better_reward_value": _value(good),
            "module_names": sorted(names.values()),
        }
        lm = search.reflection_lm or search.lm
        try:
            advice = OFFER_FEEDBACK.forward(values, lm).value
        except ParseError:
            return None
        changed = dict(states)
        for qualname, name in names.items():
            text = advice.get(name) if isinstance(advice, dict) else None
            if isinstance(text, str) and text.strip():
                state: FunctionState = changed[qualname]
                changed[qualname] = dataclasses.replace(
                    state, instructions=f"{state.instructions}\n\n{text.strip()}"
                )
        return changed


def _hot(states: States, sample: int) -> States:
    """The program sampled hot: every step at temperature 1.0 with this sample's own seed."""
    return {
        q: dataclasses.replace(
            s, lm_params={**s.lm_params, "temperature": SAMPLE_TEMPERATURE, "seed": sample}
        )
        for q, s in states.items()
    }


def _value(run: TracedRun) -> float:
    return run.score.value if run.score is not None and run.error is None else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    """numpy.percentile's default (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _trajectory(run: TracedRun, names: dict[str, str]) -> str:
    steps = [
        {"module_name": names[r.qualname], "inputs": to_jsonable(dict(r.inputs)), "outputs": to_jsonable(r.fields)}
        for r in run.records
        if r.qualname in names
    ]
    return _json(steps)


def _modules(search: Search, states: States) -> str:
    line = "-" * 80
    out = [line]
    for qualname in sorted(states):
        signature = search.functions[qualname]
        out.append(f"Module {signature.name}")
        out.append("\tInput Fields: " + ", ".join(f.name for f in signature.inputs))
        out.append("\tOutput Fields: " + ", ".join(f.name for f in signature.outputs))
        out.append(f"\tOriginal Instructions: {states[qualname].instructions}")
        out.append(line)
    return "\n".join(out)
