"""Classify the sentiment of one review sentence."""

from typing import Literal

import promptcast as pc


@pc.predict
def sentiment(text: str) -> Literal["positive", "negative"]:
    """Say whether the review sentence is positive or negative.

    Args:
        text: One sentence from a restaurant review.
    """
