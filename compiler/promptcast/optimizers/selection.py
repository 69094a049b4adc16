"""Choosing between scored candidates: objectives, confidence intervals, racing's stopping rule.

Pure functions over per-example dev scores and per-call token costs, so the statistics are
tested apart from any search (`Search` in base.py calls them).

- **Objectives** (`--objective`): `accuracy` (default) keeps the highest dev score and gives a
  tie to the cheaper state -- fewer tokens per program run, which every production call pays forever;
  `weighted:W` maximizes score - W x (tokens per run / 1000); `within:X` keeps the cheapest
  candidate scoring within X of the best. DSPy keeps the earlier candidate on a tie, which on a
  10-row dev set kept a 16-demo state that scored 0.46 on test against zero-shot's 0.54.
- **Intervals**: each dev score's 95% interval (Wilson's for 0/1 scores, the normal one for
  fractional metrics), and a paired comparison of the winner with the runner-up that says when
  the dev set is too small to separate them and about how many rows would.
- **Racing**: a candidate is scored on growing prefixes of dev (in a seeded order) and stopped
  as soon as it cannot, or very probably does not, beat the reference (the best fully scored
  candidate): the exact rule (even perfect scores on the rest would not reach it) or the
  statistical one (a one-sided paired bound on the mean difference lies below zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

from ..errors import PromptcastError

Z95: Final = NormalDist().inv_cdf(0.975)
"""Two-sided 95% normal quantile, for the intervals the report shows."""

TIE: Final = 1e-9
"""Scores closer than this are equal (means of the same examples differ by rounding only)."""

OBJECTIVE_KINDS: Final = ("accuracy", "weighted", "within")

RACE_FIRST: Final = 5
"""Fewest dev examples a raced candidate is scored on before it may be stopped."""


class ObjectiveError(PromptcastError):
    """`--objective` is not one of the forms it takes."""


@dataclass(frozen=True)
class Objective:
    """How the winner is chosen among fully scored candidates (see module doc)."""

    kind: str = "accuracy"
    weight: float = 0.0
    """`weighted`: score points given up per 1,000 tokens per run."""
    margin: float = 0.0
    """`within`: how far below the best score the cheapest pick may be."""

    @classmethod
    def parse(cls, text: str) -> Objective:
        """`accuracy`, `weighted:0.05`, `within:0.02` (also `within:2%`)."""
        name, _, value = text.strip().partition(":")
        if name == "accuracy" and not value:
            return cls()
        if name in ("weighted", "within") and value:
            number = _number(text, value)
            if number < 0 or (name == "within" and number > 1):
                raise ObjectiveError(
                    f"--objective {text!r}: {name} takes a number "
                    + ("from 0 to 1" if name == "within" else ">= 0")
                )
            if name == "weighted":
                return cls("weighted", weight=number)
            return cls("within", margin=number)
        raise ObjectiveError(
            f"--objective {text!r}: expected accuracy, weighted:W (score points per 1,000 tokens"
            " per program run, e.g. weighted:0.05) or within:X (the cheapest candidate within X of the"
            " best score, e.g. within:0.02)"
        )

    def describe(self) -> str:
        if self.kind == "weighted":
            return f"weighted:{self.weight:g}"
        if self.kind == "within":
            return f"within:{self.margin:g}"
        return "accuracy"

    def value(self, score: float, cost: float) -> float:
        """The number `weighted` maximizes (the others compare scores and costs directly)."""
        return score - self.weight * cost / 1000.0 if self.kind == "weighted" else score

    def allowance(self, reference_cost: float, cost: float) -> float:
        """How far below the reference's score a candidate may score and still win."""
        if self.kind == "within":
            return self.margin
        if self.kind == "weighted":
            return max(0.0, self.weight * (reference_cost - cost) / 1000.0)
        return 0.0


def _number(text: str, value: str) -> float:
    raw = value.strip()
    try:
        return float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ObjectiveError(f"--objective {text!r}: {value!r} is not a number") from None


@dataclass(frozen=True)
class Scored:
    """A fully scored candidate as selection sees it: score, cost, position in the run."""

    index: int
    score: float
    cost: float


