"""The one family of errors that mean "the user's input is wrong".

Every error a command can blame on its input -- source, data, metric, lock, configuration,
flags, paths -- is a `PromptcastError`: the CLI prints its message (which names the file,
line, example or flag) and exits with its `exit_code` (2). Anything else that escapes is a bug
in promptcast: the CLI lets it show its traceback and exit 1, so an internal error never
passes for a user mistake.
"""

from __future__ import annotations


class PromptcastError(Exception):
    """Bad input, reported as one clear line; `exit_code` is what the CLI exits with."""

    exit_code = 2
