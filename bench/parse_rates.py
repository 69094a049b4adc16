"""Parse-failure rate and score of a runtime on the completions `parse_failures.py` stored.

Why: `parse_failures.py` also runs DSPy's parsers (it needs `bench/.venv-dspy`) and calls the
model again when its cache is gone. To compare two versions of our own parser -- does the
precision of issue 17 cost accuracy where answers are clear? -- only the lenient column is
needed, on the very same completions: `results/raw/{trec,orders}_{chat,json}_zero_shot.jsonl`
(one zero-shot qwen0.5b call per test row) and the few-shot TREC completions in
`results/raw/trec_qwen0.5b_chat.jsonl`. No LM call is made.

    .venv/bin/python bench/parse_rates.py [--runtime DIR] [--label NAME]
    .venv/bin/python bench/parse_rates.py --collect N [--api-base URL]

`--collect N` calls the model again for the first N test rows of each task and adapter, with
the messages and LM parameters the examples' zero-shot predictors render today, and keeps the
completions in `results/raw/parse_rates_live.jsonl` (parsed like the others afterwards: a
fresh sample, in case the prompts changed since the stored completions were made).

`--runtime DIR` parses with another `promptcast_runtime` (e.g. `git archive <commit>
runtime` unpacked into DIR). Prints a markdown table and writes
`results/parse_rates_<label>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "bench" / "results" / "raw"
FILES: dict[str, tuple[str, str, str]] = {
    "trec chat": ("trec_chat_zero_shot", "trec", ""),
    "trec json": ("trec_json_zero_shot", "trec", ""),
    "orders chat": ("orders_chat_zero_shot", "order", ""),
    "orders json": ("orders_json_zero_shot", "order", ""),
    "trec chat few-shot": ("trec_qwen0.5b_chat", "trec", ""),
}
"""Group -> (stored file, corpus schema, adapter of a live group or "")."""


LIVE = RAW / "parse_rates_live.jsonl"


def collect(n: int, api_base: str, model: str) -> None:
    import urllib.request

    sys.path.insert(0, str(ROOT / "bench"))
    from parse_failures import TASKS, zero_shot_predictors

    rows = []
    for (task, adapter), predictor in zero_shot_predictors().items():
        folder = TASKS[task][0]
        path = ROOT / "examples" / folder / "data" / "test.jsonl"
        data = [json.loads(x) for x in path.read_text().splitlines() if x.strip()][:n]
        params = {**predictor._request(_NoLM(), {})}
        for expected in data:
            inputs = {f.name: expected[f.name] for f in predictor.signature.inputs}
            body = {"model": model, "messages": predictor.messages(inputs), **params}
            request = urllib.request.Request(
                f"{api_base}/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                text = json.loads(response.read())["choices"][0]["message"]["content"] or ""
            rows.append({"task": task, "adapter": adapter, "expected": expected, "text": text})
            print(task, adapter, repr(text[:60]), file=sys.stderr, flush=True)
    LIVE.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


class _NoLM:
    def complete(self, messages: Any, **params: Any) -> str:
        raise AssertionError("not called")


def score(schema: str, expected: dict[str, Any] | None, fields: dict[str, Any] | None) -> float:
    """The examples' metrics: TREC exact label; orders the fraction of four fields right."""
    if expected is None or fields is None:
        return 0.0
    if schema == "trec":
        return float(fields["answer"] == expected["coarse"])
    right = 0
    for name in ("item", "quantity", "unit_price", "express"):
        got, want = fields[name], expected[name]
        if name == "item":
            right += isinstance(got, str) and got.strip().lower() == str(want).lower()
        elif name == "unit_price":
            right += abs(float(got) - float(want)) < 0.005
        else:
            right += got == want
    return right / 4


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runtime", help="a folder holding the promptcast_runtime to score")
    p.add_argument("--label", default="after")
    p.add_argument("--collect", type=int, default=0, metavar="N")
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    args = p.parse_args(argv)
    if args.collect:
        collect(args.collect, args.api_base, args.model)
        return 0
    if args.runtime:
        sys.path.insert(0, str(Path(args.runtime).resolve()))
    sys.path.insert(1 if args.runtime else 0, str(ROOT))
    from promptcast_runtime import ParseError, get_adapter
    from tests.corpus_schemas import SCHEMAS

    table: list[dict[str, Any]] = []
    groups = dict(FILES)
    if LIVE.exists():
        groups.update(
            {f"{t} {a} live": ("", t, a) for t in ("trec", "orders") for a in ("chat", "json")}
        )
    for label, (name, schema, live) in groups.items():
        if live:
            rows = [json.loads(x) for x in LIVE.read_text().splitlines() if x]
            rows = [r for r in rows if (r["task"], r["adapter"]) == (schema, live)]
            schema = "order" if schema == "orders" else schema
        else:
            rows = [json.loads(x) for x in (RAW / f"{name}.jsonl").read_text().splitlines() if x]
        if "few-shot" in label:
            rows = [{**r, "adapter": "chat"} for r in rows if r.get("demos", 0) > 0]
        failures, total, reasons = 0, 0.0, set()
        for row in rows:
            try:
                fields = get_adapter(row["adapter"]).parse(SCHEMAS[schema], row["text"])
            except ParseError as exc:
                failures, fields = failures + 1, None
                reasons.add(exc.reason[:80])
            total += score(schema, row.get("expected"), fields)
        zero_shot = "few-shot" not in label
        table.append(
            {
                "completions": label,
                "n": len(rows),
                "parse_failures": failures,
                "score": round(total / len(rows), 4) if zero_shot else None,
                "reasons": sorted(reasons)[:6],
            }
        )
    out = ROOT / "bench" / "results" / f"parse_rates_{args.label}.json"
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"| completions ({args.label}) | n | parse failures | score |")
    print("|---|---|---|---|")
    for r in table:
        sc = "" if r["score"] is None else f"{r['score']:.3f}"
        pct = 100 * r["parse_failures"] / r["n"]
        print(f"| {r['completions']} | {r['n']} | {r['parse_failures']} ({pct:.0f}%) | {sc} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
