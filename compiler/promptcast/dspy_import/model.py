"""What `from-dspy` reads out of a DSPy program, as plain data (no libcst, no DSPy).

The reader fills these from the source; the state reader overlays what `program.save()`
recorded; the writer turns them into promptcast source and a lock. Keeping them apart means
the source is never imported, and the writer never looks at a syntax tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import PromptcastError


class DSPyImportError(PromptcastError):
    """Something in the DSPy program or its saved state that `from-dspy` cannot convert; the
    message names the construct and `file:line`."""


@dataclass
class DField:
    """One `dspy.InputField` / `dspy.OutputField`: its name, annotation (source text), desc."""

    name: str
    role: str  # "input" or "output"
    annotation: str
    desc: str = ""
    line: int = 0


@dataclass
class DSignature:
    """A DSPy signature: class-based (`name` is the class) or a string (`name` is None).

    `instructions` is what DSPy's `Signature.instructions` returns for it: the cleaned
    docstring, the instructions given to `dspy.Signature(...)`, or DSPy's default
    "Given the fields `a`, produce the fields `b`.".
    """

    name: str | None
    instructions: str
    fields: list[DField]
    line: int

    @property
    def inputs(self) -> list[DField]:
        return [f for f in self.fields if f.role == "input"]

    @property
    def outputs(self) -> list[DField]:
        return [f for f in self.fields if f.role == "output"]


@dataclass
class DPredictor:
    """`self.<attr> = dspy.Predict(...)` (or ChainOfThought / ReAct) in a module's `__init__`."""

    attr: str
    kind: str  # a promptcast kind: predict, chain_of_thought, react
    signature: DSignature
    line: int
    tools: list[str] = field(default_factory=list)
    max_iters: int | None = None
    lm_params: dict[str, Any] = field(default_factory=dict)
    # filled from the saved state:
    demos: list[dict[str, Any]] = field(default_factory=list)
    state_key: str | None = None

    @property
    def state_keys(self) -> list[str]:
        """The names `named_predictors()` gives this module's predictors in a saved state."""
        if self.kind == "chain_of_thought":
            return [f"{self.attr}.predict"]
        if self.kind == "react":
            return [f"{self.attr}.react", f"{self.attr}.extract.predict"]
        return [self.attr]


@dataclass
class DModule:
    """A `dspy.Module` subclass: its predictors and its `forward`, rewritten as plain Python."""

    name: str
    predictors: list[DPredictor]
    params: str
    """`forward`'s parameters without `self`, as source text."""
    body: str
    """`forward`'s body with `self.<attr>(...)` calls rewritten, as source text (indented)."""
    returns: str | None
    line: int
    uses_prediction: bool = False


@dataclass
class DProgram:
    """Everything converted from one DSPy source file."""

    path: str
    modules: list[DModule]
    kept: list[str]
    """Top-level statements copied verbatim (imports, pydantic models, enums, tools, helpers)."""
    skipped: list[str]
    """Top-level statements dropped (LM setup, scripts), as `line N: text`, for the report."""
