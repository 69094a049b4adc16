"""Check that the local server's prefix cache is invisible in its answers, and time it.

Sends the same few-shot requests (three demo sets x six questions, sampled at temperature 1.0
with a fixed seed, so any difference in the logits shows in the text) in three orders against a
running server: grouped by demo set (the live prefix is reused), interleaved (saved prefixes are
restored from the LRU) and reversed. Every request must answer the same text in every order;
with --record FILE the answers are written, and with --expect FILE compared to an earlier
server's (e.g. before a restart). Stdlib only.

    python3 scripts/lm/check_prefix_cache.py http://127.0.0.1:8765/v1 [--record F | --expect F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from typing import Any

QUESTIONS = [
    "How far is it from Denver to Aspen ?",
    "What county is Modesto , California in ?",
    "Who was Galileo ?",
    "What is an atom ?",
    "When did Hawaii become a state ?",
    "What does CPR stand for ?",
]
DEMO_SETS = [
    [("What is the capital of Peru ?", "LOC"), ("Who wrote Hamlet ?", "HUM")],
    [
        ("How many feet in a mile ?", "NUM"),
        ("What is a tsunami ?", "DESC"),
        ("What is NASA ?", "ABBR"),
    ],
    [("What color is the sky ?", "ENTY")] * 3 + [("Where is Mount Fuji ?", "LOC")],
]
SYSTEM = "Classify the kind of answer a question asks for. Answer with one of ABBR, DESC, ENTY, HUM, LOC, NUM."


def request(demos: list[tuple[str, str]], question: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": SYSTEM}]
    for q, a in demos:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    prose = f"Not a label this time: in one sentence, say what kind of answer this wants and why. {question}"
    messages.append({"role": "user", "content": prose})
    return {"model": "local", "messages": messages, "temperature": 1.0, "seed": 7, "max_tokens": 40}


def ask(url: str, body: dict[str, Any]) -> tuple[str, float]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url + "/chat/completions", data, {"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as response:
        reply = json.load(response)
    return reply["choices"][0]["message"]["content"], time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--record")
    parser.add_argument("--expect")
    args = parser.parse_args()
    keys = [(d, q) for d in range(len(DEMO_SETS)) for q in range(len(QUESTIONS))]
    orders = {
        "grouped": keys,
        "interleaved": sorted(keys, key=lambda k: (k[1], k[0])),
        "reversed": keys[::-1],
    }
    answers: dict[str, dict[tuple[int, int], str]] = {}
    for name, order in orders.items():
        answers[name], seconds = {}, []
        for d, q in order:
            answers[name][(d, q)], took = ask(args.url, request(DEMO_SETS[d], QUESTIONS[q]))
            seconds.append(took)
        print(
            f"{name:12s} {len(order)} calls, {sum(seconds):6.1f} s, median {sorted(seconds)[len(seconds) // 2]:.2f} s"
        )
    first = answers["grouped"]
    differing = [k for name in orders for k in keys if answers[name][k] != first[k]]
    flat = {f"{d},{q}": first[(d, q)] for d, q in keys}
    if args.record:
        with open(args.record, "w") as out:
            json.dump(flat, out, indent=1, sort_keys=True)
    if args.expect:
        with open(args.expect) as earlier:
            expected = json.load(earlier)
        differing += [k for k in keys if expected[f"{k[0]},{k[1]}"] != first[k]]
    print(
        f"distinct answers: {len(set(first.values()))} of {len(keys)}; differing across orders/runs: {len(differing)}"
    )
    for d, q in sorted(set(differing))[:5]:
        print(f"  demo set {d}, question {q}: {[answers[n][(d, q)] for n in orders]}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
