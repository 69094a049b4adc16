"""Scale section worker, promptcast side: `promptcast_runtime.batch` over TREC questions with a
built module (zero-shot, vendored runtime), timed; prints one JSON object.

    .venv/bin/python bench/scale_batch.py --tree BUILD --api-base URL --rows 500 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tree", required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests-per-minute", type=float, default=None)
    args = parser.parse_args()
    sys.path.insert(0, args.tree)
    from answers import labels
    from triage.classify import question_type

    from promptcast_runtime import OpenAIClient, RowError, batch

    table = labels()
    questions = list(table)
    rows = [{"question": questions[i % len(questions)]} for i in range(args.rows)]
    client = OpenAIClient("fake-model", args.api_base, "local", max_retries=8)
    start = time.perf_counter()
    results = batch(
        question_type,
        rows,
        concurrency=args.concurrency,
        requests_per_minute=args.requests_per_minute,
        lm=client,
    )
    wall = time.perf_counter() - start
    errors = [r for r in results if isinstance(r, RowError)]
    right = sum(1 for row, r in zip(rows, results, strict=True) if r == table[row["question"]])
    json.dump(
        {
            "wall_s": wall,
            "rows": len(rows),
            "errors": len(errors),
            "right": right,
            "first_error": str(errors[0]) if errors else None,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
