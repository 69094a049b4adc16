"""Writes train/dev/test from the UCI Sentiment Labelled Sentences (Yelp part), seeded.

    python data/make_splits.py PATH/TO/yelp.jsonl

40 train, 40 dev and 100 test rows from one seeded shuffle of the 1000 sentences (500 positive,
500 negative); the files are committed, so the example needs no download.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def main(source: str) -> None:
    rows = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    random.Random(20261125).shuffle(rows)
    here = Path(__file__).parent
    for name, part in (("train", rows[:40]), ("dev", rows[40:80]), ("test", rows[80:180])):
        lines = (
            json.dumps({"text": r["text"], "label": r["label"]}, ensure_ascii=False) for r in part
        )
        (here / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
