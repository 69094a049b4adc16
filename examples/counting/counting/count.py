"""A short reasoning task with an integer answer: the chain-of-thought example (issue 16)."""

import promptcast as pc


@pc.chain_of_thought
def count_objects(question: str) -> int:
    """Count how many objects of the kind the question asks about are listed, adding up the
    quantities (e.g. "two drums" counts as 2) and leaving out items of other kinds.

    Args:
        question: A sentence listing things someone has, ending with "How many ... do I have?".

    Returns:
        The number of objects of the asked-about kind.
    """
