# Adapted from the promptcast workspace's shared/lm/serve.py (the local-model kit this project is
# developed against) so that a checkout alone can set up and start the model. The one change: a
# deterministic prompt-prefix cache (below), on by default; --no-prefix-cache restores the kit's
# from-scratch behaviour exactly.
"""llama-cpp-python's OpenAI-compatible server, made deterministic, with a prefix cache that keeps it so.

The stock server reuses the KV cache of the previous request's prompt prefix wherever the two
prompts agree. Where they agree depends on the previous request, so the prompt is split into
evaluation batches at a different place each time, which changes the arithmetic: the same request
can answer differently depending on what came before. The workspace kit therefore starts every
request from an empty KV cache -- deterministic, but a few-shot prompt (system message plus
demos, ~900 tokens) is then evaluated in full on every call, ~13 s on two cores.

Here every chat prompt is split at one place that depends on the prompt alone: the start of its
last user turn. The part before it -- the system message and the demo turns, identical for every
call of one program state -- is always evaluated on its own, from an empty cache; its KV state is
kept (the live one, plus a small LRU of saved ones), and the rest is evaluated on top. A request
computes exactly the same numbers whether its prefix was cached or not, so the same request
(temperature 0, or a fixed seed) gives the same output in any order and across restarts, while a
run of calls that share their demos pays for them once. Measured by scripts/lm/check_prefix_cache.py.

Flags (removed before the stock server parses the rest):
  --no-prefix-cache       every request from an empty KV cache (the workspace kit's behaviour)
  --prefix-cache-mb N     bytes of saved prefix states to keep besides the live one (default 512)
  --reuse-prefix          the stock server: fastest, order-dependent
"""

from __future__ import annotations

import ctypes
import sys
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import llama_cpp
from llama_cpp.server.__main__ import main


def _take_flag(name: str) -> bool:
    if name in sys.argv:
        sys.argv.remove(name)
        return True
    return False


def _take_option(name: str, default: int) -> int:
    if name in sys.argv:
        at = sys.argv.index(name)
        value = int(sys.argv[at + 1])
        del sys.argv[at : at + 2]
        return value
    return default


class PrefixCache:
    """Saved KV states of prompt prefixes, least recently used dropped first, within a byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.size = 0

    def get(self, key: tuple[int, ...]) -> bytes | None:
        state = self.states.get(key)
        if state is not None:
            self.states.move_to_end(key)
        return state

    def put(self, key: tuple[int, ...], state: bytes) -> None:
        if key in self.states or len(state) > self.max_bytes:
            return
        self.states[key] = state
        self.size += len(state)
        while self.size > self.max_bytes:
            _, dropped = self.states.popitem(last=False)
            self.size -= len(dropped)


def _last_user_turn(tokens: Sequence[int], turn_start: int, user: list[int]) -> int:
    """Index of the last `<|im_start|>user` in tokens, or 0 when there is none."""
    for at in range(len(tokens) - len(user) - 1, 0, -1):
        if tokens[at] == turn_start and list(tokens[at + 1 : at + 1 + len(user)]) == user:
            return at
    return 0


def install_prefix_cache(max_bytes: int) -> None:
    """Patch Llama.generate so that every prompt's prefix is evaluated alone, and reused."""
    saved = PrefixCache(max_bytes)
    generate = llama_cpp.Llama.generate

    def markers(self: Any) -> tuple[int, list[int]] | None:
        if not hasattr(self, "_promptcast_markers"):
            start = self.tokenize(b"<|im_start|>", add_bos=False, special=True)
            user = self.tokenize(b"user", add_bos=False, special=False)
            self._promptcast_markers = (start[0], user) if len(start) == 1 and user else None
        return self._promptcast_markers  # type: ignore[no-any-return]

    def clear(self: Any) -> None:
        self.reset()
        mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        llama_cpp.llama_memory_clear(mem, True)

    def save(self: Any) -> bytes:
        size = llama_cpp.llama_state_seq_get_size(self._ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buffer, size, 0)
        return bytes(buffer[:written])

    def restore(self: Any, key: tuple[int, ...], state: bytes) -> bool:
        clear(self)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buffer, len(state), 0) != len(state):
            clear(self)
            return False
        self.input_ids[: len(key)] = key
        self.n_tokens = len(key)
        self._requires_eval = True
        return True

    def prepare(self: Any, tokens: Sequence[int]) -> None:
        """Leave exactly the prompt's prefix in the KV cache, evaluated alone, or nothing."""
        found = markers(self)
        split = _last_user_turn(tokens, *found) if found else 0
        if split == 0:
            self._promptcast_live = None
            self.n_tokens = 0  # no turns to split at: the whole prompt, from an empty cache
            return
        key = tuple(tokens[:split])
        live = getattr(self, "_promptcast_live", None)
        if live == key and self.n_tokens >= split:
            self._ctx.kv_cache_seq_rm(-1, split, -1)
            self.n_tokens = split
            self._requires_eval = True
            return
        self._promptcast_live = None
        state = saved.get(key)
        if state is None or not restore(self, key, state):
            clear(self)
            self.eval(list(key))
            saved.put(key, save(self))
        self._promptcast_live = key

    def generate_with_prefix_cache(
        self: Any, tokens: Sequence[int], *args: Any, **kwargs: Any
    ) -> Any:
        prepare(self, tokens)
        return generate(self, tokens, *args, **kwargs)

    llama_cpp.Llama.generate = generate_with_prefix_cache  # type: ignore[method-assign]


def install_from_scratch() -> None:
    """Patch Llama.generate so that every request starts from an empty KV cache."""
    generate = llama_cpp.Llama.generate

    def generate_from_scratch(self: Any, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        self.n_tokens = 0
        return generate(self, tokens, *args, **kwargs)

    llama_cpp.Llama.generate = generate_from_scratch  # type: ignore[method-assign]


if __name__ == "__main__":
    stock = _take_flag("--reuse-prefix")
    from_scratch = _take_flag("--no-prefix-cache")
    cache_mb = _take_option("--prefix-cache-mb", 512)
    if from_scratch:
        install_from_scratch()
    elif not stock:
        install_prefix_cache(cache_mb * 1024 * 1024)
    main()
