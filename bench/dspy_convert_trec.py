"""A DSPy program optimized by DSPy, converted by `promptcast from-dspy`, scored on the same rows.

The whole claim of issue 21 in one run, against the local model:

1. DSPy side (bench/.venv-dspy, in a subprocess): `bench/dspy_convert_trec_program.py`
   (a `dspy.Module` over a TREC `dspy.Predict`) is optimized with DSPy's own
   `BootstrapFewShot` on examples/trec's train split (4 bootstrapped + 16 labeled demos, the
   example's budget), saved with `program.save(...)`, and scored on the first N test rows, one
   row at a time; every request DSPy sent (messages, parameters, completion) is kept.
2. Our side (project venv): `promptcast from-dspy` converts source + saved state, `promptcast
   build` builds it, and the built module answers the same N rows through the same server.
3. Per row: are the first request's messages byte-identical to DSPy's, is the completion the
   same, is the answer the same, and when not, why (a DSPy JSONAdapter fallback -- its second
   call -- against our lenient repair or ParseError). LM calls are counted at an HTTP proxy
   for both.

    .venv/bin/python bench/dspy_convert_trec.py --rows 50             # both sides
    .venv/bin/python bench/dspy_convert_trec.py --rows 50 --reuse     # DSPy side from disk

Writes bench/results/dspy_convert_trec/ (DSPy's saved state, both sides' rows, the converted
project) and bench/results/dspy_convert_trec.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "examples" / "trec" / "data"
OUT = HERE / "results" / "dspy_convert_trec"
RESULT = HERE / "results" / "dspy_convert_trec.json"
DSPY_PY = HERE / ".venv-dspy" / "bin" / "python"
PROMPTCAST = ROOT / ".venv" / "bin" / "promptcast"
sys.path.insert(0, str(HERE))
TIMEOUT_S = 900.0
"""Per request: the shared local server queues everyone's calls, and a client that gives up
and retries would count (and pay) one call twice."""


def rows(name: str) -> list[dict[str, str]]:
    path = DATA / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- DSPy side (runs in bench/.venv-dspy) -----------------------------------------------------


def dspy_side(args: argparse.Namespace) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="dspy-convert-cache-")
    import dspy
    from counting_proxy import CountingProxy
    from dspy_convert_trec_program import Triage

    def example(row: dict[str, str]) -> Any:
        return dspy.Example(question=row["question"], answer=row["coarse"]).with_inputs("question")

    def exact(gold: Any, pred: Any, trace: Any = None) -> bool:
        return str(getattr(pred, "answer", "")).strip() == gold.answer

    train = [example(r) for r in rows("train.jsonl")]
    test = rows("test.jsonl")[: args.rows]
    OUT.mkdir(parents=True, exist_ok=True)
    with CountingProxy(args.api_base) as proxy:
        lm = dspy.LM(
            f"openai/{args.model}",
            api_base=proxy.url,
            api_key="local",
            temperature=0,
            max_tokens=args.max_tokens,
            cache=False,
        )
        dspy.configure(lm=lm)
        t0 = time.perf_counter()
        optimizer = dspy.BootstrapFewShot(
            metric=exact, max_bootstrapped_demos=4, max_labeled_demos=16, max_errors=10**6
        )
        saved_stdout, sys.stdout = sys.stdout, sys.stderr  # DSPy prints progress
        try:
            program = optimizer.compile(Triage(), trainset=train)
        finally:
            sys.stdout = saved_stdout
        compile_calls = proxy.snapshot()["chat"]
        compile_s = time.perf_counter() - t0
        program.save(str(OUT / "dspy_state.json"))
        proxy.counts.reset()
        out_rows = []
        t1 = time.perf_counter()
        for row in test:
            before, h0 = proxy.snapshot()["chat"], len(lm.history)
            answer, error = None, None
            try:
                answer = program(question=row["question"]).answer
            except Exception as exc:  # noqa: BLE001 -- DSPy's own failure is a result
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
            requests = [
                {
                    "messages": e["messages"],
                    # The LM's own settings (temperature, max_tokens) and the call's.
                    "params": {
                        k: v
                        for k, v in {**lm.kwargs, **e["kwargs"]}.items()
                        if k != "response_format"
                    },
                    "json_mode": "response_format" in e["kwargs"],
                    "completion": _text(e["outputs"][0]),
                }
                for e in lm.history[h0:]
            ]
            out_rows.append(
                {
                    "question": row["question"],
                    "gold": row["coarse"],
                    "answer": answer,
                    "error": error,
                    "calls": proxy.snapshot()["chat"] - before,
                    "requests": requests,
                }
            )
        summary = {
            "dspy_version": dspy.__version__,
            "compile_calls": compile_calls,
            "compile_s": round(compile_s, 1),
            "eval_calls": sum(r["calls"] for r in out_rows),
            "eval_s": round(time.perf_counter() - t1, 1),
            "demos": len(program.classify.demos),
            "rows": out_rows,
        }
    (OUT / "dspy_rows.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return 0


def _text(output: Any) -> str:
    return str(output.get("text", "")) if isinstance(output, dict) else str(output)


# --- our side (project venv) ------------------------------------------------------------------


class Recorder:
    """An LM that forwards to the real client and keeps each request and completion."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def complete(self, messages: list[dict[str, str]], **params: Any) -> Any:
        from promptcast_runtime import Completion

        result = self.inner.complete(messages, **params)
        text = result.text if isinstance(result, Completion) else str(result)
        self.calls.append({"messages": messages, "params": params, "completion": text})
        return result


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def our_side(args: argparse.Namespace, dspy_rows: dict[str, Any]) -> dict[str, Any]:
    from counting_proxy import CountingProxy

    from promptcast_runtime import OpenAIClient, ParseError, using

    project = OUT / "project"
    t0 = time.perf_counter()
    convert_log = run(
        [
            str(PROMPTCAST), "from-dspy", str(HERE / "dspy_convert_trec_program.py"),
            "--state", str(OUT / "dspy_state.json"), "-o", str(project),
            "--package", "triage_dspy", "--model", f"openai/{args.model}",
            "--lm-param", f"max_tokens={args.max_tokens}", "--lm-param", "temperature=0",
            "--force",
        ],
        ROOT,
    )  # fmt: skip
    build_log = run([str(PROMPTCAST), "build"], project)
    convert_s = time.perf_counter() - t0
    sys.path.insert(0, str(project / "build"))
    import triage_dspy.dspy_convert_trec_program as built

    out_rows = []
    with CountingProxy(args.api_base) as proxy:
        recorder = Recorder(
            OpenAIClient(args.model, base_url=proxy.url, api_key="local", timeout=TIMEOUT_S)
        )
        t1 = time.perf_counter()
        with using(recorder):
            for row in dspy_rows["rows"]:
                before, c0 = proxy.snapshot()["chat"], len(recorder.calls)
                answer, error = None, None
                try:
                    answer = built.triage(question=row["question"]).answer
                except ParseError as exc:
                    error = f"ParseError: {exc.reason}"
                out_rows.append(
                    {
                        "answer": answer,
                        "error": error,
                        "calls": proxy.snapshot()["chat"] - before,
                        "requests": recorder.calls[c0:],
                    }
                )
        eval_s = time.perf_counter() - t1
    return {
        "convert_and_build_s": round(convert_s, 1),
        "eval_s": round(eval_s, 1),
        "eval_calls": sum(r["calls"] for r in out_rows),
        "convert_log": convert_log.strip().splitlines(),
        "build_log": build_log.strip().splitlines(),
        "rows": out_rows,
    }


