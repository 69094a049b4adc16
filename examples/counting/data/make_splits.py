"""Writes train/dev/test from the shared BIG-bench object_counting splits.

    python data/make_splits.py PATH/TO/object_counting

train (40) and dev (40) from one seeded shuffle of the shared train split (it has no dev
split); test is the first 50 rows of the shared test split, in order. The files are committed,
so the example needs no download.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write(path: Path, rows: list[dict[str, object]]) -> None:
    lines = (
        json.dumps({"question": r["question"], "answer": r["answer"]}, ensure_ascii=False)
        for r in rows
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(source: str) -> None:
    here = Path(__file__).parent
    train = read(Path(source) / "train.jsonl")
    random.Random(20261201).shuffle(train)
    write(here / "train.jsonl", train[:40])
    write(here / "dev.jsonl", train[40:80])
    write(here / "test.jsonl", read(Path(source) / "test.jsonl")[:50])


if __name__ == "__main__":
    main(sys.argv[1])
