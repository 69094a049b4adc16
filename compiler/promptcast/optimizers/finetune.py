"""`finetune`: DSPy's BootstrapFinetune -- train the model's weights on the program's own
successful runs, and lock the trained model as each step's target model.

The semantics follow `dspy/teleprompt/bootstrap_finetune.py` (multitask: one model for every
step of the program, trained on all their calls):

1. the teacher is the current state of every step: its locked state (`teacher="locked"`, the
   default; zero-shot where the lock has no entry) or zero-shot (`teacher="zero_shot"`); the
   teacher runs on every training example, and the runs that pass the metric
   (`metric_threshold`, else any non-zero score) are kept;
2. every call in a passing run becomes one training conversation, rendered through the runtime:
   the exact messages the *student* step sends for that call's inputs (the built module's own
   spec and adapter, `ProgramEngine.training_turns`), then the call's answer as that adapter
   renders an assistant turn. The student is the teacher's state, without its demos when
   `exclude_demos` (DSPy's flag: then the model is taught on, and later sent, the short
   zero-shot prompt), so the model is trained on the prompts it will be sent -- one path;
3. the conversations (seeded shuffle, at most `max_train_examples`) are handed to a trainer
   (`training/`: `trainer="openai"`, an OpenAI-compatible fine-tuning API, resumable; or
   `trainer="local"`, LoRA on the local GGUF model, served by llama.cpp on `port`);
4. the student's states name the trained model (`FunctionState.model`, spec key `model`: the
   request's `model`), are scored on dev through the same request the built module sends,
   and the lock records the trained model with the training set's hash, the base model, the
   trainer and its parameters (`optimization.training`).

Budgets: `max_train_examples` caps the conversations, `max_train_tokens` refuses a training
set whose tokens times epochs exceed it, and `--max-usd` covers training at the trainer's price
per 1M training tokens (`price=`; refused when a budget is set and the price is unknown).
`--dry-run` prints the examples, tokens, epochs and the cost estimate before anything is spent.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from promptcast_runtime import Message

from ..evaluate.data import Example
from ..ir import FunctionState
from ..training.data import TrainingSet, training_cost
from ..training.trainer import TrainedModel, Trainer, TrainingError
from .base import OneCandidateOptimizer, OptimizationError, Search, SearchStopped, States, Target
from .demos import labeled_demo, trace_demo

TEACHERS: Final = ("locked", "zero_shot")
TRAINERS: Final = ("openai", "local")
WORKDIR: Final = Path(".promptcast") / "finetune"
"""Where trainers keep job records and weights (beside the LM cache; gitignored with it)."""


@dataclass
class FinetuneSettings:
    """The trainer's parameters, shared by `finetune` and `better_together`."""

    trainer: str = "openai"
    epochs: int = 2
    exclude_demos: bool = False
    max_train_examples: int | None = None
    max_train_tokens: int | None = None
    price: float | None = None
    """openai: dollars per 1M training tokens (the provider's price sheet); None: unknown."""
    api_base: str | None = None
    """openai: the fine-tuning endpoint (default: the run's --api-base)."""
    learning_rate_multiplier: float | None = None
    batch_size: int | None = None
    poll_seconds: float = 20.0
    suffix: str = "promptcast"
    lora_rank: int = 8
    """local: LoRA rank (attention q/k/v/o projections of the last `lora_layers` layers)."""
    lora_layers: int = 8
    learning_rate: float = 2e-4
    max_seq_len: int = 384
    port: int = 8767
    """local: where the trained model's llama.cpp server listens."""
    train_python: str | None = None
    """local: the Python of the `[train]` environment (torch, transformers, peft, gguf);
    default: PROMPTCAST_TRAIN_PYTHON, else this interpreter."""
    workdir: str | None = None

    def make_trainer(self, search: Search) -> Trainer:
        if self.trainer == "openai":
            from ..training.openai_api import OpenAIFineTuning

            base = self.api_base or getattr(search.task.lm, "api_base", None) or ""
            return OpenAIFineTuning(
                api_base=str(base),
                epochs=self.epochs,
                learning_rate_multiplier=self.learning_rate_multiplier,
                batch_size=self.batch_size,
                suffix=self.suffix,
                price=self.price,
                poll_seconds=self.poll_seconds,
            )
        if self.trainer == "local":
            from ..training.local import LocalLoRA

            return LocalLoRA(
                epochs=self.epochs,
                rank=self.lora_rank,
                layers=self.lora_layers,
                learning_rate=self.learning_rate,
                max_seq_len=self.max_seq_len,
                port=self.port,
                python=self.train_python,
                seed=search.task.seed,
            )
        raise OptimizationError(f"trainer={self.trainer!r}: expected one of {', '.join(TRAINERS)}")

    def check(self) -> None:
        if self.trainer not in TRAINERS:
            raise OptimizationError(
                f"trainer={self.trainer!r}: expected one of {', '.join(TRAINERS)}"
            )
        if self.epochs < 1:
            raise OptimizationError(f"epochs={self.epochs}: expected at least 1")

    def price_per_million(self) -> float | None:
        return 0.0 if self.trainer == "local" else self.price

    def directory(self) -> Path:
        return Path(self.workdir) if self.workdir else WORKDIR


