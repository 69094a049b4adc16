"""MIPROv2's Bayesian search: optuna's Tree-structured Parzen Estimator over categorical choices.

MIPROv2's search space is an instruction index and a demo-set index per LM function. As DSPy's
`mipro_optimizer_v2.py` does, each parameter is an optuna categorical, the sampler is
`TPESampler(seed=seed, multivariate=True)` and the study maximizes the dev score. This wrapper
keeps the optimizer's side to `ask()` / `tell(params, score)`: `tell` also takes configurations
that `ask` did not suggest (the zero-shot trial MIPROv2 scores first, as DSPy enqueues its
default program). optuna is imported here only, so only a `mipro` run pays for it. Seeded and
sequential: the same scores give the same suggestions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any


class CategoricalTPE:
    def __init__(self, space: Mapping[str, int], seed: int = 0, *, n_startup: int = 10) -> None:
        """`space`: parameter name -> number of choices (0..n-1); `n_startup` random trials
        before TPE models them (optuna's default)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.space = dict(space)
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.CategoricalDistribution(list(range(n)))
            for name, n in self.space.items()
        }
        with warnings.catch_warnings():  # multivariate TPE is "experimental" in optuna's terms
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=n_startup
            )
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.trials: list[tuple[dict[str, int], float]] = []
        self._pending: dict[tuple[tuple[str, int], ...], Any] = {}

    def ask(self) -> dict[str, int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self._optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(self.distributions)
        params = {name: int(trial.params[name]) for name in self.space}
        self._pending[_key(params)] = trial
        return params

    def tell(self, params: Mapping[str, int], score: float) -> None:
        trial = self._pending.pop(_key(params), None)
        if trial is not None:
            self.study.tell(trial, score)
        else:
            self.study.add_trial(
                self._optuna.trial.create_trial(
                    params=dict(params), distributions=self.distributions, value=score
                )
            )
        self.trials.append((dict(params), score))


def _key(params: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(params.items()))
