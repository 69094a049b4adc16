"""DSPy 3.4.1's side of the reasoning-demos comparison (issue 22; runs in bench/.venv-dspy).

`dspy.ChainOfThought` over the same signature as `examples/counting` (question -> answer: int,
the same instruction and field descriptions), zero-shot or compiled with DSPy's
BootstrapFewShot on the same training rows, with the same demo budget, model, server, sampling
(temperature 0, max_tokens 1024) and metric (the integer equals the label), then scored on the
same test rows. One JSON object on stdout; LM calls and completion tokens counted at the HTTP
level, compile and test apart.

    bench/.venv-dspy/bin/python bench/dspy_cot_counting.py --train T.jsonl --test X.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="dspy-cot-cache-")

import dspy  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from dspy_trec import NO_ABORT, TALLY, _instrument_dspy  # noqa: E402


class CountObjects(dspy.Signature):
    """Count how many objects of the kind the question asks about are listed, adding up the
    quantities (e.g. "two drums" counts as 2) and leaving out items of other kinds."""

    question: str = dspy.InputField(
        desc='A sentence listing things someone has, ending with "How many ... do I have?".'
    )
    answer: int = dspy.OutputField(desc="The number of objects of the asked-about kind.")


def load(path: str, task: str) -> list[dspy.Example]:
    rows = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    if task == "trec":
        return [
            dspy.Example(question=r["question"], answer=r["coarse"]).with_inputs("question")
            for r in rows
        ]
    return [
        dspy.Example(question=r["question"], answer=int(r["answer"])).with_inputs("question")
        for r in rows
    ]


def exact(example: Any, pred: Any, trace: Any = None) -> float:
    if isinstance(example.answer, str):  # TREC: the label, exactly
        return float(str(getattr(pred, "answer", "")).strip() == example.answer)
    try:
        return float(int(getattr(pred, "answer", None)) == int(example.answer))
    except (TypeError, ValueError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="qwen0.5b")
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--optimizer", choices=("none", "bootstrap"), default="bootstrap")
    parser.add_argument("--max-bootstrapped-demos", type=int, default=4)
    parser.add_argument("--max-labeled-demos", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--task", choices=("counting", "trec"), default="counting")
    args = parser.parse_args()
    _instrument_dspy()
    train, test = load(args.train, args.task), load(args.test, args.task)
    with CountingProxy(args.api_base) as proxy:
        lm = dspy.LM(
            f"openai/{args.model}",
            api_base=proxy.url,
            api_key="local",
            temperature=0.0,
            max_tokens=args.max_tokens,
        )
        dspy.configure(lm=lm)
        TALLY.take()
        start = time.perf_counter()
        if args.task == "trec":
            from dspy_signatures import QuestionType

            program = dspy.ChainOfThought(QuestionType)
        else:
            program = dspy.ChainOfThought(CountObjects)
        if args.optimizer == "bootstrap":
            program = dspy.BootstrapFewShot(
                metric=exact,
                max_bootstrapped_demos=args.max_bootstrapped_demos,
                max_labeled_demos=args.max_labeled_demos,
                max_errors=NO_ABORT,
            ).compile(program, trainset=train)
        compiled = time.perf_counter()
        compile_counts, compile_tally = proxy.snapshot(), TALLY.take()
        proxy.counts.reset()
        result = dspy.Evaluate(
            devset=test, metric=exact, num_threads=args.threads, max_errors=NO_ABORT,
            display_progress=False, provide_traceback=False,
        )(program)  # fmt: skip
        end = time.perf_counter()
        test_counts, test_tally = proxy.snapshot(), TALLY.take()
    demos = program.predict.demos
    print(
        json.dumps(
            {
                "system": "dspy",
                "dspy_version": dspy.__version__,
                "optimizer": args.optimizer,
                "max_bootstrapped_demos": args.max_bootstrapped_demos,
                "max_labeled_demos": args.max_labeled_demos,
                "n_test": len(test),
                "test_score": round(sum(s for *_, s in result.results) / len(result.results), 4),
                "correct": int(sum(s for *_, s in result.results)),
                "demos": len(demos),
                "demos_with_reasoning": sum(1 for d in demos if d.get("reasoning")),
                "compile_lm_calls": compile_counts["chat"],
                "test_lm_calls": test_counts["chat"],
                "test_completion_tokens": test_counts["completion_tokens"],
                "completion_tokens_per_answer": round(
                    test_counts["completion_tokens"] / max(1, len(test)), 1
                ),
                "adapter_fallbacks": compile_tally["adapter_fallbacks"]
                + test_tally["adapter_fallbacks"],
                "parse_failures": test_tally["parse_failures"],
                "compile_wall_s": round(compiled - start, 1),
                "test_wall_s": round(end - compiled, 1),
                "answers": [str(getattr(p, "answer", None)) for _, p, _ in result.results],
            }
        )
    )


if __name__ == "__main__":
    main()
