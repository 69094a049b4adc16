"""What optimize, eval and compile share: flags, config fallbacks, the engine LM, bound data.

Flags win over `[tool.promptcast]`, which wins over defaults. Every user mistake that the
commands can detect (bad data, metric, target, optimizer argument) becomes one `UsageError`
line and exit code 2 in `fail`.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from ..api import LMFunction, Program
from ..config import Config
from ..errors import PromptcastError
from ..ir import SINGLE_OUTPUT_NAMES

LM_TIMEOUT_S = 600.0
"""Generous: a local server answers one request at a time, so parallel requests queue there."""


F = typing.TypeVar("F", bound=Callable[..., Any])


def lm_options(fn: F) -> F:
    """--model, --api-base, --threads, --metric, --label, --no-cache: every engine command's."""
    for option in reversed(
        [
            click.option(
                "--metric", help="exact_match, contains, f1, numeric, or module:function."
            ),
            click.option("--label", help="Data column with the expected value (single output)."),
            click.option(
                "--column",
                "columns",
                multiple=True,
                metavar="FIELD=COLUMN",
                help="Read FIELD (a parameter or output) from data column COLUMN; repeatable.",
            ),
            click.option("--model", help="litellm model string, e.g. openai/qwen0.5b."),
            click.option(
                "--api-base", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8765/v1."
            ),
            click.option("--threads", type=int, help="Parallel examples (default 8)."),
            click.option(
                "--lm-param",
                "lm_param",
                multiple=True,
                metavar="K=V",
                help="A sampling parameter sent with every LM step's call (V is JSON, else"
                " text), over the decorator's and the project's: e.g. max_tokens=2048;"
                " recorded in the lock. Repeatable.",
            ),
            click.option(
                "--no-cache",
                is_flag=True,
                envvar="PROMPTCAST_NO_CACHE",
                help="Send every request to the model, never answering from answers cached before"
                " this run (fresh answers still replace them); also PROMPTCAST_NO_CACHE=1.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def pacing_options(fn: F) -> F:
    """--concurrency, --requests-per-minute, --tokens-per-minute: how fast a run may call the
    provider (optimize, compile and eval; `[tool.promptcast]` keys of the same names)."""
    for option in reversed(
        [
            click.option(
                "--concurrency",
                type=click.IntRange(min=1),
                help="LM calls in flight (program runs in parallel; their HTTP calls share one"
                " event loop), e.g. 64 or 256 against a hosted API; the same setting as"
                " --threads.",
            ),
            click.option(
                "--requests-per-minute",
                type=click.FloatRange(min=0, min_open=True),
                help="The provider's request rate limit: calls are paced under it, and a 429"
                " pauses every call for its Retry-After.",
            ),
            click.option(
                "--tokens-per-minute",
                type=click.FloatRange(min=0, min_open=True),
                help="The provider's token rate limit (prompt characters / 4 + max_tokens up"
                " front, settled by the reported usage).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@dataclass(frozen=True)
class Pacing:
    """A run's pace after flags and config: calls in flight and the provider's rate limits."""

    concurrency: int
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    @classmethod
    def resolve(cls, flags: dict[str, Any], config: Config) -> Pacing:
        return cls(
            concurrency=_concurrency(flags, config),
            requests_per_minute=optional_float(
                pick(flags.get("requests_per_minute"), config, "requests_per_minute")
            ),
            tokens_per_minute=optional_float(
                pick(flags.get("tokens_per_minute"), config, "tokens_per_minute")
            ),
        )

    def limit(self, lm: Any) -> None:
        """Give the engine LM the run's one rate limiter (every call of the run shares it, so a
        429 pauses them all); no limiter when no rate is set."""
        if self.requests_per_minute is not None or self.tokens_per_minute is not None:
            from promptcast_runtime.limits import RateLimiter

            lm.limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute)


def _concurrency(flags: dict[str, Any], config: Config) -> int:
    """`--concurrency` (LM calls in flight), else `--threads` (its older name), else config."""
    from ..config import ConfigError

    concurrency, threads = flags.get("concurrency"), flags.get("threads")
    if concurrency is not None and threads is not None and concurrency != threads:
        raise click.UsageError(
            f"--concurrency {concurrency} and --threads {threads} disagree: they are one setting"
        )
    value = concurrency if concurrency is not None else threads
    if value is None and config.get("concurrency") is not None:
        if config.get("threads") not in (None, config.get("concurrency")):
            raise ConfigError(
                "[tool.promptcast] concurrency and threads disagree: they are one setting"
            )
        value = config.get("concurrency")
    from ..engine.runner import DEFAULT_THREADS

    return int(pick(value, config, "threads", DEFAULT_THREADS))


def optional_float(value: Any) -> float | None:
    """A config or flag value that may be absent, as a float."""
    return None if value is None else float(value)


def pick(value: Any, config: Config, key: str, default: Any = None) -> Any:
    """The flag's value, else the config key's, else `default`."""
    return value if value is not None else config.get(key, default)


def require(value: Any, flag: str, key: str) -> Any:
    if value is None or value == "":
        raise click.UsageError(f"give {flag} (or set `{key}` in [tool.promptcast])")
    return value


def make_lm(
    model: str, api_base: str | None, project_dir: Path, *, no_cache: bool | None = None
) -> Any:
    """The engine LM: litellm behind the project's SQLite cache. It adds no sampling
    parameters of its own: every step sends its state's (`lm_params`), as it will in production.

    `no_cache` (None: the running command's `--no-cache` flag, which PROMPTCAST_NO_CACHE=1 also
    sets) makes the LM ignore answers cached before this run; see `LiteLLMLM.refresh_cache`.
    """
    from ..engine import LiteLLMLM, LMCache

    if no_cache is None:
        context = click.get_current_context(silent=True)
        no_cache = bool(context is not None and context.params.get("no_cache"))
    return LiteLLMLM(
        model,
        api_base=api_base,
        cache=LMCache.for_project(project_dir),
        timeout=LM_TIMEOUT_S,
        refresh_cache=no_cache,
    )


@dataclass(frozen=True)
class TargetIO:
    """A callable's input names (and which are optional), output names, and their types."""

    inputs: tuple[str, ...]
    optional: frozenset[str]
    outputs: tuple[str, ...]
    types: dict[str, Any]


def target_io(target: Any) -> TargetIO:
    """Fields of an LM function (from its IR) or of any other callable (from its annotations)."""
    from promptcast_runtime.coerce import object_fields

    fn = target.fn if isinstance(target, (LMFunction, Program)) else target
    params = inspect.signature(fn).parameters
    optional = frozenset(n for n, p in params.items() if p.default is not inspect.Parameter.empty)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    types = {n: hints[n] for n in params if n in hints}
    if isinstance(target, LMFunction):
        outputs = tuple(f.name for f in target.signature.outputs)
        if target.signature.return_shape == "single":
            types[outputs[0]] = hints.get("return", Any)
        else:
            types.update(object_fields(hints["return"]))
        return TargetIO(tuple(f.name for f in target.signature.inputs), optional, outputs, types)
    returns = hints.get("return", Any)
    try:
        fields = object_fields(returns)
    except TypeError:
        name = next((n for n in SINGLE_OUTPUT_NAMES if n not in params), "result")
        fields = {name: returns}
    types.update(fields)
    return TargetIO(tuple(params), optional, tuple(fields), types)


def flag_lm_params(flags: tuple[str, ...] | None) -> dict[str, Any]:
    """`--lm-param max_tokens=2048 --lm-param stop='["\\n\\n"]'` -> checked request params."""
    import json

    from promptcast_runtime.kinds import check_lm_params

    params: dict[str, Any] = {}
    for pair in flags or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--lm-param {pair!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        params[key.strip()] = value
    problem = check_lm_params(params)
    if problem:
        raise click.UsageError(f"--lm-param: the parameters must be {problem}")
    return params


def column_mapping(flags: tuple[str, ...] | None, config: Config) -> dict[str, str]:
    """FIELD -> data column, from `[tool.promptcast] columns = {...}` then `--column` flags."""
    mapping = {str(k): str(v) for k, v in (config.get("columns") or {}).items()}
    for pair in flags or ():
        field_name, sep, column = pair.partition("=")
        if not sep or not field_name or not column:
            raise click.UsageError(f"--column {pair!r}: expected FIELD=COLUMN")
        mapping[field_name] = column
    return mapping


def load_bound(
    path: Path, io: TargetIO, label: str | None, mapping: dict[str, str] | None = None
) -> tuple[Any, list[Any]]:
    """(Dataset, examples bound to the target's fields); text values coerced to field types."""
    from ..evaluate import bind, load_dataset

    dataset = load_dataset(path)
    converters = {name: _converter(tp) for name, tp in io.types.items() if _converter(tp)}
    examples = bind(
        dataset.examples,
        inputs=io.inputs,
        outputs=io.outputs,
        label=label,
        mapping=mapping or None,
        optional_inputs=io.optional,
        converters=converters,  # type: ignore[arg-type]
    )
    return dataset, examples


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """Coerce text from CSV (or a JSON string) to a non-str field type; None for Any.

    A `str` field takes only text: a JSON number, list, object or null there is a data mistake
    (it would be rendered into the prompt as its Python repr), so it is refused by name.
    """
    if annotation in (Any, inspect.Parameter.empty):
        return None
    if annotation is str:
        return _text_only
    from promptcast_runtime import History, Image, coerce

    if annotation is History:  # a JSON array of turns
        return History.from_data
    if annotation is Image:  # a path, an http(s) or data URL (or a JSON form)
        return Image.from_data
    from promptcast_runtime.conversation import is_image_type

    if is_image_type(annotation):  # list[Image], Image | None: each image read the same way
        return _images

    def convert(value: Any) -> Any:
        return coerce(value, annotation) if isinstance(value, str) else value

    return convert


def _images(value: Any) -> Any:
    """An optional image or a list of images from a data file (paths, URLs, JSON forms)."""
    from promptcast_runtime import Image

    if value is None:
        return None
    if isinstance(value, list):
        return [Image.from_data(item) for item in value]
    return Image.from_data(value)


def _text_only(value: Any) -> str:
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise TypeError(f"expected text (a string), got {kind}")
    return value


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "bad input": the `PromptcastError` family, and the runtime's
    `LMError` (the LM named by the flags could not be reached or answered garbage). Nothing
    else: any other exception is a bug and keeps its traceback (exit 1)."""
    from promptcast_runtime import LMError

    return (PromptcastError, LMError)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: bad input)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def fail_on(exc: BaseException) -> NoReturn:
    """`fail` with a user error's own message and exit code."""
    fail(str(exc), getattr(exc, "exit_code", 2))
