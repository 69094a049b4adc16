"""Sampling strategies over any LM step or program: best_of_n, refine, majority.

Why a context and not new predictor kinds: each strategy just runs the same callable several
times, each time as a distinct, reproducible sample. `sample(i)` sets, for everything called
inside it, the request parameters of sample i -- `rollout=i` (a cache key only, never sent),
`temperature` and `seed=seed + i` (sent, so a seeded server gives the same sample again). A
compiled LM function, a decorated one in development, or a whole program of several steps all
pick them up the same way, because every call goes through `Predictor.forward`.

`refine` also feeds a hint to the attempts after a weak one, as DSPy's Refine does: the LM is
asked what to do differently (one extra call through the same runtime), and the next attempt's
prompt carries it as an extra input field `hint_`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .coerce import render
from .errors import LMError, ParseError
from .predictor import Predictor
from .rollout import HINT, SAMPLED_LM, sample
from .signature import Field, Signature

T = TypeVar("T")
# `reward(inputs, value) -> float`: the call's inputs by parameter name, and what it returned.


def _bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)


def best_of_n(
    fn: Callable[..., T],
    n: int,
    reward: Callable[[dict[str, Any], T], float],
    threshold: float | None = None,
    *,
    temperature: float = 1.0,
    seed: int = 0,
) -> Callable[..., T]:
    """`fn` run as up to `n` samples; the value with the highest reward wins.

    Stops early at the first sample whose reward reaches `threshold`. A sample that fails to
    parse (or whose LM call fails) is skipped; if every sample fails, the last error is raised.
    Ties keep the earlier sample, so the result is deterministic given `seed`.
    """
    return _attempts(fn, n, reward, threshold, temperature, seed, refine_hints=False)


def refine(
    fn: Callable[..., T],
    n: int,
    reward: Callable[[dict[str, Any], T], float],
    threshold: float,
    *,
    temperature: float = 1.0,
    seed: int = 0,
) -> Callable[..., T]:
    """`best_of_n`, but each attempt after one below `threshold` gets a hint.

    The hint comes from one extra LM call that sees the inputs, the weak output and its reward;
    the next attempt's prompt carries it as the input field `hint_`.
    """
    return _attempts(fn, n, reward, threshold, temperature, seed, refine_hints=True)


def majority(
    fn: Callable[..., T], n: int, *, temperature: float = 1.0, seed: int = 0
) -> Callable[..., T]:
    """`fn` run as `n` samples; the most frequent value wins (ties: the earliest of them)."""
    if n < 1:
        raise ValueError("majority needs n >= 1")

    def run(*args: Any, **kwargs: Any) -> T:
        counts: dict[str, int] = {}
        first: dict[str, T] = {}
        error: Exception | None = None
        for index in range(n):
            with sample(index, temperature=temperature, seed=seed):
                try:
                    value = fn(*args, **kwargs)
                except (ParseError, LMError) as exc:
                    error = exc
                    continue
            key = render(value)
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, value)
        if not counts:
            assert error is not None
            raise error
        winner = max(counts, key=lambda k: counts[k])  # first maximum: the earliest value
        return first[winner]

    return _named(run, fn, f"majority of {n}")


def _attempts(
    fn: Callable[..., T],
    n: int,
    reward: Callable[[dict[str, Any], T], float],
    threshold: float | None,
    temperature: float,
    seed: int,
    *,
    refine_hints: bool,
) -> Callable[..., T]:
    if n < 1:
        raise ValueError("n must be >= 1")

    def run(*args: Any, **kwargs: Any) -> T:
        inputs = _bind(fn, args, kwargs)
        best: tuple[float, T] | None = None
        error: Exception | None = None
        hint: str | None = None
        for index in range(n):
            token = HINT.set(hint)
            try:
                with sample(index, temperature=temperature, seed=seed):
                    value = fn(*args, **kwargs)
            except (ParseError, LMError) as exc:
                error = exc
                continue
            finally:
                HINT.reset(token)
            score = float(reward(inputs, value))
            if best is None or score > best[0]:
                best = (score, value)
            if threshold is not None and score >= threshold:
                break
            if refine_hints and index < n - 1:
                with sample(index, temperature=temperature, seed=seed):
                    hint = _advise(inputs, value, score, threshold)
        if best is None:
            assert error is not None
            raise error
        return best[1]

    kind = "refine" if refine_hints else "best_of_n"
    return _named(run, fn, f"{kind} {n}")


def _advise(inputs: dict[str, Any], value: Any, score: float, threshold: float | None) -> str:
    """One LM call: what should the next attempt do differently? (Through the runtime.)"""
    advisor: Predictor[str] = Predictor(
        Signature(
            "An attempt at a task scored below the target. Read the inputs, the output and its"
            " reward, and give short, concrete advice for the next attempt.",
            (
                Field("inputs", dict, "The task's inputs."),
                Field("output", str, "What the attempt produced."),
                Field("reward", float, "Its reward (higher is better)."),
                Field("target", float, "The reward wanted."),
            ),
            (Field("advice", str, "What to do differently, in one or two sentences."),),
        ),
        returns="advice",
        lm_params={"max_tokens": 256},  # short advice; the sample sets temperature and seed
    )
    values = {"inputs": dict(inputs), "output": render(value), "reward": score}
    try:
        return advisor.forward({**values, "target": threshold or 1.0}, SAMPLED_LM.get()).value
    except ParseError as exc:
        return exc.raw.strip()[:500] if exc.raw else ""


def _named(run: Callable[..., T], fn: Callable[..., Any], what: str) -> Callable[..., T]:
    name = getattr(fn, "__name__", "call")
    run.__name__ = name
    run.__qualname__ = name
    run.__doc__ = f"{what} samples of `{name}`."
    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run
