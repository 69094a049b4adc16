"""The messages of a step whose inputs hold a `History` or images.

A plain step's messages are the adapter's system message, its demo turns and one user turn of
text (`Predictor.messages`); this module is used only by a step that declares a `History` or an
`Image` input (a `Predictor` builds a `Conversation` for it once, and a plain step never reaches
this code). It renders with the same adapter methods in development, while optimizing and in a
shipped module, so the one path holds for these inputs as for any other:

- system message, then each demo as a user/assistant pair (a demo's own history is one of its
  input values, a JSON array of turns in its user turn: demos never mix with the conversation);
- then each turn of the call's history, rendered as the adapter renders a call (the user turn,
  with the step's other inputs) and its answer (the assistant turn, with the outputs);
- then the call's own user turn, without the history field.

A user turn with an image becomes a list of OpenAI content parts (`{"type": "text", ...}` and
`{"type": "image_url", "image_url": {"url": ...}}`), the image where its field's value stands;
a turn without one stays a plain string, byte for byte what a text-only step sends.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Union, get_args, get_origin

from .history import History, HistoryError, check_turns
from .media import Image, ImageError, is_image_form
from .rollout import HINT_FIELD
from .signature import REASONING, Field, Signature

Message = dict[str, Any]

_SLOT = "\x00promptcast-image-{}\x00"
_SLOTS = r"\x00promptcast-image-(\d+)\x00"


class TurnsAdapter(Protocol):
    """The adapter methods a conversation renders with (the chat and json adapters)."""

    name: str

    def system_message(self, signature: Signature) -> str: ...

    def user_message(self, signature: Signature, values: Mapping[str, Any]) -> str: ...

    def assistant_message(self, signature: Signature, demo: Mapping[str, Any]) -> str: ...


def is_image_type(annotation: Any) -> bool:
    """`Image`, `list[Image]`, `tuple[Image, ...]` or an optional one of these."""
    if annotation is Image:
        return True
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (list, tuple) and args and args[0] is Image:
        return origin is list or len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis)
    if origin is Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        return len(members) == 1 and len(args) == 2 and is_image_type(members[0])
    return False


def conversation_for(signature: Signature, adapter: str) -> Conversation | None:
    """The conversation renderer of a step, or None for a step with no History/Image input."""
    history = [f.name for f in signature.inputs if f.annotation is History]
    images = frozenset(f.name for f in signature.inputs if is_image_type(f.annotation))
    if not history and not images:
        return None
    if len(history) > 1:
        raise ValueError(f"a step takes at most one History input, not {history}")
    if adapter == "dspy":
        what = "a History" if history else "an Image"
        raise ValueError(
            f"the 'dspy' adapter (DSPy 3.4.1's ChatAdapter, byte for byte) does not render {what}"
            " input; use adapter 'chat' or 'json'"
        )
    return Conversation(history[0] if history else None, images)


class Conversation:
    """How one step with History/Image inputs renders a call; built once per step."""

    __slots__ = ("_prefix", "history", "images", "root")

    def __init__(self, history: str | None, images: frozenset[str]) -> None:
        self.history = history
        self.images = images
        self.root: str | None = None
        """Where relative demo image paths resolve (`build_step(..., media=__file__)`)."""
        self._prefix: tuple[Message, ...] | None = None

    def messages(
        self,
        adapter: TurnsAdapter,
        signature: Signature,
        demos: Sequence[Mapping[str, Any]],
        inputs: Mapping[str, Any],
        cacheable: bool = False,
    ) -> list[Message]:
        """The call's messages; `cacheable`: the signature and demos are the step's own, so
        the system and demo turns are rendered once and reused."""
        prefix = self._prefix if cacheable else None
        if prefix is None:
            rendered: list[Message] = [
                {"role": "system", "content": adapter.system_message(signature)}
            ]
            for demo in demos:
                if self.history is not None and self.history in demo:
                    demo = {**demo, self.history: self._demo_history(signature, demo[self.history])}
                rendered.append(
                    {"role": "user", "content": self.user_content(adapter, signature, demo)}
                )
                rendered.append(
                    {"role": "assistant", "content": adapter.assistant_message(signature, demo)}
                )
            prefix = tuple(rendered)
            if cacheable:
                self._prefix = prefix
        messages = [dict(m) for m in prefix]
        own = signature
        if self.history is not None:
            own = signature._replace(
                inputs=tuple(f for f in signature.inputs if f.name != self.history)
            )
            messages.extend(self.turns(adapter, own, inputs.get(self.history)))
        messages.append({"role": "user", "content": self.user_content(adapter, own, inputs)})
        return messages

    def _demo_history(self, signature: Signature, value: Any) -> Any:
        """A demo's history as the value its user turn shows: each turn's fields in signature
        order (a lock stores keys sorted; the prompt must not depend on that), an image as
        `<image sha256:...>` (never its bytes as text; the same for inline and locked forms)."""
        if isinstance(value, History):
            value = value.turns
        if not isinstance(value, (list, tuple)):
            return value
        order = [f.name for f in (*signature.inputs, *signature.outputs) if f.name != self.history]
        rank = {name: i for i, name in enumerate(order)}
        turns = []
        for turn in value:
            if not isinstance(turn, Mapping):
                return value
            items = sorted(turn.items(), key=lambda kv: (rank.get(kv[0], len(rank)), str(kv[0])))
            turns.append({k: _image_text(v) for k, v in items})
        return turns

    def turns(self, adapter: TurnsAdapter, signature: Signature, value: Any) -> list[Message]:
        """The history's turns as user/assistant messages (`signature` without the history)."""
        if value is None:
            return []
        try:
            history = History.from_data(value)
        except TypeError as exc:
            raise HistoryError(f"input `{self.history}`: {exc}") from None
        optional = [f.name for f in signature.outputs if f == REASONING]
        check_turns(
            history,
            [f.name for f in signature.inputs if f.name != HINT_FIELD],
            [f.name for f in signature.outputs if f.name not in optional],
            optional,
        )
        messages: list[Message] = []
        for turn in history.turns:
            messages.append({"role": "user", "content": self.user_content(adapter, signature, turn)})
            messages.append({"role": "assistant", "content": adapter.assistant_message(signature, turn)})
        return messages

    def user_content(
        self, adapter: TurnsAdapter, signature: Signature, values: Mapping[str, Any]
    ) -> str | list[dict[str, Any]]:
        """The adapter's user turn; where an image field holds images, content parts with the
        images at their fields' places (the text between them is the adapter's, unchanged)."""
        found: list[Image] = []
        slotted = dict(values)
        for field in signature.inputs:
            if field.name not in self.images or field.name not in values:
                continue
            pictures = self._pictures(field, values[field.name])
            if pictures:
                slots = []
                for picture in pictures:
                    slots.append(_SLOT.format(len(found)))
                    found.append(picture)
                slotted[field.name] = "\n".join(slots)
        if not found:
            return adapter.user_message(signature, values)
        text = adapter.user_message(signature, slotted)
        pieces = re.split(_SLOTS, text)
        order = [int(i) for i in pieces[1::2]]
        if order != list(range(len(found))):
            raise ImageError("an input's text holds promptcast's image slot marker (NUL-delimited)")
        parts: list[dict[str, Any]] = []
        for i, piece in enumerate(pieces):
            if i % 2:
                parts.append(found[int(piece)].content_part())
            elif piece:
                parts.append({"type": "text", "text": piece})
        return parts

    def _pictures(self, field: Field, value: Any) -> list[Image]:
        """The images of one image field's value (an Image, a JSON form, a list of them)."""
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [self._picture(field, item) for item in value]
        return [self._picture(field, value)]

    def _picture(self, field: Field, value: Any) -> Image:
        if isinstance(value, Image):
            return value
        if is_image_form(value):
            return Image.from_json(value, self.root)
        if isinstance(value, str):
            return Image(value)
        raise ImageError(f"input `{field.name}` must be an Image, not {type(value).__name__}")


def _image_text(value: Any) -> Any:
    """`value` with each image (object or JSON form) as `<image sha256:...>` / `<image URL>`."""
    if isinstance(value, Image) or is_image_form(value):
        image = value if isinstance(value, Image) else Image.from_json(value)
        if image.is_remote:
            return f"<image {image.url()}>"
        return f"<image sha256:{image.sha256}>"
    if isinstance(value, (list, tuple)):
        return [_image_text(v) for v in value]
    return value
