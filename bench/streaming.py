"""Time to first field vs total time of a streamed call on the real local model.

Two steps, built by the runtime's own factory from literal specs (what a generated module
holds): a `predict` that answers a question in a sentence (a `str` output that grows as it
is written) and a `chain_of_thought` TREC classification (its `reasoning` streams first; the
label appears once its section is complete). Each is called `--calls` times over
`f_stream`'s path (`Step.stream_forward`) and once more without streaming, per question;
the table reports medians of: time to the first item that shows a field, time to the first
non-reasoning field, total time of the stream, and total time of the plain call.

Usage (the server serves one request at a time; keep it small):

    .venv/bin/python bench/streaming.py --base-url http://127.0.0.1:8765/v1 --model qwen0.5b \\
        --calls 5 --out bench/results/streaming.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Literal

from promptcast_runtime import OpenAIClient, build_step

QUESTIONS = [
    "Why is the sky blue?",
    "What does a compiler do?",
    "How do bees make honey?",
    "Why do we have seasons?",
    "What is a prime number?",
]
TREC = [
    "How far is it from Denver to Aspen?",
    "Who wrote the Iliad?",
    "What does NASA stand for?",
    "Where is the Eiffel Tower?",
    "How many legs does a spider have?",
]
Label = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def spec(kind: str, instructions: str, output: str) -> dict[str, Any]:
    return {
        "api": 2,
        "step": f"bench.streaming:{kind}",
        "kind": kind,
        "instructions": instructions,
        "inputs": {"question": "A question in English."},
        "outputs": {"answer": output},
        "shape": "single",
        "demos": (),
        "adapter": "chat",
        "lm_params": {"temperature": 0.0, "max_tokens": 200},
        "options": {},
    }


def measure(step: Any, question: str, lm: OpenAIClient) -> dict[str, float]:
    """One streamed call and one plain call of the same request: seconds."""
    start = time.perf_counter()
    first = first_answer = None
    items = 0
    final = None
    for part in step.stream_forward({"question": question}, lm):
        now = time.perf_counter() - start
        items += 1
        if part.fields and first is None:
            first = now
        if first_answer is None and any(k != "reasoning" for k in part.fields):
            first_answer = now
        final = part
    total = time.perf_counter() - start
    start = time.perf_counter()
    plain = step.forward({"question": question}, lm)
    plain_total = time.perf_counter() - start
    assert final is not None and final.prediction is not None
    return {
        "first_field_s": first if first is not None else total,
        "first_answer_field_s": first_answer if first_answer is not None else total,
        "stream_total_s": total,
        "plain_total_s": plain_total,
        "items": items,
        "same_answer": float(final.prediction.fields == plain.fields),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="qwen0.5b")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/streaming.md"))
    args = parser.parse_args()
    lm = OpenAIClient(args.model, args.base_url, timeout=300)
    steps = {
        "predict (str answer)": (
            build_step(
                spec("predict", "Answer the question in one or two sentences.", "The answer."),
                {"question": str},
                str,
            ),
            QUESTIONS,
        ),
        "chain_of_thought (TREC label)": (
            build_step(
                spec(
                    "chain_of_thought",
                    "Classify the kind of answer a question asks for.",
                    "The coarse TREC answer type.",
                ),
                {"question": str},
                Label,
            ),
            TREC,
        ),
    }
    rows: dict[str, list[dict[str, float]]] = {}
    for name, (step, questions) in steps.items():
        rows[name] = [measure(step, q, lm) for q in questions[: args.calls]]
    lines = [
        "# Streaming: time to first field vs total (real local model)",
        "",
        f"Model `{args.model}` (llama.cpp server, CPU, shared 2 cores), temperature 0, "
        f"max_tokens 200, chat adapter; {args.calls} questions per step, one streamed and one "
        "plain call each; medians in seconds. Command: `.venv/bin/python bench/streaming.py "
        f"--calls {args.calls}`.",
        "",
        "| step | first field | first answer field | stream total | plain total "
        "| first field / total | items | streamed final == plain parse |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, measured in rows.items():

        def med(key: str, measured: list[dict[str, float]] = measured) -> float:
            return statistics.median(m[key] for m in measured)

        same = sum(int(m["same_answer"]) for m in measured)
        lines.append(
            f"| {name} | {med('first_field_s'):.2f} | {med('first_answer_field_s'):.2f} | "
            f"{med('stream_total_s'):.2f} | {med('plain_total_s'):.2f} | "
            f"{med('first_field_s') / med('stream_total_s'):.0%} | {med('items'):.0f} | "
            f"{same}/{len(measured)} |"
        )
    lines += [
        "",
        "First field: the first item showing any field (a `str` field's first words; for chain "
        "of thought the reasoning). First answer field: the first item showing a field other than "
        "`reasoning` (a non-str field appears only once its section is complete, so for the "
        "label it comes near the end).",
        "",
        "Raw measurements:",
        "",
        "```json",
        json.dumps(rows, indent=1),
        "```",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines[: 10 + len(rows)]))


if __name__ == "__main__":
    main()
