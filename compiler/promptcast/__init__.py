"""promptcast: a compiler for language-model programs.

Importing this package is cheap: it loads the decorators and the runtime, never litellm,
libcst or the optimizers, which are imported when the compiler actually needs them.
"""

__version__ = "0.1.0"

from promptcast_runtime.sampling import best_of_n, majority, refine  # noqa: E402

from .api import chain_of_thought, configure, predict, program, react  # noqa: E402

SAMPLING = ("best_of_n", "majority", "refine")
"""Runtime functions usable as `pc.<name>` in built modules: the build imports them from
promptcast_runtime instead of promptcast (the same objects)."""

__all__ = [
    "__version__",
    "best_of_n",
    "chain_of_thought",
    "configure",
    "majority",
    "predict",
    "program",
    "react",
    "refine",
]
