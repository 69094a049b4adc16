"""`History`: the earlier turns of a conversation with the same step, as one input field.

A step that declares an input annotated `History` (`def reply(history: History, message: str)`)
is shown its earlier turns as real chat turns, as DSPy's `dspy.History` is: each turn holds the
step's other input fields and its output fields, and is rendered exactly as the step's adapter
renders a call (the user turn) and its answer (the assistant turn), after the system message and
the demos and before the current call's user turn (`conversation.py`). A demo whose inputs hold
a history keeps it as a value of its own (a JSON array of turns in the demo's user turn), so
demos and the live conversation never mix.

The class is immutable, stdlib-only and does nothing at import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .errors import PromptcastRuntimeError


class HistoryError(PromptcastRuntimeError, ValueError):
    """A history turn that does not fit the step: a field missing, or one the step lacks."""


class History:
    """The earlier turns of the conversation, oldest first.

    Each turn maps the step's input field names (all but the history itself) and its output
    field names to values: `History([{"message": "Hi", "intent": "greeting"}])`. `messages=` is
    accepted as DSPy spells it. `then(turn)` returns a longer history (the object never changes).
    """

    __slots__ = ("turns",)
    __promptcast_describe__ = "conversation history"

    turns: tuple[Mapping[str, Any], ...]

    def __init__(
        self,
        turns: Iterable[Mapping[str, Any]] = (),
        *,
        messages: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        if messages is not None:
            if turns:
                raise TypeError("History takes turns or messages=, not both")
            turns = messages
        if isinstance(turns, (str, bytes, Mapping)):
            raise TypeError(
                "History takes a list of turns (one mapping per turn), not "
                f"{type(turns).__name__}"
            )
        kept = []
        for index, turn in enumerate(turns, 1):
            if not isinstance(turn, Mapping):
                raise HistoryError(
                    f"history turn {index} is a {type(turn).__name__}, not a mapping of field "
                    "names to values"
                )
            kept.append(dict(turn))
        object.__setattr__(self, "turns", tuple(kept))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("History is immutable; `then(turn)` returns a longer one")

    @classmethod
    def from_data(cls, value: Any) -> History:
        """A History from a data file's value (a list of turn objects) or a History."""
        if isinstance(value, History):
            return value
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            return cls(value)
        raise TypeError(
            f"a history is a list of turns (objects of field values), not {type(value).__name__}"
        )

    def then(self, turn: Mapping[str, Any]) -> History:
        """This history with one more turn at the end."""
        return History((*self.turns, turn))

    def __len__(self) -> int:
        return len(self.turns)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.turns)

    def __bool__(self) -> bool:
        return bool(self.turns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.turns == other.turns

    def __hash__(self) -> int:
        return hash(len(self.turns))

    def __repr__(self) -> str:
        return f"History({list(self.turns)!r})"

    def __promptcast_json__(self) -> list[Any]:
        """The JSON form demos and the lock hold: a list of turn objects."""
        from .coerce import to_jsonable

        return [to_jsonable(turn) for turn in self.turns]


def check_turns(
    history: History, inputs: Sequence[str], outputs: Sequence[str], optional: Sequence[str] = ()
) -> None:
    """Raise `HistoryError` naming the turn unless every turn holds exactly `inputs` and
    `outputs` (`optional` outputs, such as chain of thought's `reasoning`, may be left out)."""
    wanted = {*inputs, *outputs}
    allowed = wanted | set(optional)
    for index, turn in enumerate(history.turns, 1):
        missing = [name for name in (*inputs, *outputs) if name not in turn]
        unknown = sorted(str(name) for name in turn if name not in allowed)
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"lacks field(s) {missing}")
            if unknown:
                problems.append(f"has unknown field(s) {unknown}")
            raise HistoryError(
                f"history turn {index} {' and '.join(problems)}; each turn holds the step's "
                f"inputs {list(inputs)} and outputs {list(outputs)}"
            )
