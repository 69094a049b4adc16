"""Classify questions by the kind of answer they ask for (TREC coarse classes)."""

from typing import Literal

import promptcast as pc


@pc.predict
def question_type(question: str) -> Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]:
    """Classify the kind of answer a question asks for.

    Args:
        question: A question in English.

    Returns:
        The coarse TREC answer type.
    """