def choose(objective: Objective, candidates: Sequence[Scored]) -> Scored | None:
    """The objective's pick; None when nothing was fully scored."""
    if not candidates:
        return None
    if objective.kind == "weighted":
        return max(candidates, key=lambda c: (objective.value(c.score, c.cost), -c.index))
    best = max(c.score for c in candidates)
    floor = best - (objective.margin if objective.kind == "within" else 0.0) - TIE
    eligible = [c for c in candidates if c.score >= floor]
    return min(eligible, key=lambda c: (c.cost, -c.score, c.index))


def interval(scores: Sequence[float]) -> tuple[float, float]:
    """A 95% interval of the mean of `scores` (Wilson's when every score is 0 or 1)."""
    n = len(scores)
    if n == 0:
        return (0.0, 1.0)
    mean = sum(scores) / n
    if all(s in (0.0, 1.0) for s in scores):
        z2 = Z95 * Z95
        centre = (mean + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 * math.sqrt(mean * (1 - mean) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        return (max(0.0, centre - half), min(1.0, centre + half))
    half = Z95 * _sd(scores) / math.sqrt(n) if n > 1 else 1.0
    return (max(0.0, mean - half), min(1.0, mean + half))


def _sd(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class Separation:
    """The winner against the runner-up on the same dev rows."""

    difference: float
    half_width: float
    rows: int
    rows_needed: int | None
    """Rows for a 95% interval of this difference to exclude zero (None: cannot say)."""

    @property
    def separated(self) -> bool:
        return abs(self.difference) > self.half_width

    def describe(self, winner: str, runner_up: str) -> str:
        head = (
            f"dev ({self.rows} rows) does not separate {winner!r} from {runner_up!r}: "
            f"difference {self.difference:+.3f} +/- {self.half_width:.3f} (95%)"
        )
        if self.rows_needed is None:
            return head + "; they score alike on every dev row, so more rows of the same kind"\
                " may not separate them either"
        return head + f"; about {self.rows_needed} dev rows would tell a difference this size"


def separation(winner: Sequence[float], runner_up: Sequence[float]) -> Separation:
    """Paired comparison of two candidates' per-example scores (same rows, same order).

    When they never differ, no row count would separate them; when the mean difference is 0
    but rows differ, the estimate is for a 5-point difference.
    """
    diffs = [a - b for a, b in zip(winner, runner_up, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n if n else 0.0
    sd = _sd(diffs)
    half = Z95 * sd / math.sqrt(n) if n > 1 else math.inf
    if sd == 0.0:
        return Separation(mean, 0.0 if n > 1 else math.inf, n, None if mean == 0 else n)
    size = abs(mean) if abs(mean) > TIE else 0.05
    needed = max(n + 1, math.ceil((Z95 * sd / size) ** 2)) if half >= abs(mean) else n
    return Separation(mean, half, n, needed)


def hopeless(
    candidate: Sequence[float],
    reference: Sequence[float],
    reference_total: float,
    total_rows: int,
    allowance: float,
    confidence: float,
) -> str | None:
    """Why a raced candidate stops now (None: score it further).

    `candidate` and `reference` are per-example scores on the same first k dev rows;
    `reference_total` is the reference's sum over all `total_rows`. Scores lie in [0, 1].
    """
    k = len(candidate)
    best_case = sum(candidate) + (total_rows - k)
    if best_case < reference_total - allowance * total_rows - TIE:
        return f"cannot reach the best even with every remaining row right ({k} rows scored)"
    if k < RACE_FIRST or k >= total_rows:
        return None
    diffs = [a - b for a, b in zip(candidate, reference, strict=True)]
    mean = sum(diffs) / k
    z = NormalDist().inv_cdf(confidence)
    upper = mean + allowance + z * _sd(diffs) / math.sqrt(k)
    if upper < -TIE:
        return (
            f"below the best on the first {k} rows (paired difference {mean:+.3f}, "
            f"{confidence:.0%} upper bound {upper - allowance:+.3f})"
        )
    return None


def stages(total: int) -> list[int]:
    """Prefix sizes a raced candidate is scored on: RACE_FIRST (or 1/8 of dev), doubling."""
    if total <= RACE_FIRST:
        return [total]
    size = max(RACE_FIRST, math.ceil(total / 8))
    out = []
    while size < total:
        out.append(size)
        size *= 2
    return [*out, total]
