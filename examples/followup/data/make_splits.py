"""Writes train/dev/test conversations from the UCI Sentiment Labelled Sentences, seeded.

    python data/make_splits.py PATH/TO/shared/data/sentiment

Each row is a short conversation about a product, film or restaurant: one or two earlier turns
(a review sentence and the sentiment it was given) and a follow-up message that has no sentiment
of its own -- "Same here.", "I had the opposite experience." -- so its label is the last earlier
turn's, kept or flipped. Every follow-up phrase is paired with positive and negative histories
alike, so the message alone says nothing: a model that does not read the history scores about
0.5. 30 train, 30 dev and 40 test rows; the files are committed, so the example needs no download.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

AGREE = (
    "Same here.",
    "My friend felt exactly the same way.",
    "I couldn't agree more.",
    "That matches my experience too.",
    "Yes, that is exactly what I thought.",
)
DISAGREE = (
    "I had the opposite experience.",
    "Really? I felt the complete opposite.",
    "My sister would say the reverse.",
    "Funny, for me it was the other way around.",
    "I see it the other way entirely.",
)
FLIP = {"positive": "negative", "negative": "positive"}


def main(source: str) -> None:
    reviews = []
    for name in ("yelp", "amazon", "imdb"):
        path = Path(source) / f"{name}.jsonl"
        reviews += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rng = random.Random(20261202)
    rng.shuffle(reviews)
    rows = []
    for i in range(100):
        first = reviews[2 * i]
        turns = [{"message": first["text"], "answer": first["label"]}]
        last = first["label"]
        if i % 3 == 2:  # a longer conversation: a follow-up turn before this one
            agree = rng.random() < 0.5
            last = last if agree else FLIP[last]
            turns.append({"message": rng.choice(AGREE if agree else DISAGREE), "answer": last})
        agree = i % 2 == 0
        message = AGREE[(i // 2) % len(AGREE)] if agree else DISAGREE[(i // 2) % len(DISAGREE)]
        rows.append({"history": turns, "message": message, "label": last if agree else FLIP[last]})
    rng.shuffle(rows)
    here = Path(__file__).parent
    for name, part in (("train", rows[:30]), ("dev", rows[30:60]), ("test", rows[60:100])):
        lines = (json.dumps(r, ensure_ascii=False) for r in part)
        (here / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
