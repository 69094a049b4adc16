"""The context a sampling strategy sets for the LM calls made inside it.

Kept apart from `sampling.py` (the strategies) so that `Predictor`, which reads this context on
every call, and the strategies, which build a `Predictor` for refine's advice, import in one
direction only: predictor -> rollout <- sampling -> predictor.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})
_params: ContextVar[Mapping[str, Any]] = ContextVar("promptcast_sample", default=_NO_PARAMS)
HINT: ContextVar[str | None] = ContextVar("promptcast_refine_hint", default=None)
SAMPLED_LM: ContextVar[Any] = ContextVar("promptcast_sampled_lm", default=None)
"""The LM the latest sampled call used: refine's advice goes to the same LM."""

HINT_FIELD = "hint_"
HINT_DESCRIPTION = "Advice from an earlier attempt at this task; follow it."


def sample_params() -> Mapping[str, Any]:
    """The request parameters of the sample being drawn in this context (empty: none)."""
    return _params.get()


def note_lm(lm: Any) -> None:
    """Called by `Predictor` for calls inside a sample: remember which LM served them."""
    SAMPLED_LM.set(lm)


def current_hint() -> str | None:
    """The hint `refine` gives the attempt running in this context, if any."""
    return HINT.get()


def sample(index: int, *, temperature: float = 1.0, seed: int = 0) -> Sample:
    """Calls inside `with sample(index): ...` draw sample `index`: distinct per index, the same
    for the same index."""
    return Sample(index, temperature=temperature, seed=seed)


class Sample:
    """What `sample(...)` returns: a context manager setting the sample's request parameters."""

    __slots__ = ("_token", "params")

    def __init__(self, index: int, *, temperature: float = 1.0, seed: int = 0) -> None:
        self.params = MappingProxyType(
            {"rollout": index, "temperature": temperature, "seed": seed + index}
        )
        self._token: Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> Mapping[str, Any]:
        self._token = _params.set(self.params)
        return self.params

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _params.reset(self._token)
            self._token = None