@dataclass
class BootstrapFinetune(OneCandidateOptimizer, FinetuneSettings):
    """Weights trained on the program's successful runs (see module doc)."""

    name: ClassVar[str] = "finetune"
    teacher: str = "locked"
    metric_threshold: float | None = None

    def __post_init__(self) -> None:
        self.check()
        if self.teacher not in TEACHERS:
            raise OptimizationError(
                f"teacher={self.teacher!r}: expected one of {', '.join(TEACHERS)}"
            )

    def propose(self, search: Search) -> None:
        teacher = teacher_states(search, self.teacher)
        student = finetune_states(
            search, teacher, self, threshold=self.metric_threshold, label=f"teacher={self.teacher}"
        )
        self.settle(search, "finetune", student)

    def estimate(self, n_train: int, n_dev: int) -> int:
        return n_train + self.dev_runs(n_dev)

    def dry_run_lines(self, target: Target, trainset: Sequence[Example]) -> list[str]:
        return training_estimate(target, trainset, self)


def teacher_states(search: Search, teacher: str) -> States:
    """The teacher: each step's locked state (zero-shot without an entry), or zero-shot."""
    lock = search.task.lock
    if teacher == "zero_shot" or lock is None:
        return dict(search.base_states)
    states: States = {}
    for qualname, signature in search.functions.items():
        entry = lock.entries.get(qualname)
        if entry is None:
            states[qualname] = search.base_states[qualname]
            continue
        state = lock.state_for(signature, dict(search.task.lm_params or {}))
        states[qualname] = state.with_lm_params(dict(search.task.run_lm_params or {}) or None)
    return states


def student_of(teacher: Mapping[str, FunctionState], exclude_demos: bool) -> States:
    """The states the model is trained for (and later called with): the teacher's, with no
    demos when `exclude_demos`, and no trained model of their own yet."""
    return {
        q: dataclasses.replace(s, demos=() if exclude_demos else s.demos, model="")
        for q, s in teacher.items()
    }


def finetune_states(
    search: Search,
    teacher: Mapping[str, FunctionState],
    settings: FinetuneSettings,
    *,
    threshold: float | None,
    label: str,
) -> States:
    """One BootstrapFinetune compile: trace the teacher, render, train; the student's states
    calling the trained model. Raises `SearchStopped` when a budget forbids the training."""
    runs = search.trace([(ex, dict(teacher)) for ex in search.task.trainset], f"finetune {label}")
    passed = [r for r in runs if r.error is None and r.score is not None and _passes(r, threshold)]
    student = student_of(teacher, settings.exclude_demos)
    conversations: list[list[Message]] = []
    skipped: set[str] = set()
    for run in passed:
        for record in run.records:
            if record.qualname not in student:
                continue
            turns = search.engine.training_turns(
                record.qualname, student[record.qualname], record.inputs, trace_demo(record)
            )
            if turns is None:
                skipped.add(search.functions[record.qualname].name)
                continue
            conversations.append(turns)
    random.Random(search.task.seed).shuffle(conversations)
    if settings.max_train_examples is not None:
        conversations = conversations[: settings.max_train_examples]
    data = TrainingSet.of(conversations)
    search.notes.append(
        f"finetune: {len(passed)} of {len(runs)} teacher runs ({label}) passed; "
        f"{len(data)} training conversations, ~{data.tokens()} tokens x {settings.epochs} epochs"
        + (f" (steps not trainable, skipped: {', '.join(sorted(skipped))})" if skipped else "")
    )
    if not len(data):
        raise OptimizationError(
            "finetune: no teacher run passed the metric, so there is nothing to train on"
        )
    _check_budgets(search, data, settings)
    trainer = settings.make_trainer(search)
    base_model = _base_model(search, settings)
    start = time.perf_counter()
    try:
        trained = trainer.train(data, base_model, settings.directory())
    except TrainingError as exc:
        raise OptimizationError(str(exc)) from None
    seconds = time.perf_counter() - start
    _serve(search, trained)
    search.notes.append(
        f"finetune: trained {trained.model} from {base_model} with {trainer.name} in "
        f"{seconds:.1f}s" + (f", served at {trained.api_base}" if trained.api_base else "")
    )
    search.training = {
        "model": trained.model,
        "base_model": base_model,
        "trainer": trainer.name,
        "params": trainer.params(),
        "teacher": label,
        "exclude_demos": settings.exclude_demos,
        "training_set": {
            "sha256": data.sha256(),
            "conversations": len(data),
            "tokens": data.tokens(),
            "answer_tokens": data.answer_tokens(),
            "teacher_runs": len(runs),
            "passed": len(passed),
        },
        **({"served_at": trained.api_base} if trained.api_base else {}),
        **{k: v for k, v in trained.details.items() if k not in _UNLOCKED_DETAILS},
    }
    return {q: dataclasses.replace(s, model=trained.model) for q, s in student.items()}


