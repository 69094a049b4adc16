"""`copro`: DSPy's COPRO, coordinate ascent over LM-proposed instructions.

As in `dspy/teleprompt/copro_optimizer.py`: for each LM function, the proposer writes
`breadth - 1` new instructions from the current one (at `init_temperature`), which with the
current one make the first candidates. For each of `depth` rounds, every function's candidates
are scored with the other functions at their best so far (a single function scores only the
newest candidates), the best is kept, and -- before the next round -- the proposer sees the
best `breadth` attempts with their scores (worst first) and writes `breadth` more.

Differences from DSPy, on purpose: candidates are scored on the dev set (DSPy's COPRO scores
on the training set it is given), so the choice is made on held-out rows as our other
optimizers do; the output-field prefix is not proposed (our adapters do not render one); the
demos in each function's state are kept unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from .base import Optimizer, Search
from .propose import BASIC, GIVEN_ATTEMPTS, attempts_text, propose


@dataclass
class COPRO(Optimizer):
    """Breadth x depth coordinate ascent over proposed instructions (DSPy's defaults)."""

    name: ClassVar[str] = "copro"
    breadth: int = 10
    depth: int = 3
    init_temperature: float = 1.4

    def propose(self, search: Search) -> None:
        if self.breadth < 2:
            raise ValueError("copro needs breadth >= 2")
        seed = search.task.seed
        current = dict(search.base_states)
        tried: dict[str, dict[str, float]] = {q: {} for q in search.functions}
        latest: dict[str, list[str]] = {}
        every: dict[str, list[str]] = {}
        for qualname in search.functions:
            base = current[qualname].instructions
            new = propose(
                BASIC, {"basic_instruction": base}, search.lm, self.breadth - 1,
                temperature=self.init_temperature, seed=seed,
            )  # fmt: skip
            latest[qualname] = every[qualname] = [*new, base]
        single = len(search.functions) == 1
        for depth in range(self.depth):
            for qualname, function in search.functions.items():
                pool = latest[qualname] if single else every[qualname]
                for instruction in pool:
                    state = dataclasses.replace(current[qualname], instructions=instruction)
                    label = f"depth {depth + 1}: {function.name}: {_short(instruction)}"
                    score = search.score(label, {**current, qualname: state})
                    tried[qualname][instruction] = max(
                        score, tried[qualname].get(instruction, score)
                    )
                best = max(tried[qualname], key=lambda i: tried[qualname][i])
                current[qualname] = dataclasses.replace(current[qualname], instructions=best)
            if depth == self.depth - 1:
                break
            for qualname in search.functions:
                ranked = sorted(tried[qualname].items(), key=lambda item: item[1], reverse=True)
                shown = list(reversed(ranked[: self.breadth]))  # worst first, as DSPy shows them
                new = propose(
                    GIVEN_ATTEMPTS, {"attempted_instructions": attempts_text(shown)},
                    search.lm, self.breadth, temperature=self.init_temperature, seed=seed,
                    first_sample=1000 * (depth + 1),
                )  # fmt: skip
                latest[qualname] = new
                every[qualname] = [*every[qualname], *new]

    def estimate(self, n_train: int, n_dev: int) -> int:
        """Each new proposal scored once on dev, plus the proposer's calls (the current
        instruction is the zero-shot score already taken).

        A program with several functions rescores every candidate of each function each round
        against the others' new best, so it spends more; this is the single-function count.
        """
        proposals = (self.breadth - 1) + (self.depth - 1) * self.breadth
        return proposals * n_dev + proposals


def _short(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
