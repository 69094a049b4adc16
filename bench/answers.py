"""The deterministic answer table both systems are served from: TREC question -> its label.

Why a shared module: the per-call overhead workers (one per venv) and the fake OpenAI server
must answer identically, and the lookup must cost the same on both sides, so it is the same
code: find the question in the last user message (both systems render it as a
`[[ ## question ## ]]` section), look it up in a dict, return a ChatAdapter-style reply that
both parsers accept. Stdlib only.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "examples" / "trec" / "data"
QUESTION_MARKER = "[[ ## question ## ]]\n"
FALLBACK_LABEL = "ENTY"
LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
REASONING = "The question asks for a specific kind of answer, so the label follows from it."


def labels(data: Path = DATA) -> dict[str, str]:
    """Question -> coarse label over every split (train, dev, test)."""
    table: dict[str, str] = {}
    for split in ("train", "dev", "test"):
        for line in (data / f"{split}.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                table[row["question"].strip()] = row["coarse"]
    return table


def questions(data: Path = DATA) -> list[str]:
    return list(labels(data))


def question_of(user_message: str) -> str:
    """The `question` section of a rendered user message ("" when there is none)."""
    start = user_message.find(QUESTION_MARKER)
    if start < 0:
        return ""
    start += len(QUESTION_MARKER)
    end = user_message.find("\n\n", start)
    return user_message[start : end if end >= 0 else len(user_message)].strip()


def reply(label: str, reasoning: bool = False) -> str:
    """A reply in DSPy's ChatAdapter format, which promptcast's chat adapter also parses."""
    head = f"[[ ## reasoning ## ]]\n{REASONING}\n\n" if reasoning else ""
    return f"{head}[[ ## answer ## ]]\n{label}\n\n[[ ## completed ## ]]"


def answered_label(question: str, label: str, accuracy: float) -> str:
    """The label a model with this accuracy gives: right for a fixed, hash-chosen share of
    questions (the same share for every run and both systems), else the next label."""
    if zlib.crc32(question.encode()) % 1000 < accuracy * 1000:
        return label
    return LABELS[(LABELS.index(label) + 1) % len(LABELS)]


class AnswerTable:
    """Last user message -> reply text, from a precomputed table (one dict lookup per call).

    `accuracy` < 1 makes the table wrong on a deterministic share of questions, like a weak
    model: bootstrapping then has to walk further through the training set.
    """

    def __init__(self, reasoning: bool = False, data: Path = DATA, accuracy: float = 1.0) -> None:
        self.replies = {
            q: reply(answered_label(q, label, accuracy), reasoning)
            for q, label in labels(data).items()
        }
        self.fallback = reply(FALLBACK_LABEL, reasoning)

    def __call__(self, user_message: str) -> str:
        return self.replies.get(question_of(user_message), self.fallback)
