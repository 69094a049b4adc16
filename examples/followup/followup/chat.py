"""The sentiment of the user's latest message in a conversation about a review."""

from typing import Literal

import promptcast as pc


@pc.predict
def follow_up(history: pc.History, message: str) -> Literal["positive", "negative"]:
    """Say whether the user's latest message is positive or negative about what is discussed.

    A follow-up such as "Same here." keeps the sentiment of the turn before it; one such as
    "I had the opposite experience." reverses it.

    Args:
        history: The conversation so far, each earlier message with its sentiment.
        message: The user's latest message.
    """
