"""Behaviour claims against the real local model (qwen0.5b via llama.cpp): marked `slow`.

What a real small model writes is what the lenient parser is for: these run generated-style
predictors through the stdlib client (the production path) and check every answer parses into
the declared type without a second call. Accuracy is printed for the record, not asserted
beyond sanity: a 0.5B model is weak, and the point here is format robustness.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, NamedTuple

import pytest

from promptcast_runtime import (
    REASONING,
    Field,
    OpenAIClient,
    ParseError,
    Predictor,
    Signature,
    fields_from,
    using,
)

pytestmark = pytest.mark.slow

TREC_TEST = Path(__file__).parents[1] / "examples" / "trec" / "data" / "test.jsonl"
Label = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def _client(url: str) -> OpenAIClient:
    return OpenAIClient("qwen0.5b", url, "local", timeout=300)


def test_zero_shot_trec_labels_all_parse(local_lm_url: str) -> None:
    predictor: Predictor[Label] = Predictor(
        Signature(
            "Classify the kind of answer a question asks for.",
            (Field("question", str, "A question in English."),),
            (Field("answer", Label, "The coarse TREC answer type."),),
        ),
        returns="answer",
        lm_params={"temperature": 0, "max_tokens": 64},
    )
    rows = [json.loads(line) for line in TREC_TEST.read_text().splitlines()[:12]]
    failures, correct = [], 0
    with using(_client(local_lm_url)):
        for row in rows:
            try:
                label = predictor(question=row["question"])
            except ParseError as exc:
                failures.append(exc.raw)
                continue
            assert label in Label.__args__  # type: ignore[attr-defined]
            correct += label == row["coarse"]
    print(
        f"\nqwen0.5b zero-shot TREC, {len(rows)} rows: {correct} correct, {len(failures)} unparsed"
    )
    assert failures == []


class Receipt(NamedTuple):
    total: int
    items: list[str]


def test_chain_of_thought_with_structured_output_parses(local_lm_url: str) -> None:
    predictor: Predictor[Receipt] = Predictor(
        Signature(
            "Read the shopping note and report what was bought and the total price in dollars.",
            (Field("note", str),),
            (REASONING, *fields_from(Receipt, {"total": "Total price in whole dollars."})),
        ),
        returns=Receipt,
        lm_params={"temperature": 0, "max_tokens": 200},
    )
    notes = [
        "I bought a pen for $3 and a notebook for $5.",
        "Two apples at $1 each and bread for $4.",
        "A hat for $20.",
    ]
    parsed = 0
    with using(_client(local_lm_url)):
        for note in notes:
            try:
                receipt = predictor(note=note)
            except ParseError as exc:
                print(f"\nunparsed: {exc.raw!r}")
                continue
            assert isinstance(receipt.total, int) and isinstance(receipt.items, list)
            parsed += 1
    print(f"\nqwen0.5b chain of thought -> NamedTuple: {parsed}/{len(notes)} parsed")
    assert parsed >= 2


def test_the_local_server_answers_the_same_in_any_order(local_lm_url: str) -> None:
    """The lock's reproducibility rests on it: the server's prefix cache changes no answer.

    scripts/lm/check_prefix_cache.py sends seeded temperature-1.0 few-shot requests grouped by
    demo set, interleaved and reversed (live prefix reused, saved prefixes restored, prefixes
    evaluated afresh); every request must answer the same text each time. The stock
    order-dependent server fails this (10 of its 18 answers differed when measured).
    """
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "scripts" / "lm" / "check_prefix_cache.py"
    proc = subprocess.run(
        [sys.executable, str(script), local_lm_url],
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "differing across orders/runs: 0" in proc.stdout