def chat_variant(args: argparse.Namespace, theirs: dict[str, Any]) -> dict[str, Any]:
    """The converted project's lock with adapter "chat" (the same instructions and demos, our
    own prompt format), built and scored on the same rows: what the format alone changes."""
    import shutil

    from counting_proxy import CountingProxy

    from promptcast_runtime import OpenAIClient, ParseError, using

    source, project = OUT / "project", OUT / "project_chat"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("build"))
    lock_path = project / "promptcast.lock.json"
    lock = json.loads(lock_path.read_text())
    for entry in lock["functions"].values():
        entry["state"]["adapter"] = "chat"
    lock_path.write_text(json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    # Only the lock's state changes: the decorator's adapter="dspy" is part of the signature
    # (its hash), and a locked state wins over it, as after `optimize` with adapter="auto".
    run([str(PROMPTCAST), "build"], project)
    for name in [m for m in sys.modules if m.startswith("triage_dspy")]:
        del sys.modules[name]
    sys.path.insert(0, str(project / "build"))
    import triage_dspy.dspy_convert_trec_program as built

    answers = []
    with CountingProxy(args.api_base) as proxy:
        recorder = Recorder(
            OpenAIClient(args.model, base_url=proxy.url, api_key="local", timeout=TIMEOUT_S)
        )
        with using(recorder):
            for row in theirs["rows"]:
                try:
                    answers.append(built.triage(question=row["question"]).answer)
                except ParseError as exc:
                    answers.append(f"ParseError: {exc.reason}")
        calls = proxy.snapshot()["chat"]
    n = len(answers)
    gold = [r["gold"] for r in theirs["rows"]]
    return {
        "adapter": "chat",
        "accuracy": round(sum(a == g for a, g in zip(answers, gold, strict=True)) / n, 4),
        "eval_calls": calls,
        "parse_errors": sum(str(a).startswith("ParseError") for a in answers),
        "answers": answers,
    }


def explain(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    """Why a row's answer differs between DSPy and the converted module."""
    first_d, first_o = theirs["requests"][0], ours["requests"][0]
    if first_d["messages"] != first_o["messages"]:
        return "different messages (a bug in adapter 'dspy')"
    if first_d["completion"] != first_o["completion"]:
        return "same messages, different completion (the server was not deterministic)"
    if len(theirs["requests"]) > 1:
        second = theirs["requests"][1]
        outcome = (
            f"DSPy's ChatAdapter could not parse {first_d['completion']!r} and asked again with"
            f" its JSONAdapter (second call answered {second['completion']!r} ->"
            f" {theirs['answer'] or theirs['error']})"
        )
        ours_outcome = ours["answer"] if ours["error"] is None else ours["error"]
        return f"{outcome}; ours parsed the first completion once: {ours_outcome}"
    return (
        f"same completion {first_d['completion']!r}, parsed differently: DSPy"
        f" {theirs['answer'] or theirs['error']}, ours {ours['answer'] or ours['error']}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=50, help="first N test rows")
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument("--max-tokens", type=int, default=128, help="both sides (bench/dspy_trec.py's)")
    p.add_argument("--reuse", action="store_true", help="reuse the DSPy side's saved run")
    p.add_argument("--dspy-side", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--chat",
        action="store_true",
        help="only: score the converted lock under adapter chat too (needs a finished run)",
    )
    args = p.parse_args()
    if args.dspy_side:
        return dspy_side(args)
    if args.chat:
        theirs = json.loads((OUT / "dspy_rows.json").read_text())
        theirs["rows"] = theirs["rows"][: args.rows]
        summary = json.loads(RESULT.read_text())
        summary["promptcast_chat_adapter_same_lock"] = chat_variant(args, theirs)
        RESULT.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        c = summary["promptcast_chat_adapter_same_lock"]
        print(f"same lock, adapter chat: accuracy {c['accuracy']:.3f}, {c['eval_calls']} calls,"
              f" {c['parse_errors']} ParseErrors")  # fmt: skip
        return 0
    if not (args.reuse and (OUT / "dspy_rows.json").exists()):
        if not DSPY_PY.exists():
            sys.exit(f"{DSPY_PY} is missing; run `bash bench/setup_dspy.sh` first")
        cmd = [str(DSPY_PY), __file__, "--dspy-side", "--rows", str(args.rows)]
        cmd += ["--api-base", args.api_base, "--model", args.model]
        cmd += ["--max-tokens", str(args.max_tokens)]
        print("DSPy side: BootstrapFewShot + evaluation ...", file=sys.stderr)
        proc = subprocess.run(cmd, cwd=HERE, check=False)
        if proc.returncode:
            return proc.returncode
    theirs = json.loads((OUT / "dspy_rows.json").read_text())
    theirs["rows"] = theirs["rows"][: args.rows]
    print("our side: from-dspy, build, evaluation ...", file=sys.stderr)
    ours = our_side(args, theirs)
    (OUT / "ours_rows.json").write_text(json.dumps(ours, indent=1, ensure_ascii=False) + "\n")
    pairs = list(zip(theirs["rows"], ours["rows"], strict=True))
    n = len(pairs)
    same_messages = sum(
        d["requests"][0]["messages"] == o["requests"][0]["messages"] for d, o in pairs
    )
    same_completion = sum(
        d["requests"][0]["completion"] == o["requests"][0]["completion"] for d, o in pairs
    )
    differing = [
        {"row": i, "question": d["question"], "gold": d["gold"], "dspy": d["answer"] or d["error"],
         "ours": o["answer"] or o["error"], "why": explain(d, o)}
        for i, (d, o) in enumerate(pairs)
        if (d["answer"], d["error"] is None) != (o["answer"], o["error"] is None)
    ]  # fmt: skip
    fallback_rows = [i for i, (d, _) in enumerate(pairs) if len(d["requests"]) > 1]
    summary = {
        "task": "trec",
        "model": args.model,
        "rows": n,
        "max_tokens": args.max_tokens,
        "dspy_version": theirs["dspy_version"],
        "dspy": {
            "accuracy": round(sum(d["answer"] == d["gold"] for d, _ in pairs) / n, 4),
            "compile_calls": theirs["compile_calls"],
            "eval_calls": sum(d["calls"] for d, _ in pairs),
            "fallback_rows": fallback_rows,
            "errors": sum(d["error"] is not None for d, _ in pairs),
            "demos": theirs["demos"],
            "compile_s": theirs["compile_s"],
        },
        "promptcast": {
            "accuracy": round(sum(o["answer"] == d["gold"] for d, o in pairs) / n, 4),
            "compile_calls": 0,
            "eval_calls": ours["eval_calls"],
            "parse_errors": sum(o["error"] is not None for _, o in pairs),
            "convert_and_build_s": ours["convert_and_build_s"],
        },
        "first_request_messages_identical": f"{same_messages}/{n}",
        "first_completion_identical": f"{same_completion}/{n}",
        "request_params": {
            "dspy": theirs["rows"][0]["requests"][0]["params"],
            "promptcast": ours["rows"][0]["requests"][0]["params"],
        },
        "rows_differing": differing,
    }
    no_fallback = [i for i in range(n) if i not in fallback_rows]
    summary["accuracy_on_rows_without_dspy_fallback"] = {
        "rows": len(no_fallback),
        "dspy": round(sum(pairs[i][0]["answer"] == pairs[i][0]["gold"] for i in no_fallback)
                      / max(1, len(no_fallback)), 4),
        "promptcast": round(sum(pairs[i][1]["answer"] == pairs[i][0]["gold"] for i in no_fallback)
                            / max(1, len(no_fallback)), 4),
    }  # fmt: skip
    RESULT.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    d, o = summary["dspy"], summary["promptcast"]
    print(
        f"DSPy {theirs['dspy_version']} BootstrapFewShot ({d['demos']} demos): accuracy"
        f" {d['accuracy']:.3f} on {n} rows, {d['compile_calls']} compile + {d['eval_calls']} eval"
        f" calls, {len(fallback_rows)} JSONAdapter fallbacks, {d['errors']} errors"
    )
    print(
        f"promptcast from-dspy + build: accuracy {o['accuracy']:.3f}, 0 compile +"
        f" {o['eval_calls']} eval calls, {o['parse_errors']} ParseErrors"
    )
    print(
        f"first request messages identical: {summary['first_request_messages_identical']};"
        f" completions identical: {summary['first_completion_identical']}"
    )
    for row in differing:
        print(
            f"  row {row['row']}: gold {row['gold']} dspy {row['dspy']} ours {row['ours']}: {row['why']}"
        )
    print(f"wrote {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
