"""DSPy 3.4.1 baseline on the TREC example: Predict, BootstrapFewShot, random search, MIPROv2, COPRO, GEPA.

Why: promptcast claims equal or better accuracy than DSPy with no more LM calls and less
wall time. This script produces DSPy's side of that comparison on exactly the data,
instruction, output type, model and server that ``examples/trec`` uses.

Runs inside ``bench/.venv-dspy`` (made by ``bench/setup_dspy.sh``), never the project venv:

    bench/.venv-dspy/bin/python bench/dspy_trec.py --api-base http://127.0.0.1:8765/v1

What is counted, per optimizer (one JSON object per line on stdout, then a table on stderr):
- ``lm_calls``: requests that reached the server, counted by a local HTTP proxy
  (``counting_proxy.py``) between DSPy and the server, split into compile and evaluation.
  This includes litellm retries and ChatAdapter -> JSONAdapter fallbacks, and excludes DSPy
  cache hits. Each optimizer starts from a fresh, empty DSPy cache (memory and a temp dir),
  so nothing carries over between optimizers or from earlier runs.
- ``lm_history_calls``: what DSPy itself records in ``lm.history`` (includes cache hits).
- ``adapter_fallbacks``: ChatAdapter parse failures that made DSPy ask again with JSONAdapter.
- ``parse_failures``: predictions that still failed after the fallback (scored 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at litellm import
_CACHE_ROOT = tempfile.mkdtemp(prefix="dspy-trec-cache-")
os.environ["DSPY_CACHEDIR"] = _CACHE_ROOT  # never touch ~/.dspy_cache

import dspy  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from dspy.adapters.chat_adapter import ChatAdapter  # noqa: E402
from dspy.utils.exceptions import AdapterParseError  # noqa: E402
from dspy_signatures import QuestionType, Sentiment  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
OPTIMIZERS = (
    "predict", "bootstrap", "random_search", "mipro", "copro", "gepa", "simba", "knn", "ensemble"
)  # fmt: skip
DEV_SCORED = ("random_search", "mipro", "copro", "gepa", "ensemble")  # they score on dev
NO_ABORT = 10**6  # max_errors: evaluation and bootstrapping never stop on errors


class _Tally:
    """Counts adapter fallbacks and final parse failures, DSPy-wide and thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fallbacks = 0
        self.parse_failures = 0

    def bump(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def take(self) -> dict[str, int]:
        with self.lock:
            out = {"adapter_fallbacks": self.fallbacks, "parse_failures": self.parse_failures}
            self.fallbacks = self.parse_failures = 0
            return out


TALLY = _Tally()


def _instrument_dspy() -> None:
    """Wrap the two DSPy points where a parse failure shows, without changing behaviour."""
    make_fallback = ChatAdapter._make_json_adapter_fallback

    def counted_fallback(self: ChatAdapter) -> Any:
        TALLY.bump("fallbacks")
        return make_fallback(self)

    ChatAdapter._make_json_adapter_fallback = counted_fallback  # type: ignore[method-assign]

    predict_call = dspy.Predict.__call__

    def counted_call(self: dspy.Predict, *args: Any, **kwargs: Any) -> Any:
        try:
            return predict_call(self, *args, **kwargs)
        except AdapterParseError:
            TALLY.bump("parse_failures")
            raise

    dspy.Predict.__call__ = counted_call  # type: ignore[method-assign]


TASKS: dict[str, tuple[type[dspy.Signature], str, str]] = {
    # task: (signature, input field = column, label column); data in examples/<task>/data
    "trec": (QuestionType, "question", "coarse"),
    "sentiment": (Sentiment, "text", "label"),
}
TASK = "trec"


def load(name: str) -> list[dspy.Example]:
    _, field, label = TASKS[TASK]
    path = EXAMPLES / TASK / "data" / name
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [dspy.Example(**{field: r[field], "answer": r[label]}).with_inputs(field) for r in rows]


def exact_match(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> bool:
    """The label, exactly (the Literal type already restricts the value set)."""
    return str(getattr(prediction, "answer", "")).strip() == example.answer


def gepa_metric(gold: dspy.Example, pred: dspy.Prediction, trace: Any = None, *_: Any) -> float:
    """GEPA's five-argument metric: the same exact match, no feedback text (ours gets none)."""
    return float(exact_match(gold, pred))


def fresh_cache(name: str, enabled: bool) -> None:
    """Give each optimizer an empty cache, so its counts do not depend on what ran before."""
    dspy.configure_cache(
        enable_disk_cache=enabled,
        enable_memory_cache=enabled,
        disk_cache_dir=os.path.join(_CACHE_ROOT, name),
    )


def compile_program(
    name: str, train: list[dspy.Example], dev: list[dspy.Example], args: argparse.Namespace
) -> dspy.Module:
    student = dspy.Predict(TASKS[TASK][0])
    if name == "predict":
        return student
    demos = {  # the demo budget and error policy every demo optimizer here shares
        "metric": exact_match,
        "max_bootstrapped_demos": args.max_bootstrapped,
        "max_labeled_demos": args.max_labeled,
        "max_errors": NO_ABORT,
    }
    if name == "bootstrap":
        return dspy.BootstrapFewShot(**demos).compile(student, trainset=train)
    if name == "random_search":
        opt = dspy.BootstrapFewShotWithRandomSearch(
            **demos, num_candidate_programs=args.candidates, num_threads=args.threads
        )
        return opt.compile(student, trainset=train, valset=dev)
    if name == "mipro":
        mipro = dspy.MIPROv2(
            **demos, auto=args.mipro_auto, num_threads=args.threads, seed=args.seed
        )
        # DSPy requires minibatch_size <= len(valset); its default (35) otherwise.
        return mipro.compile(student, trainset=train, valset=dev, minibatch_size=min(35, len(dev)))
    if name == "copro":
        copro = dspy.COPRO(metric=exact_match, breadth=args.copro_breadth, depth=args.copro_depth)
        # COPRO scores candidates on its trainset; ours scores them on dev: give it dev.
        eval_kwargs = {"num_threads": args.threads, "display_progress": False}
        return copro.compile(student, trainset=dev, eval_kwargs=eval_kwargs)
    if name == "simba":
        simba = dspy.SIMBA(
            metric=exact_match, bsize=args.simba_bsize, num_candidates=args.simba_candidates,
            max_steps=args.simba_steps, max_demos=args.simba_max_demos, num_threads=args.threads,
        )  # fmt: skip
        return simba.compile(student, trainset=train, seed=args.seed)
    if name == "knn":
        # KNNFewShot needs an Embedder; no embedding model may be downloaded here, so it gets
        # a bag-of-words vectorizer (hashed word counts) -- the lexical match BM25 makes ours.
        knn = dspy.KNNFewShot(
            args.knn_k, train, dspy.Embedder(_bag_of_words), **demos  # type: ignore[arg-type]
        )
        return knn.compile(student)
    if name == "ensemble":
        search = dspy.BootstrapFewShotWithRandomSearch(
            **demos, num_candidate_programs=args.candidates, num_threads=args.threads
        )
        searched = search.compile(student, trainset=train, valset=dev)
        ranked = sorted(searched.candidate_programs, key=lambda c: -c["score"])
        members = [c["program"] for c in ranked[: args.ensemble_size]]
        return dspy.Ensemble(reduce_fn=dspy.majority).compile(members)
    gepa = dspy.GEPA(
        metric=gepa_metric,
        max_metric_calls=args.gepa_budget,
        # The task model, as ours without --reflection-model, sampled as ours samples it.
        reflection_lm=dspy.settings.lm.copy(temperature=1.0, max_tokens=256),
        num_threads=args.threads,
        seed=args.seed,
    )
    return gepa.compile(student, trainset=train, valset=dev)


def _bag_of_words(texts: list[str]) -> Any:
    """Unit-length hashed word-count vectors (512 buckets): a lexical, offline vectorizer."""
    import re

    import numpy as np

    out = np.zeros((len(texts), 512), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % 512] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def run_one(
    name: str,
    lm: dspy.LM,
    proxy: CountingProxy,
    data: dict[str, list[dspy.Example]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Compile with one optimizer and evaluate on test; every figure from this run alone."""
    fresh_cache(name, enabled=not args.no_cache)
    proxy.counts.reset()
    TALLY.take()
    history0 = len(lm.history)
    t0 = time.perf_counter()
    with _quiet_stdout():
        program = compile_program(name, data["train"], data["dev"], args)
    t1 = time.perf_counter()
    compile_counts, compile_tally = proxy.snapshot(), TALLY.take()
    proxy.counts.reset()
    evaluate = dspy.Evaluate(
        devset=data["test"],
        metric=exact_match,
        num_threads=args.threads,
        max_errors=NO_ABORT,
        display_progress=False,
        provide_traceback=False,
    )
    result = evaluate(program)
    t2 = time.perf_counter()
    eval_counts, eval_tally = proxy.snapshot(), TALLY.take()
    unparsed = sum(1 for _, pred, _ in result.results if getattr(pred, "answer", None) is None)
    demos = sum(len(p.demos) for p in program.predictors())
    return {
        **_row_header(name, args),
        "n_train": len(data["train"]),
        "n_dev": len(data["dev"]) if name in DEV_SCORED else 0,
        "n_test": len(data["test"]),
        "test_accuracy": round(sum(s for *_, s in result.results) / len(result.results), 4),
        "lm_calls": compile_counts["chat"] + eval_counts["chat"],
        "compile_lm_calls": compile_counts["chat"],
        "eval_lm_calls": eval_counts["chat"],
        "http_status": _merge(compile_counts["status"], eval_counts["status"]),
        "lm_history_calls": len(lm.history) - history0,
        "adapter_fallbacks": compile_tally["adapter_fallbacks"] + eval_tally["adapter_fallbacks"],
        "eval_adapter_fallbacks": eval_tally["adapter_fallbacks"],
        "parse_failures": compile_tally["parse_failures"] + eval_tally["parse_failures"],
        "eval_unparsed_predictions": unparsed,
        "prompt_tokens": compile_counts["prompt_tokens"] + eval_counts["prompt_tokens"],
        "completion_tokens": compile_counts["completion_tokens"] + eval_counts["completion_tokens"],
        "demos": demos,
        "max_bootstrapped": args.max_bootstrapped,
        "max_labeled": args.max_labeled,
        "wall_s": round(t2 - t0, 2),
        "compile_wall_s": round(t1 - t0, 2),
        "eval_wall_s": round(t2 - t1, 2),
        "threads": args.threads,
        "candidates": args.candidates if name == "random_search" else None,
        "params": _params(name, args),
        "cache": "off" if args.no_cache else "fresh per optimizer",
        "max_tokens": args.max_tokens,
    }


def failed_row(
    name: str, args: argparse.Namespace, exc: BaseException, proxy: CountingProxy
) -> dict[str, Any]:
    """The row of an optimizer that raised: what it spent until then, and the error."""
    return {
        **_row_header(name, args),
        "test_accuracy": None,
        "lm_calls": proxy.snapshot()["chat"],
        "error": f"{type(exc).__name__}: {exc}"[:500],
        "max_bootstrapped": args.max_bootstrapped,
        "max_labeled": args.max_labeled,
        "params": _params(name, args),
    }


def _row_header(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """What identifies a row: system, version, optimizer, task, model."""
    return {
        "system": "dspy",
        "dspy_version": dspy.__version__,
        "optimizer": name,
        "task": TASK,
        "model": args.model,
    }


def _params(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The optimizer-specific settings of this row (the demo budget has its own fields)."""
    if name == "mipro":
        return {"auto": args.mipro_auto, "seed": args.seed}
    if name == "copro":
        return {"breadth": args.copro_breadth, "depth": args.copro_depth}
    if name == "gepa":
        return {"max_metric_calls": args.gepa_budget, "seed": args.seed}
    if name == "simba":
        return {"bsize": args.simba_bsize, "num_candidates": args.simba_candidates,
                "max_steps": args.simba_steps, "max_demos": args.simba_max_demos}  # fmt: skip
    if name == "knn":
        return {"k": args.knn_k, "vectorizer": "bag of words (512 hashed buckets)"}
    if name == "ensemble":
        return {"size": args.ensemble_size, "reduce": "majority"}
    return {}


def _merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


class _quiet_stdout:  # noqa: N801
    """DSPy optimizers print progress to stdout; keep stdout for JSON lines only."""

    def __enter__(self) -> None:
        self._saved = sys.stdout
        sys.stdout = sys.stderr

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._saved


def table(rows: list[dict[str, Any]]) -> str:
    cols: list[tuple[str, str, Callable[[Any], str]]] = [
        ("optimizer", "optimizer", str),
        ("acc", "test_accuracy", lambda v: f"{v:.3f}"),
        ("n", "n_test", str),
        ("calls", "lm_calls", str),
        ("compile", "compile_lm_calls", str),
        ("eval", "eval_lm_calls", str),
        ("fallbacks", "adapter_fallbacks", str),
        ("parse_fail", "parse_failures", str),
        ("wall_s", "wall_s", lambda v: f"{v:.1f}"),
    ]
    lines = [[h for h, _, _ in cols]] + [[f(r[k]) for _, k, f in cols] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) for line in lines
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="trec", help="examples/<task>")
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b", help="served model alias (litellm: openai/MODEL)")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--candidates", type=int, default=4, help="random search candidate programs")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--max-bootstrapped", type=int, default=4, help="DSPy's default: 4")
    p.add_argument("--max-labeled", type=int, default=16, help="DSPy's default: 16")
    p.add_argument("--quick", action="store_true", help="20 test rows and 20 dev rows")
    p.add_argument("--test-rows", type=int, help="the first N test rows (default: all)")
    p.add_argument("--dev-rows", type=int, help="the first N dev rows (default: all)")
    p.add_argument("--seed", type=int, default=0, help="mipro and gepa")
    p.add_argument("--mipro-auto", default="light", choices=("light", "medium", "heavy"))
    p.add_argument("--copro-breadth", type=int, default=10, help="DSPy's default: 10")
    p.add_argument("--copro-depth", type=int, default=3, help="DSPy's default: 3")
    p.add_argument("--gepa-budget", type=int, default=150, help="GEPA's max_metric_calls")
    p.add_argument("--simba-bsize", type=int, default=32)
    p.add_argument("--simba-candidates", type=int, default=6)
    p.add_argument("--simba-steps", type=int, default=8)
    p.add_argument("--simba-max-demos", type=int, default=4)
    p.add_argument("--knn-k", type=int, default=3)
    p.add_argument("--ensemble-size", type=int, default=3)
    p.add_argument(
        "--only", default=",".join(OPTIMIZERS), help="comma list of " + ",".join(OPTIMIZERS)
    )
    p.add_argument("--no-cache", action="store_true", help="disable DSPy's cache entirely")
    args = p.parse_args(argv)
    args.only = [o.strip() for o in args.only.split(",") if o.strip()]
    unknown = set(args.only) - set(OPTIMIZERS)
    if unknown:
        p.error(f"--only: unknown {sorted(unknown)}; choose from {OPTIMIZERS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global TASK
    TASK = args.task
    _instrument_dspy()
    data = {"train": load("train.jsonl"), "dev": load("dev.jsonl"), "test": load("test.jsonl")}
    if args.quick:
        args.test_rows, args.dev_rows = args.test_rows or 20, args.dev_rows or 20
    data["dev"] = data["dev"][: args.dev_rows]  # None: all rows
    data["test"] = data["test"][: args.test_rows]
    rows: list[dict[str, Any]] = []
    with CountingProxy(args.api_base) as proxy:
        lm = dspy.LM(
            f"openai/{args.model}",
            api_base=proxy.url,
            api_key="local",
            temperature=0,
            max_tokens=args.max_tokens,
            cache=not args.no_cache,
        )
        dspy.configure(lm=lm)
        for name in args.only:
            try:
                row = run_one(name, lm, proxy, data, args)
            except Exception as exc:  # one optimizer's crash must not lose the others' rows
                traceback.print_exc()
                row = failed_row(name, args, exc, proxy)
            rows.append(row)
            print(json.dumps(row, sort_keys=True), flush=True)
    print(table([r for r in rows if "error" not in r]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
