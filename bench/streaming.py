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

from promptcast_runtime import Completion, OpenAIClient, ParseError, build_step

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


def measure(step: Any, question: str, lm: OpenAIClient, plain_first: bool) -> dict[str, Any]:
    """One streamed call and one plain call of the same request (in either order): seconds,
    and whether both ended alike (the same fields, or the same ParseError on the same raw
    text)."""
    if plain_first:
        plain, plain_total = _plain(step, question, lm)
    start = time.perf_counter()
    first = first_answer = None
    items = 0
    streamed: Any = None
    try:
        for part in step.stream_forward({"question": question}, lm):
            now = time.perf_counter() - start
            items += 1
            if part.fields and first is None:
                first = now
            if first_answer is None and any(k != "reasoning" for k in part.fields):
                first_answer = now
            if part.prediction is not None:
                streamed = part.prediction.fields
    except ParseError as exc:  # a cut-off or unparsable answer: as the plain call ends
        streamed = ("ParseError", exc.raw)
    total = time.perf_counter() - start
    if not plain_first:
        plain, plain_total = _plain(step, question, lm)
    return {
        "first_field_s": first if first is not None else total,
        "first_answer_field_s": first_answer if first_answer is not None else total,
        "stream_total_s": total,
        "plain_total_s": plain_total,
        "items": items,
        "same_answer": float(streamed == plain),
        "parsed": float(not isinstance(plain, tuple)),
    }


def _plain(step: Any, question: str, lm: OpenAIClient) -> tuple[Any, float]:
    start = time.perf_counter()
    try:
        plain: Any = step.forward({"question": question}, lm).fields
    except ParseError as exc:
        plain = ("ParseError", exc.raw)
    return plain, time.perf_counter() - start


class _Pieces:
    """An LM answering at once, in pieces of `size` characters: the runtime's own cost."""

    def __init__(self, text: str, size: int) -> None:
        self.text, self.size = text, size

    def complete(self, messages: Any, **params: Any) -> Completion:
        return Completion(self.text, finish_reason="stop")

    def stream(self, messages: Any, **params: Any) -> Any:
        for i in range(0, len(self.text), self.size):
            yield self.text[i : i + self.size]
        yield Completion("", finish_reason="stop")


def runtime_cost(step: Any, text: str, calls: int = 200) -> dict[str, float]:
    """Milliseconds per call of the plain path and of the streamed path (4-character pieces,
    a partial parse per piece) against an LM that answers at once: what streaming adds on the
    client, apart from the model."""
    lm = _Pieces(text, 4)
    inputs = {"question": "How far is it from Denver to Aspen?"}
    out = {}
    for label, run in (
        ("plain_ms", lambda: step.forward(inputs, lm)),
        ("stream_ms", lambda: list(step.stream_forward(inputs, lm))),
    ):
        run()
        start = time.perf_counter()
        for _ in range(calls):
            run()
        out[label] = (time.perf_counter() - start) / calls * 1000
    out["chars"] = len(text)
    return out


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
    cot_text = (
        "[[ ## reasoning ## ]]\n"
        + "The question asks for a distance between two places, measured in miles. " * 6
        + "\n\n[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]"
    )
    costs = runtime_cost(steps["chain_of_thought (TREC label)"][0], cot_text)
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, (step, questions) in steps.items():
        # Warm: the server keeps the step's system-message prefix evaluated, so the first call
        # of a step would pay for it in whichever form came first.
        _plain(step, "Hello?", lm)
        rows[name] = [
            measure(step, q, lm, plain_first=i % 2 == 1)
            for i, q in enumerate(questions[: args.calls])
        ]
    lines = [
        "# Streaming: time to first field vs total (real local model)",
        "",
        f"Model `{args.model}` (llama.cpp server, CPU, shared 2 cores), temperature 0, "
        f"max_tokens 200, chat adapter; {args.calls} questions per step, one streamed and one "
        "plain call each (alternating which goes first, after one warm-up call per step); "
        "medians in seconds. The machine is shared with other work (load ~4 on 2 cores): single "
        "timings are noisy, ratios within a row less so. Command: `.venv/bin/python "
        f"bench/streaming.py --base-url URL --calls {args.calls}` (URL: a server of its own, "
        "started with `scripts/lm/start.sh qwen0.5b 8767 --interrupt_requests False`: the "
        "default server stops a stream whenever another request waits).",
        "",
        "| step | first field | first answer field | stream total | plain total "
        "| first field / total | items | streamed final == plain call | parsed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, measured in rows.items():

        def med(key: str, measured: list[dict[str, Any]] = measured) -> float:
            return float(statistics.median(m[key] for m in measured))

        same = sum(int(m["same_answer"]) for m in measured)
        parsed = sum(int(m["parsed"]) for m in measured)
        lines.append(
            f"| {name} | {med('first_field_s'):.2f} | {med('first_answer_field_s'):.2f} | "
            f"{med('stream_total_s'):.2f} | {med('plain_total_s'):.2f} | "
            f"{med('first_field_s') / med('stream_total_s'):.0%} | {med('items'):.0f} | "
            f"{same}/{len(measured)} | {parsed}/{len(measured)} |"
        )
    lines += [
        "",
        "First field: the first item showing any field (a `str` field's first words; for chain "
        "of thought the reasoning). First answer field: the first item showing a field other than "
        "`reasoning` (a non-str field appears only once its section is complete, so for the "
        "label it comes near the end). Streamed final == plain call: the same fields, or the "
        "same ParseError on the same raw text (a verbose answer cut off by max_tokens ends in "
        "ParseError both ways, as the finish_reason rules say); parsed: the plain call parsed.",
        "",
        f"Runtime cost apart from the model (an LM answering at once, a {costs['chars']:.0f}-"
        "character chain-of-thought completion in 4-character pieces, a partial parse per "
        f"piece; mean of 200 calls): plain call {costs['plain_ms']:.2f} ms, streamed call "
        f"{costs['stream_ms']:.2f} ms.",
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
