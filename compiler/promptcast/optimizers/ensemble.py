"""`ensemble`: several optimized states of each step, answering together by majority vote
(DSPy's `Ensemble(reduce_fn=dspy.majority)`).

Where the members come from:

- by default, a random_search over the same candidates as `--optimizer random_search` (its
  parameters are this optimizer's too); the `size` best fully scored candidates become the
  members, best first (a tie in the vote goes to the better member);
- `members_from=a.json,b.json`: the states locked in those lock files (e.g. the results of
  different optimizers or seeds), each lock's entry for the step.

The ensemble is then scored on dev like any candidate, and the objective chooses between it and
every single candidate scored before it: an ensemble costs `size` calls per call, so under the
default objective it ships only when it scores higher than its best member (a tie goes to the
cheaper single state). In a program, each step votes on its own answers.

The built module runs the members through the runtime's `EnsembleStep`
(`promptcast_runtime.ensemble`): each member's request is what that state sends alone.
Reducing by a user function is not offered: the lock is untrusted input, and a function named in
it would be code a build imports on the lock's say-so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..ir import FunctionState
from .base import OptimizationError, Optimizer, Search, States
from .random_search import RandomSearch


@dataclass
class Ensemble(Optimizer):
    """The `size` best states of each step, by vote (see module doc)."""

    name: ClassVar[str] = "ensemble"
    size: int = 3
    members_from: str = ""
    """Comma-separated lock files whose states become the members (instead of a search)."""
    num_candidates: int = 8
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    racing: bool = True

    def __post_init__(self) -> None:
        if self.size < 2:
            raise OptimizationError(f"ensemble size={self.size}: an ensemble needs 2 or more")

    def propose(self, search: Search) -> None:
        if self.members_from:
            members = self._locked_members(search)
            for i, states in enumerate(members):
                search.score(f"member {i + 1} ({self._paths()[i]})", states)
        else:
            RandomSearch(
                num_candidates=self.num_candidates,
                max_bootstrapped_demos=self.max_bootstrapped_demos,
                max_labeled_demos=self.max_labeled_demos,
                racing=self.racing,
                halving=False,  # halving leaves one or two finalists: too few members to vote
            ).propose(search)
            ranked = sorted(search.complete_candidates(), key=lambda c: -c[2])  # stable: earlier
            distinct: list[States] = []
            for _, states, _, _ in ranked:
                if states not in distinct:
                    distinct.append(states)
            members = distinct[: self.size]
            if len(members) < 2:
                search.notes.append("ensemble: fewer than 2 distinct candidates; no ensemble")
                return
        search.score(f"ensemble of {len(members)} (majority)", vote(members))

    def _paths(self) -> list[str]:
        return [p.strip() for p in self.members_from.split(",") if p.strip()]

    def _locked_members(self, search: Search) -> list[States]:
        from ..lockfile import load_lock

        paths = self._paths()
        if len(paths) < 2:
            raise OptimizationError("ensemble members_from needs two or more lock files")
        members: list[States] = []
        for path in paths:
            lock = load_lock(Path(path), required=True)
            states = dict(search.base_states)
            for qualname, signature in search.functions.items():
                entry = lock.entries.get(qualname)
                if entry is None or entry.signature_hash != signature.hash():
                    raise OptimizationError(
                        f"ensemble: {path} has no current entry for {qualname} (optimize it there"
                        " first, with this version of the function)"
                    )
                if entry.state.members or entry.state.nearest_k:
                    raise OptimizationError(
                        f"ensemble: {path}'s state of {qualname} is itself an ensemble or knn"
                        " state; members must be plain states"
                    )
                states[qualname] = entry.state
            members.append(states)
        return members

    def estimate(self, n_train: int, n_dev: int) -> int:
        if self.members_from:
            return (len(self._paths()) + self.size) * n_dev
        search = RandomSearch(num_candidates=self.num_candidates).estimate(n_train, n_dev)
        return search + self.size * n_dev


def vote(members: list[States]) -> States:
    """Per step, one state whose members are the members' states (the first's fields on top)."""
    out: States = {}
    for qualname in members[0]:
        states = [m[qualname] for m in members]
        if all(s == states[0] for s in states):
            out[qualname] = states[0]  # every member agrees on this step: no vote to take
            continue
        plain = tuple(dataclasses.replace(s, members=()) for s in states)
        first: FunctionState = plain[0]
        out[qualname] = dataclasses.replace(first, members=plain)
    return out
