"""A training set: chat conversations in the fine-tuning APIs' JSONL, hashed and sized.

Each conversation is the exact messages a built step sends (its adapter's rendering of its
state and the call's inputs) followed by the assistant turn the adapter would render for the
answer -- the model learns the prompts it will be sent, nothing else (one path). The hash keys
the trainer's resumable job and the lock's record; the token count is what budgets, --dry-run
and a provider's price per million training tokens read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from promptcast_runtime import Message

CHARS_PER_TOKEN = 4
"""Token estimate of text without the provider's tokenizer (the runtime's rate limiter's rule)."""


@dataclass(frozen=True)
class TrainingSet:
    """Conversations (`{"messages": [...]}` each) in a fixed order."""

    conversations: tuple[tuple[Message, ...], ...]

    @classmethod
    def of(cls, conversations: Sequence[Sequence[Message]]) -> TrainingSet:
        return cls(tuple(tuple(dict(m) for m in c) for c in conversations))

    def jsonl(self) -> str:
        """One `{"messages": [...]}` object per line: what `POST /files` (purpose fine-tune)
        takes and what the local trainer reads."""
        lines = [
            json.dumps({"messages": list(c)}, ensure_ascii=False, sort_keys=True)
            for c in self.conversations
        ]
        return "".join(line + "\n" for line in lines)

    def sha256(self) -> str:
        return "sha256:" + hashlib.sha256(self.jsonl().encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.conversations)

    def tokens(self) -> int:
        """Estimated tokens of one pass over the set (every message, prompt and answer)."""
        return sum(estimate_tokens(c) for c in self.conversations)

    def answer_tokens(self) -> int:
        """Estimated tokens of the assistant turns only (what the loss is computed on)."""
        return sum(
            len(m["content"]) // CHARS_PER_TOKEN + 1
            for c in self.conversations
            for m in c
            if m["role"] == "assistant"
        )


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Characters / 4 plus a few tokens of chat framing per message."""
    return sum(len(m["content"]) // CHARS_PER_TOKEN + 4 for m in messages)


def training_cost(tokens: int, epochs: int, price_per_million: float | None) -> float | None:
    """Dollars for `epochs` passes over `tokens` at `price_per_million` (None: not priced)."""
    if price_per_million is None:
        return None
    return tokens * max(1, epochs) * price_per_million / 1_000_000
