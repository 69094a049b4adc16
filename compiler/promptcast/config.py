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
    section = data.get("tool", {}).get("promptcast", {})
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{pyproject}: unknown key(s) in [tool.promptcast]: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_KEYS))}"
        )
    return Config(dict(section), root)


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