_UNLOCKED_DETAILS: Final = frozenset({"seconds", "log"})
"""Trainer details that depend on the machine (printed, never locked)."""


def _passes(run: Any, threshold: float | None) -> bool:
    if threshold:
        return bool(run.score.value >= threshold)
    return bool(run.score.value > 0)


def _base_model(search: Search, settings: FinetuneSettings) -> str:
    """The model the trainer starts from: the run's model, as its endpoint names it."""
    from promptcast_runtime.lm import wire_model

    model = getattr(search.task.lm, "model", None)
    if not isinstance(model, str) or not model:
        raise OptimizationError("finetune needs an LM that names its model (--model)")
    return wire_model(model)


def _serve(search: Search, trained: TrainedModel) -> None:
    """Route the trained model's requests to its own server when it has one (local)."""
    if not trained.api_base:
        return
    route = getattr(search.task.lm, "route", None)
    if not callable(route):
        raise OptimizationError(
            f"the trained model is served at {trained.api_base}, but the run's LM cannot route "
            "requests there (it needs the engine LM)"
        )
    route(trained.model, trained.api_base)


def _check_budgets(search: Search, data: TrainingSet, settings: FinetuneSettings) -> None:
    """Refuse a training run the budgets do not allow, before anything is uploaded."""
    tokens = data.tokens() * settings.epochs
    if settings.max_train_tokens is not None and tokens > settings.max_train_tokens:
        raise SearchStopped(
            f"training budget: {len(data)} conversations x {settings.epochs} epochs is "
            f"~{tokens} training tokens > max_train_tokens={settings.max_train_tokens}"
        )
    limit = search.task.max_usd
    if limit is None:
        return
    price = settings.price_per_million()
    if price is None:
        raise OptimizationError(
            "--max-usd is set but the trainer's price per 1M training tokens is unknown: pass "
            "--optimizer-arg price=USD_PER_1M (the provider's price sheet), or drop --max-usd"
        )
    cost = training_cost(data.tokens(), settings.epochs, price) or 0.0
    spent = search.usage().paid.cost
    if spent + cost > limit:
        raise SearchStopped(
            f"training budget: ~${cost:.4f} of training (~{tokens} tokens at ${price}/1M) "
            f"after ${spent:.4f} spent exceeds --max-usd {limit}"
        )


def training_estimate(
    target: Target, trainset: Sequence[Example], settings: FinetuneSettings
) -> list[str]:
    """`--dry-run`'s training lines: an upper bound of the conversations (every training
    example passing), their tokens rendered from the labels through the runtime (one LM
    function; a program's inner inputs are known only by running it), epochs and price."""
    from ..engine.program import ProgramEngine
    from .base import static_functions

    functions = static_functions(target)
    n = len(trainset) * max(1, len(functions))
    if settings.max_train_examples is not None:
        n = min(n, settings.max_train_examples)
    lines = [
        f"training ({settings.trainer}): at most {n} conversations "
        f"(one per step call of each passing teacher run), {settings.epochs} epoch(s)"
    ]
    engine = ProgramEngine(target, lm=None)
    engine.steps()  # an LM function: its own step, known without running it
    if not engine.is_step or len(functions) != 1:
        lines.append(
            "  tokens: not estimated for a @pc.program (its inner steps' inputs are known only "
            "by running it)"
        )
        return lines
    ((qualname, signature),) = functions.items()
    state = student_of({qualname: FunctionState.zero_shot(signature)}, settings.exclude_demos)
    tokens = 0
    counted = 0
    for example in trainset:
        demo = labeled_demo(signature, example)
        if demo is None:
            continue
        turns = engine.training_turns(qualname, state[qualname], example.inputs(), demo)
        if turns is None:
            lines.append(f"  tokens: {signature.name}'s kind is not trainable (one predictor)")
            return lines
        from ..training.data import estimate_tokens

        tokens += estimate_tokens(turns)
        counted += 1
    if settings.max_train_examples is not None and counted > settings.max_train_examples:
        tokens = tokens * settings.max_train_examples // counted
    total = tokens * settings.epochs
    lines.append(
        f"  tokens: ~{tokens} per epoch (zero-shot prompts + labels, chars/4), "
        f"~{total} in all"
        + (
            f" -- over max_train_tokens={settings.max_train_tokens}: training would be refused"
            if settings.max_train_tokens is not None and total > settings.max_train_tokens
            else ""
        )
    )
    price = settings.price_per_million()
    if price is None:
        lines.append(
            "  cost: unknown (the provider's price per 1M training tokens; pass "
            "--optimizer-arg price=USD)"
        )
    else:
        cost = training_cost(tokens, settings.epochs, price) or 0.0
        lines.append(f"  cost: at most ~${cost:.4f} at ${price}/1M training tokens")
    return lines
