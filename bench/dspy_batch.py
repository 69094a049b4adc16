"""Scale section worker, DSPy side: `Module.batch` of a zero-shot `dspy.Predict` over TREC
questions, timed; prints one JSON object. DSPy's cache is off (rows repeat questions, and
promptcast's runtime has no cache), its LM retries as shipped (`num_retries=3`).

    bench/.venv-dspy/bin/python bench/dspy_batch.py --api-base URL --rows 500 --threads 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from answers import labels  # noqa: E402
from dspy_trec import NO_ABORT, QuestionType  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    table = labels()
    questions = list(table)
    examples = [
        dspy.Example(question=questions[i % len(questions)]).with_inputs("question")
        for i in range(args.rows)
    ]
    lm = dspy.LM(
        "openai/fake-model", api_base=args.api_base, api_key="local", temperature=0, cache=False
    )
    dspy.configure(lm=lm)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    program = dspy.Predict(QuestionType)
    sys.stdout, saved = sys.stderr, sys.stdout
    try:
        start = time.perf_counter()
        results, failed, _ = program.batch(
            examples,
            num_threads=args.threads,
            max_errors=NO_ABORT,
            return_failed_examples=True,
            disable_progress_bar=True,
        )
        wall = time.perf_counter() - start
    finally:
        sys.stdout = saved
    right = sum(
        1
        for ex, r in zip(examples, results, strict=False)
        if r is not None and str(getattr(r, "answer", "")).strip() == table[ex.question]
    )
    json.dump(
        {"wall_s": wall, "rows": len(examples), "errors": len(failed), "right": right}, sys.stdout
    )
    print()


if __name__ == "__main__":
    main()
