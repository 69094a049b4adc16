"""Compile-time execution: the litellm-backed LM, its on-disk cache, budgets and the parallel runner.

Importing this package is cheap: litellm is imported only when the first paid LM call is made.
"""

from promptcast.engine.budget import BudgetExhausted, LMBudget, UsageMeter, UsageSnapshot
from promptcast.engine.cache import LMCache, cache_key, default_cache_path
from promptcast.engine.lm import LiteLLMLM
from promptcast.engine.runner import BatchResult, ItemError, Progress, Skipped, run_parallel

__all__ = [
    "BatchResult",
    "BudgetExhausted",
    "ItemError",
    "LMBudget",
    "LMCache",
    "LiteLLMLM",
    "Progress",
    "Skipped",
    "UsageMeter",
    "UsageSnapshot",
    "cache_key",
    "default_cache_path",
    "run_parallel",
]
