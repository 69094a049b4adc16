"""Section 3 worker, DSPy side: one BootstrapFewShot or random-search compile, timed.

Run inside `bench/.venv-dspy` against the fake latency server; prints one JSON object. The
signature, data, metric and optimizer parameters match `promptcast optimize` on the TREC
example (`dspy_trec.py` holds the same choices for the real model). DSPy's cache is on, as a
user has it, but empty at the start (a temp dir), as promptcast's `.promptcast/` is.

`--evaluate-dev` also scores the program on dev before and after compiling (what promptcast's
optimizers always do, to record both scores in the lock), so the pair can be compared like for
like as well as stock against stock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="dspy-opt-cache-")
_T0 = time.perf_counter()

import dspy  # noqa: E402
from dspy_trec import NO_ABORT, QuestionType, exact_match, load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--optimizer", choices=("bootstrap", "random_search"), required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--max-bootstrapped-demos", type=int, default=4)
    parser.add_argument("--max-labeled-demos", type=int, default=16)
    parser.add_argument("--evaluate-dev", action="store_true")
    args = parser.parse_args()
    import_s = time.perf_counter() - _T0
    train, dev = load("train.jsonl"), load("dev.jsonl")
    lm = dspy.LM("openai/fake-model", api_base=args.api_base, api_key="local", temperature=0)
    dspy.configure(lm=lm)
    dspy.configure_cache(
        enable_disk_cache=True,
        enable_memory_cache=True,
        disk_cache_dir=os.environ["DSPY_CACHEDIR"],
    )
    evaluate = dspy.Evaluate(
        devset=dev,
        metric=exact_match,
        num_threads=args.threads,
        max_errors=NO_ABORT,
        display_progress=False,
        provide_traceback=False,
    )
    out: dict[str, Any] = {"system": "dspy", "optimizer": args.optimizer, "import_s": import_s}
    start = time.perf_counter()
    sys.stdout, saved = sys.stderr, sys.stdout  # DSPy prints progress; stdout is for the JSON
    try:
        student = dspy.Predict(QuestionType)
        if args.evaluate_dev:
            out["dev_before"] = evaluate(student).score
        if args.optimizer == "bootstrap":
            program = dspy.BootstrapFewShot(
                metric=exact_match,
                max_bootstrapped_demos=args.max_bootstrapped_demos,
                max_labeled_demos=args.max_labeled_demos,
                max_errors=NO_ABORT,
            ).compile(student, trainset=train)
        else:
            program = dspy.BootstrapFewShotWithRandomSearch(
                metric=exact_match,
                max_bootstrapped_demos=args.max_bootstrapped_demos,
                max_labeled_demos=args.max_labeled_demos,
                num_candidate_programs=args.candidates,
                num_threads=args.threads,
                max_errors=NO_ABORT,
            ).compile(student, trainset=train, valset=dev)
        if args.evaluate_dev:
            out["dev_after"] = evaluate(program).score
    finally:
        sys.stdout = saved
    out["optimize_s"] = time.perf_counter() - start
    out["demos"] = sum(len(p.demos) for p in program.predictors())
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
