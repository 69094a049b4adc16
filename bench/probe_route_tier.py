"""Why DSPy's zero-shot `route` scores 0.70 and ours 0.25 with qwen0.5b: the tier step alone.

The orders pipeline's second step (`shipping_tier`) gets the *gold* order of each test row here,
so extraction errors are out of the picture, and each prompt variant is sent once per row:

- `promptcast chat`: our messages, exactly as `promptcast inspect` prints them;
- `promptcast chat, order as dict[str, Any]`: the same with only the input's type description
  replaced by DSPy's, to isolate what the model keys on;
- `dspy chat`: DSPy 3.4.1's ChatAdapter messages (its first call);
- `dspy json`: DSPy's JSONAdapter messages with `response_format` json_object (the fallback
  call DSPy makes when the chat answer does not parse).

Each line prints the variant's correct count and its answers. Runs under DSPy's venv:

    bench/.venv-dspy/bin/python bench/probe_route_tier.py [--rows 20] [--api-base URL]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import dspy

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from dspy_signatures import ShippingTier  # noqa: E402

ORDERS = ROOT / "examples" / "orders"
OUR_ORDER_TYPE = (
    "(JSON object with keys: item (str), quantity (int), unit_price (float), "
    "express (bool: true or false))"
)


def ask(api_base: str, model: str, messages: list[dict[str, str]], json_mode: bool) -> str:
    payload: dict[str, Any] = {
        "model": model, "messages": messages, "temperature": 0.0, "max_tokens": 64,
    }  # fmt: skip
    if json_mode:
        payload["response_format"] = {"type": "json_object"}
    request = urllib.request.Request(
        f"{api_base}/chat/completions",
        json.dumps(payload).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return str(json.load(response)["choices"][0]["message"]["content"])


def ours(order: dict[str, Any]) -> list[dict[str, str]]:
    cli = ROOT / ".venv" / "bin" / "promptcast"
    out = subprocess.run(
        [cli, "inspect", "orders.pipeline:shipping_tier", "--json", "-i", f"order={json.dumps(order)}"],
        cwd=ORDERS, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    parsed = json.loads(out)
    return list(parsed if isinstance(parsed, list) else parsed["messages"])


def ours_as_dict(order: dict[str, Any]) -> list[dict[str, str]]:
    messages = ours(order)
    system = messages[0]["content"].replace(OUR_ORDER_TYPE, "(dict[str, Any]):")
    return [{"role": "system", "content": system}, *messages[1:]]


def dspy_messages(adapter: dspy.Adapter, order: dict[str, Any]) -> list[dict[str, str]]:
    signature = dspy.Predict(ShippingTier).signature
    return list(adapter.format(signature, demos=[], inputs={"order": order}))


def answer_of(text: str, json_mode: bool) -> str:
    if json_mode:
        try:
            return str(json.loads(text)["answer"])
        except (ValueError, KeyError, TypeError):
            return text.strip()[:40]
    return text.split("[[ ## answer ## ]]")[-1].split("[[ ##")[0].strip()[:40]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="qwen0.5b")
    args = parser.parse_args()
    lines = (ORDERS / "data" / "test.jsonl").read_text().splitlines()[: args.rows]
    rows = [json.loads(line) for line in lines]
    variants = {
        "promptcast chat": (ours, False),
        "promptcast chat, order as dict[str, Any]": (ours_as_dict, False),
        "dspy chat": (lambda o: dspy_messages(dspy.ChatAdapter(), o), False),
        "dspy json": (lambda o: dspy_messages(dspy.JSONAdapter(), o), True),
    }
    print(f"gold tiers: {dict(Counter(r['tier'] for r in rows))}")
    for name, (render, json_mode) in variants.items():
        answers = []
        for row in rows:
            order = {k: row[k] for k in ("item", "quantity", "unit_price", "express")}
            text = ask(args.api_base, args.model, render(order), json_mode)
            answers.append(answer_of(text, json_mode))
        right = sum(a == r["tier"] for a, r in zip(answers, rows, strict=True))
        print(f"{name}: {right}/{len(rows)} right; answers {dict(Counter(answers))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
