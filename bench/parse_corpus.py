"""Score a runtime's parser on the labelled corpus: correct / ParseError / silently wrong, by class.

Why: the parser promises "an error is better than a guess" (DESIGN principle 2). The corpus in
`tests/corpus/` holds real qwen0.5b completions (`real_qwen0.5b.jsonl`, collected by
`collect_corpus.py` and labelled by hand) and written ones for every class of issue 17
(`written.jsonl`), each with its correct value or "raise". This counts, per class, how many
rows a runtime parses right, refuses with `ParseError` though the answer was clear, answers
wrongly without a word (the worst outcome), or crashes on with another exception.

    .venv/bin/python bench/parse_corpus.py                      # the runtime of this checkout
    .venv/bin/python bench/parse_corpus.py --runtime DIR --label before
        # DIR holds another `promptcast_runtime` (e.g. `git archive <commit> runtime` unpacked)

Writes `results/parse_corpus_<label>.json` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
OUTCOMES = ("correct", "parse_error", "silently_wrong", "other_exception")


def load_corpus() -> list[dict[str, Any]]:
    rows = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row.setdefault("class", "real qwen0.5b")
                rows.append(row)
    return rows


def canonical(value: Any) -> str:
    """JSON with types kept apart (7 is not 7.0 is not true)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def outcome(row: dict[str, Any]) -> tuple[str, str]:
    """(one of OUTCOMES, what the parser gave) for a corpus row, with whatever runtime is
    imported as `promptcast_runtime`."""
    from promptcast_runtime import ParseError, get_adapter, to_jsonable
    from tests.corpus_schemas import SCHEMAS

    adapter = get_adapter(row["adapter"])
    try:
        got = to_jsonable(adapter.parse(SCHEMAS[row["schema"]], row["text"]))
    except ParseError as exc:
        return (
            "correct" if row["expect"] == "raise" else "parse_error"
        ), f"ParseError: {exc.reason}"
    except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
        return "other_exception", f"{type(exc).__name__}: {str(exc)[:120]}"
    if row["expect"] != "raise" and canonical(got) == canonical(row["expect"]):
        return "correct", canonical(got)
    return "silently_wrong", canonical(got)


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, dict[str, int]] = {}
    details = []
    for row in rows:
        kind, got = outcome(row)
        counts = table.setdefault(row["class"], dict.fromkeys(OUTCOMES, 0))
        counts[kind] += 1
        if kind != "correct":
            details.append({"id": row["id"], "outcome": kind, "got": got, "expect": row["expect"]})
    total = dict.fromkeys(OUTCOMES, 0)
    for counts in table.values():
        for k in OUTCOMES:
            total[k] += counts[k]
    table["all"] = total
    return {"table": table, "not_correct": details}


def markdown(result: dict[str, Any], label: str) -> str:
    lines = [
        f"Parse corpus ({label}): rows per class",
        "",
        "| class | n | correct | ParseError | silently wrong | other exception |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in result["table"].items():
        n = sum(c.values())
        lines.append(
            f"| {name} | {n} | {c['correct']} | {c['parse_error']} | {c['silently_wrong']} "
            f"| {c['other_exception']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runtime", help="a folder holding the promptcast_runtime to score")
    p.add_argument("--label", default="after")
    p.add_argument("--details", action="store_true", help="print every row not parsed right")
    args = p.parse_args(argv)
    if args.runtime:
        sys.path.insert(0, str(Path(args.runtime).resolve()))
    sys.path.insert(1 if args.runtime else 0, str(ROOT))
    sys.setrecursionlimit(1000)  # the default: a RecursionError counts as what it is
    result = score(load_corpus())
    out = ROOT / "bench" / "results" / f"parse_corpus_{args.label}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown(result, args.label))
    if args.details:
        for d in result["not_correct"]:
            print(d["id"], d["outcome"], d["got"][:100], "| expect", canonical(d["expect"])[:80])
    return 0


if __name__ == "__main__":
    sys.exit(main())
