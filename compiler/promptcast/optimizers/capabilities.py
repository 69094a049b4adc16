"""What the target endpoint can do, settled once per optimize run, before anything is scored.

Two questions, each asked with one probe request (`probe_lm`: a single attempt, never retried,
its outcome cached like any LM call, so a rerun asks nothing and locks the same choice):

- **strict structured outputs**, for every json step (and every `adapter="auto"` step, whose
  json trial must send what a json winner would ship): does the endpoint take
  `response_format={"type": "json_schema", ...}`? Yes: each such state records
  `response_format="json_schema"`; no (llama.cpp's server answers HTTP 500): `"json_object"`,
  the JSON mode with the schema attached, which llama.cpp turns into a grammar. The state --
  and so the lock entry, made for that entry's model, and the built module's spec -- carries
  the choice: shipped code sends it and never probes or retries another.
- **native tool calls**, for every ReAct step declared `protocol="tools"` or `"auto"`: does
  the endpoint take `tools` and answer with `tool_calls`? For "auto", both protocols are then
  scored zero-shot on dev and the better one is locked (`choose_protocols`, as
  `Search.choose_adapters` settles an auto adapter); an endpoint that rejects `tools` or never
  returns `tool_calls` locks the text protocol at once, with a note saying what it returned.

Why a probe and not the first real call: a rejected format would fail every call of a run
(each retried, then scored 0), and a silent fallback inside the runtime would make shipped code
send something the optimizer did not score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from promptcast_runtime.kinds import get_kind
from promptcast_runtime.lm import Completion
from promptcast_runtime.tool_calls import AUTO_PROTOCOL, TEXT_PROTOCOL, TOOLS_PROTOCOL

from ..errors import PromptcastError
from ..ir import FunctionState, Signature
from ..json_schema import RESPONSE_JSON_OBJECT, RESPONSE_JSON_SCHEMA

SCHEMA_PROBE: dict[str, Any] = {
    "messages": [{"role": "user", "content": 'Reply with the JSON object {"ok": true}.'}],
    "params": {
        "max_tokens": 16,
        "temperature": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "probe",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}},
                    "required": ["ok"],
                    "additionalProperties": False,
                },
            },
        },
    },
}
"""The one request that asks whether the endpoint takes a strict JSON schema."""

TOOLS_PROBE: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You answer by calling the tools you are given."},
        {"role": "user", "content": "Call the tool `ping` now."},
    ],
    "params": {
        "max_tokens": 64,
        "temperature": 0.0,
        "tool_choice": "auto",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "ping",
                    "description": "ping(): answers pong.",
                    "parameters": {
                        "type": "object",
                        "properties": {},
                        "required": [],
                        "additionalProperties": False,
                    },
                },
            }
        ],
    },
}
"""The one request that asks whether the endpoint answers `tools` with `tool_calls`."""


class EndpointError(PromptcastError):
    """A step asks for a capability the endpoint refused (`protocol="tools"` where the endpoint
    rejects `tools`)."""


class _Search(Protocol):
    """What settling needs of `base.Search` (this module does not import it: no cycle)."""

    lm: Any
    functions: dict[str, Signature]
    base_states: dict[str, FunctionState]
    notes: list[str]

    def score(self, label: str, states: Mapping[str, FunctionState]) -> float: ...


def probe_lm(lm: Any, probe: Mapping[str, Any]) -> tuple[bool, Completion] | None:
    """Send one probe: (accepted, the completion or, when rejected, the error as its text).

    Only the engine LM can be probed (`LiteLLMLM.probe`, found under the run's metering
    wrappers): it makes one attempt and caches the outcome. Any other LM (a test's scripted
    fake, a user's own object) is no endpoint to ask: None, and the steps keep what they send
    without a probe (the plain JSON mode, the text protocol for "auto").
    """
    inner = lm
    for _ in range(8):  # CountingLM -> BudgetedLM -> the LM: follow `inner` a few levels
        method: Callable[..., tuple[bool, Completion]] | None = getattr(inner, "probe", None)
        if callable(method):
            return method(probe["messages"], **dict(probe["params"]))
        if not hasattr(inner, "inner"):
            break
        inner = inner.inner
    return None


def _uses_json(signature: Signature) -> bool:
    return signature.adapter in ("json", "auto")


def _protocol(signature: Signature) -> str | None:
    """The protocol a step declares, None for a kind without one."""
    kind = get_kind(signature.kind)
    return str(signature.option("protocol")) if "protocol" in kind.defaults() else None


def settle_endpoint(search: _Search) -> set[str]:
    """Probe what the run's json and tool-calling steps need, once each, and set their base
    states (every candidate is built from those, so every score uses the choice).

    Returns the `protocol="auto"` steps left for `choose_protocols` (the endpoint answers with
    tool calls); their base state says "text" until then, so the zero-shot score is the text
    trial's."""
    json_steps = [q for q, s in search.functions.items() if _uses_json(s)]
    outcome = probe_lm(search.lm, SCHEMA_PROBE) if json_steps else None
    if outcome is not None:
        accepted, reply = outcome
        form = RESPONSE_JSON_SCHEMA if accepted else RESPONSE_JSON_OBJECT
        for qualname in json_steps:
            search.base_states[qualname] = dataclasses.replace(
                search.base_states[qualname], response_format=form
            )
        why = "" if accepted else f" (json_schema refused: {_short(reply.text)})"
        search.notes.append(f"response_format: {form} with the output schema{why}")
    tool_steps = {
        q: p
        for q, s in search.functions.items()
        if (p := _protocol(s)) in (TOOLS_PROTOCOL, AUTO_PROTOCOL)
    }
    if not tool_steps:
        return set()
    auto = {q for q, p in tool_steps.items() if p == AUTO_PROTOCOL}
    for qualname in auto:
        search.base_states[qualname] = dataclasses.replace(
            search.base_states[qualname], protocol=TEXT_PROTOCOL
        )
    found = probe_lm(search.lm, TOOLS_PROBE)
    if found is None:  # not an endpoint: score both protocols, as on one that takes tools
        return auto
    accepted, reply = found
    if accepted and reply.tool_calls:
        search.notes.append("tools: the endpoint answers `tools` with `tool_calls`")
        return auto
    what = (
        f"rejects `tools` ({_short(reply.text)})"
        if not accepted
        else f"takes `tools` but answered with no `tool_calls` (text: {_short(reply.text)!r})"
    )
    for qualname, protocol in tool_steps.items():
        name = search.functions[qualname].name
        if protocol == TOOLS_PROTOCOL:
            if not accepted:
                raise EndpointError(
                    f"{search.functions[qualname].location}: `{name}` has protocol='tools' but"
                    f" the endpoint {what}; use protocol='text' or 'auto'"
                )
            search.notes.append(f"protocol=tools for {name}: warning, the endpoint {what}")
            continue
        search.notes.append(f"protocol=auto for {name}: text (the endpoint {what})")
    return set()


def choose_protocols(search: _Search, open_steps: set[str]) -> None:
    """Settle each `protocol="auto"` ReAct step the probe left open: score text and tools
    zero-shot on dev (the other steps as they stand) and lock the better; a tie keeps text.
    Both trials join the history, and the state records the choice."""
    for qualname, signature in search.functions.items():
        if qualname not in open_steps:
            continue
        scores: dict[str, float] = {}
        for protocol in (TEXT_PROTOCOL, TOOLS_PROTOCOL):
            state = dataclasses.replace(search.base_states[qualname], protocol=protocol)
            label = f"zero-shot, {signature.name} protocol={protocol}"
            scores[protocol] = search.score(label, {**search.base_states, qualname: state})
        chosen = TOOLS_PROTOCOL if scores[TOOLS_PROTOCOL] > scores[TEXT_PROTOCOL] else TEXT_PROTOCOL
        search.base_states[qualname] = dataclasses.replace(
            search.base_states[qualname], protocol=chosen
        )
        tried = ", ".join(f"{p} {scores[p]:.3f}" for p in (TEXT_PROTOCOL, TOOLS_PROTOCOL))
        search.notes.append(f"protocol=auto for {signature.name}: {tried} -> {chosen}")


def auto_protocol_steps(functions: Mapping[str, Signature]) -> int:
    """How many steps `choose_protocols` may score twice (for --dry-run's estimate)."""
    return sum(1 for s in functions.values() if _protocol(s) == AUTO_PROTOCOL)


def _short(text: str) -> str:
    return " ".join(text.split())[:160]


def with_endpoint_choices(
    states: Mapping[str, FunctionState], settled: Mapping[str, FunctionState]
) -> dict[str, FunctionState]:
    """`states` (e.g. zero-shot ones a report replays) with the endpoint's answer the run's
    `settled` states hold: the probed `response_format`, so a replay sends what was scored."""
    return {
        q: dataclasses.replace(state, response_format=settled[q].response_format)
        if q in settled
        else state
        for q, state in states.items()
    }
