"""`[tool.promptcast]` in the user's pyproject.toml: defaults for every command-line flag.

Flags always win over the file; the file wins over built-in defaults. Unknown keys are an error
(a typo in a build configuration should not be silently ignored).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PromptcastError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

KNOWN_KEYS = {
    "source",
    "out",
    "lock",
    "vendor_runtime",
    "model",
    "api_base",
    "train",
    "dev",
    "metric",
    "optimizer",
    "optimizer_args",
    "label",
    "columns",
    "threads",
    "seed",
    "max_calls",
    "max_usd",
    "reflection_model",
    "reflection_api_base",
    "target",
    "test",
    "lm_params",
    "objective",
    "prune_demos",
    "concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "mlflow",
    "mlflow_experiment",
}


class ConfigError(PromptcastError):
    pass


@dataclass(frozen=True)
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    root: Path = Path(".")

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def path(self, key: str) -> Path | None:
        value = self.values.get(key)
        return self.root / str(value) if value is not None else None

    def lock_path(self) -> Path:
        from .lockfile import LOCK_NAME

        return self.path("lock") or self.root / LOCK_NAME


def load_config(directory: Path | None = None) -> Config:
    """Read `[tool.promptcast]` from `directory`/pyproject.toml (cwd by default), if present."""
    root = directory or Path(".")
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return Config({}, root)
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{pyproject}: {exc}") from None
    tool = data.get("tool", {})
    section = tool.get("promptcast", {}) if isinstance(tool, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [tool.promptcast] must be a table of settings")
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{pyproject}: unknown key(s) in [tool.promptcast]: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_KEYS))}"
        )
    for key in sorted(section):
        expected, check = _KEY_TYPES[key]
        if not check(section[key]):
            raise ConfigError(
                f"{pyproject}: [tool.promptcast] {key} must be {expected}, not {section[key]!r}"
            )
    return Config(dict(section), root)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


_TEXT = ("a string", _is_text)
_KEY_TYPES: dict[str, tuple[str, Any]] = {
    **{key: _TEXT for key in KNOWN_KEYS},
    "vendor_runtime": ("true or false", lambda v: isinstance(v, bool)),
    "prune_demos": ("true or false", lambda v: isinstance(v, bool)),
    "threads": ("a whole number >= 1", lambda v: _is_count(v) and v >= 1),
    "concurrency": ("a whole number >= 1", lambda v: _is_count(v) and v >= 1),
    "requests_per_minute": (
        "a number > 0",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
    ),
    "tokens_per_minute": (
        "a number > 0",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
    ),
    "seed": ("a whole number >= 0", _is_count),
    "max_calls": ("a whole number >= 0", _is_count),
    "max_usd": (
        "a number >= 0",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
    ),
    "optimizer_args": ("a table (optimizer parameter = value)", _is_table),
    "columns": (
        'a table of FIELD = "column" strings',
        lambda v: _is_table(v) and all(isinstance(c, str) for c in v.values()),
    ),
    "lm_params": ("a table of request parameters", _is_table),
    "mlflow": ("true, false or a tracking URI", lambda v: isinstance(v, (bool, str))),
}
"""What each `[tool.promptcast]` value must be: a wrong type is one error line at load, not a
traceback (or a silently different build) in whichever command reads it."""


def project_lm_params(config: Config) -> dict[str, Any]:
    """`[tool.promptcast] lm_params = {max_tokens = 2048}`: sampling parameters for every step
    of the project (a decorator's `lm_params` and the kind's defaults sit under them, a
    `--lm-param` flag over them); checked like a decorator's."""
    from promptcast_runtime.kinds import check_lm_params

    value = config.get("lm_params")
    if value is None:
        return {}
    problem = check_lm_params(value)
    if problem:
        raise ConfigError(f"{config.root / 'pyproject.toml'}: lm_params must be {problem}")
    return dict(value)
