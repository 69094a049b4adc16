"""Ensembles (`ensemble` optimizer): one step answered by several optimized states, by vote.

DSPy's `Ensemble(reduce_fn=dspy.majority)` runs several compiled programs and reduces their
outputs. Here the members are states of the *same* step (instructions, demos, adapter, sampling),
written into the step spec's optional `ensemble` key:

    "ensemble": {"members": ({"instructions": ..., "demos": (...), "adapter": ...,
                              "lm_params": {...}}, ...), "reduce": "majority"}

`build_step` builds every member through the same factory as any step, so each member sends
exactly what it would alone, and the optimizer scored the very same vote. `majority` returns the
value most members gave (compared as JSON), a tie going to the member listed first; a member
whose answer does not parse casts no vote, and when none parses the first member's ParseError is
raised (an error, not a guess). Members run one after another (sync) or concurrently (async).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from .coerce import to_jsonable
from .errors import ParseError
from .lm import LM, Message
from .predictor import Prediction
from .streaming import WholeStream

T = TypeVar("T")

REDUCERS = ("majority",)
"""How an ensemble's member answers become one: the names a spec may give."""

MEMBER_KEYS = frozenset({"instructions", "demos", "adapter", "lm_params"})
"""What a member may set; everything else is the step's own."""


def check_ensemble(value: Any) -> str | None:
    """What is wrong with a spec's `ensemble` entry, in words; None when it is valid."""
    if not isinstance(value, Mapping) or set(value) != {"members", "reduce"}:
        return 'a mapping {"members": (member, ...), "reduce": "majority"}'
    if value["reduce"] not in REDUCERS:
        return f"reduced by one of {', '.join(REDUCERS)}"
    members = value["members"]
    if not isinstance(members, (tuple, list)) or len(members) < 2:
        return "two or more members"
    for member in members:
        if not isinstance(member, Mapping) or set(member) != MEMBER_KEYS:
            return f"members that each set exactly {', '.join(sorted(MEMBER_KEYS))}"
    return None


def _vote_key(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, ensure_ascii=False, default=repr)


def majority(predictions: Sequence[Prediction[T] | None]) -> int:
    """The index of the winning member: most common value, a tie to the earliest."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, prediction in enumerate(predictions):
        if prediction is None:
            continue
        key = _vote_key(prediction.value)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, index)
    best = max(counts, key=lambda k: (counts[k], -first[k]))
    return first[best]


class EnsembleStep(WholeStream[T], Generic[T]):  # streams as one final item
    """A step whose answer is the vote of its member steps (see module doc)."""

    __slots__ = ("members", "reduce")

    def __init__(self, members: Sequence[Any], reduce: str = "majority") -> None:
        self.members = tuple(members)
        self.reduce = reduce

    def __repr__(self) -> str:
        return f"EnsembleStep(members={len(self.members)}, reduce={self.reduce!r})"

    def messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The first member's messages (each member's: `member_messages`)."""
        return list(self.members[0].messages(inputs))

    def member_messages(self, inputs: Mapping[str, Any]) -> list[list[Message]]:
        return [list(m.messages(inputs)) for m in self.members]

    def _settle(self, outcomes: Sequence[Prediction[T] | BaseException]) -> Prediction[T]:
        votes: list[Prediction[T] | None] = []
        for outcome in outcomes:
            if isinstance(outcome, ParseError):
                votes.append(None)
            elif isinstance(outcome, BaseException):
                raise outcome  # an LM or transport error is not a vote: fail as one call would
            else:
                votes.append(outcome)
        if all(v is None for v in votes):
            first = outcomes[0]
            assert isinstance(first, ParseError)
            raise first
        winner = votes[majority(votes)]
        assert winner is not None
        return winner

    def forward(self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any) -> Prediction[T]:
        outcomes: list[Prediction[T] | BaseException] = []
        for member in self.members:
            try:
                outcomes.append(member.forward(inputs, lm, **params))
            except ParseError as exc:
                outcomes.append(exc)
        return self._settle(outcomes)

    async def aforward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        results = await asyncio.gather(
            *(m.aforward(inputs, lm, **params) for m in self.members), return_exceptions=True
        )
        return self._settle(list(results))

    def __call__(self, **inputs: Any) -> T:
        return self.forward(inputs).value

    async def acall(self, **inputs: Any) -> T:
        return (await self.aforward(inputs)).value
