"""Answer questions about the planets by looking facts up and calculating."""

import promptcast as pc

from .tools import calculate, lookup


@pc.react(tools=[lookup, calculate], max_iters=5)
def answer(question: str) -> float:
    """Answer the question about the planets with a number. Look up every fact you need
    with `lookup`, and do any arithmetic with `calculate`."""
