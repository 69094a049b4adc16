"""Collect real completions of the local model for the labelled parse corpus.

Why: the corpus test (`tests/test_trust_parse.py`) must hold what a small model really writes,
not only what we imagine it writes. This sends, for every schema of `tests/corpus_schemas.py`
and both adapters, the exact messages the runtime renders (`Predictor.messages`) with the
adapter's own request parameters, temperature 0, and keeps the raw completion text and its
finish reason. Labels are added by hand afterwards (`tests/corpus/real_qwen0.5b.jsonl`); this
script only writes the unlabelled collection.

    .venv/bin/python bench/collect_corpus.py [--api-base URL] [--out PATH] [--limit N]

The server handles one request at a time, so calls are sequential (1-10 s each).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptcast_runtime import Predictor, get_adapter  # noqa: E402
from tests.corpus_schemas import SCHEMAS  # noqa: E402

INPUTS: dict[str, list[dict[str, str]]] = {
    "trec": [
        {"question": "What does NASA stand for?"},
        {"question": "How many people live in Tokyo?"},
        {"question": "Who painted the Mona Lisa?"},
        {"question": "Where is the Eiffel Tower?"},
        {"question": "Why is the sky blue?"},
        {"question": "What is the best-selling car of all time?"},
    ],
    "sentiment": [
        {"review": "Terrible. Broke after two days and support never answered."},
        {"review": "Not bad at all, I would even say it is great."},
        {"review": "It works. Nothing special."},
        {"review": "I love it! Best purchase this year."},
        {"review": "Not negative, but not positive either."},
    ],
    "color": [
        {"description": "A ripe tomato."},
        {"description": "The leaves of an oak tree in summer."},
        {"description": "A clear sky at noon."},
        {"description": "A zebra."},
    ],
    "capital": [
        {"country": "France"},
        {"country": "Japan"},
        {"country": "Australia"},
        {"country": "Atlantis"},
    ],
    "summary": [
        {"story": "Two cats met on a roof. They fought over a fish, then shared it."},
        {"story": "A boy lost his kite in a storm and found it the next day in a tree."},
        {"story": "The baker forgot the sugar, so the town ate salty cakes for a week."},
    ],
    "math": [
        {"problem": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
        {"problem": "A shirt costs $50 and is discounted by $24. What is the new price?"},
        {"problem": "There are 12 eggs in a dozen. How many eggs are in 5 dozen?"},
        {"problem": "A train travels 60 miles per hour for 2 hours. How far does it go?"},
        {"problem": "What is 1,200 divided by 4?"},
        {"problem": "Sara had 10 dollars, spent 3 on candy and 2 on a drink. How much is left?"},
    ],
    "math_cot": [
        {"problem": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
        {"problem": "A book has 120 pages. Ana reads 15 pages a day. How many days to finish?"},
        {"problem": "A farmer has 7 cows and 4 hens. How many legs are there in total?"},
        {"problem": "What is 15% of 200?"},
    ],
    "price": [
        {"text": "I bought 3 mugs for $4.50 each."},
        {"text": "Twelve pencils at 0.25 euros apiece."},
        {"text": "The ticket was 1,250 yen."},
        {"text": "Two coffees, 3 dollars and 20 cents each."},
    ],
    "fact": [
        {"statement": "Water boils at 100 degrees Celsius at sea level."},
        {"statement": "The sun rises in the west."},
        {"statement": "Paris is the capital of Italy."},
        {"statement": "Seven is a prime number."},
        {"statement": "Humans have three lungs."},
    ],
    "items": [
        {"text": "For the picnic we packed bread, cheese, grapes and lemonade."},
        {"text": "She has a cat and a dog."},
        {"text": "Nothing was in the box."},
        {"text": "Buy milk, eggs, and flour."},
    ],
    "numbers": [
        {"text": "The team scored 3 goals in 90 minutes in front of 40000 fans."},
        {"text": "Rooms 101 and 205 are free."},
        {"text": "There are no numbers here."},
    ],
    "counts": [
        {"text": "I ate two apples and three bananas."},
        {"text": "A basket with 5 oranges, 1 melon and 5 more oranges."},
        {"text": "No fruit today."},
    ],
    "year": [
        {"text": "The Berlin Wall fell in 1989."},
        {"text": "The first moon landing happened in July 1969."},
        {"text": "The meeting was moved to next week."},
        {"text": "In 2004, 10 countries joined the EU."},
    ],
    "pair": [
        {"text": "Maria is 34 years old."},
        {"text": "At 7, little Ben already plays chess."},
        {"text": "Grandpa Joe turned eighty last week."},
    ],
    "person": [
        {"text": "Ana Lima, 29, lives in Lisbon, Portugal."},
        {"text": "Kenji (41) moved from Osaka to Kyoto, Japan last year."},
        {"text": "Old Tom, a sailor of 70 from Brest in France."},
    ],
    "order": [
        {"message": "Hi! Please send 2 desk lamps at $19.99 each, express please."},
        {"message": "Order: five notebooks, 3 dollars a piece. No rush."},
        {"message": "I'd like one backpack for 45 euros, ship it fast."},
        {"message": "Dear shop, 12 x mouse pad, $3 a piece. Best regards, Ana."},
    ],
    "qa_cot": [
        {"question": "What is the largest planet in the solar system?"},
        {"question": "Who wrote Romeo and Juliet?"},
        {"question": "What is the chemical symbol for gold?"},
        {"question": "In which year did World War II end?"},
    ],
}


def returns_of(schema: str) -> str:
    return SCHEMAS[schema].outputs[-1].name


def complete(
    api_base: str, model: str, messages: list[dict[str, str]], params: dict[str, Any]
) -> dict[str, Any]:
    body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": 512, **params}
    request = urllib.request.Request(
        f"{api_base}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        payload = json.loads(response.read())
    choice = payload["choices"][0]
    return {"text": choice["message"]["content"], "finish_reason": choice.get("finish_reason")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "raw" / "corpus_qwen0.5b.jsonl")
    )
    p.add_argument("--limit", type=int, default=0, help="at most this many calls (0: all)")
    args = p.parse_args(argv)
    out = Path(args.out)
    done: set[tuple[str, str, str]] = set()
    if out.exists():  # resume: keep what was collected, call only for the rest
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["schema"], row["adapter"], json.dumps(row["inputs"], sort_keys=True)))
    calls = 0
    with out.open("a", encoding="utf-8") as sink:
        for schema, rows in INPUTS.items():
            for adapter in ("chat", "json"):
                predictor: Predictor[Any] = Predictor(
                    SCHEMAS[schema], returns_of(schema), adapter=adapter
                )
                params = dict(get_adapter(adapter).request_params)
                for inputs in rows:
                    key = (schema, adapter, json.dumps(inputs, sort_keys=True))
                    if key in done:
                        continue
                    if args.limit and calls >= args.limit:
                        return 0
                    start = time.perf_counter()
                    got = complete(args.api_base, args.model, predictor.messages(inputs), params)
                    calls += 1
                    row = {"schema": schema, "adapter": adapter, "inputs": inputs, **got}
                    sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                    sink.flush()
                    print(
                        f"{schema}/{adapter} {time.perf_counter() - start:.1f}s {got['text'][:60]!r}",
                        file=sys.stderr,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
