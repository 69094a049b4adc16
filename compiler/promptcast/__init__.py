"""promptcast: a compiler for language-model programs.

Importing this package is cheap: it loads the decorators and the runtime, never litellm,
libcst or the optimizers, which are imported when the compiler actually needs them.
"""

__version__ = "0.1.0"

from .api import chain_of_thought, configure, predict, program  # noqa: E402

__all__ = ["__version__", "chain_of_thought", "configure", "predict", "program"]
