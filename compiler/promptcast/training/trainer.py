"""The one interface every trainer sits behind, and what a training run produces.

A trainer takes a `TrainingSet` and the base model's name and returns the name of a model that
serves the trained weights (`TrainedModel`), plus where it is served when that is not the
run's own endpoint (the local trainer's llama.cpp server). It keeps whatever it needs to resume
under `workdir` (the optimize cache), keyed by `job_key`: the training set's hash, the base
model and the trainer's parameters, so a rerun -- or a run killed mid-training -- finds the
same job or weights again instead of paying for them twice.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import PromptcastError
from .data import TrainingSet


class TrainingError(PromptcastError):
    """Training could not run or failed (the provider's message, or the trainer's log)."""


@dataclass(frozen=True)
class TrainedModel:
    """A trained model: the name requests must carry, and the endpoint that serves it."""

    model: str
    api_base: str | None = None
    """None: the run's own endpoint serves it (a provider's fine-tuning API)."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the lock records beside the name: job id, file id, wall time, adapter path..."""


class Trainer(abc.ABC):
    """A training backend (see module doc)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """The hyperparameters that shape the weights (recorded in the lock, part of the key)."""

    @abc.abstractmethod
    def train(self, data: TrainingSet, base_model: str, workdir: Path) -> TrainedModel:
        """Train on `data` from `base_model` (resuming under `workdir`); the trained model."""

    def epoch_count(self) -> int:
        """Passes over the training set (what tokens and price multiply by)."""
        return int(self.params().get("epochs", 1) or 1)

    def price_per_million(self) -> float | None:
        """Dollars per 1M training tokens where known (None: the provider's price is unknown)."""
        return None

    def job_key(self, data: TrainingSet, base_model: str) -> str:
        """What identifies one training job: data, base model, trainer and its parameters."""
        payload = {
            "data": data.sha256(),
            "base_model": base_model,
            "trainer": self.name,
            "params": self.params(),
        }
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
