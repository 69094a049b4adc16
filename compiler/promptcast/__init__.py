"""promptcast: a compiler for language-model programs.

Importing this package is cheap: it loads the decorators and the runtime, never litellm,
libcst or the optimizers, which are imported when the compiler actually needs them.

The LM decorators (`pc.predict`, `pc.chain_of_thought`, `pc.react`, ...) are one per entry of
the runtime's registry of module kinds, looked up by `__getattr__`; the sampling strategies
(`pc.best_of_n`, ...) are the runtime's own functions, which a build imports from
`promptcast_runtime` instead.
"""

__version__ = "0.1.0"

from typing import Any  # noqa: E402

from promptcast_runtime.history import History  # noqa: E402
from promptcast_runtime.kinds import KINDS  # noqa: E402
from promptcast_runtime.media import Image  # noqa: E402
from promptcast_runtime.sampling import best_of_n, majority, refine  # noqa: E402

from .api import DECORATORS, configure, program  # noqa: E402


def __getattr__(name: str) -> Any:
    """`pc.<kind>`: the decorator of a registered module kind."""
    try:
        return DECORATORS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *KINDS])


__all__ = [
    "History",
    "Image",
    "__version__",
    "best_of_n",
    "configure",
    "majority",
    "program",
    "refine",
    *KINDS,
]
