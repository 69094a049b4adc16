"""IR + state + real annotations -> the runtime `Predictor` a function runs through.

This is the development-time twin of what codegen writes as literals: both produce a
`promptcast_runtime.Predictor` with the same signature, demos and parameters, so the messages
sent while optimizing equal those the shipped module sends (tests hold the two equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from promptcast_runtime import REASONING, Field, Predictor, Signature, fields_from
from promptcast_runtime.react import ReAct

from . import ir


def single_output_returns(signature: ir.Signature) -> str | None:
    """The output field name a single-output function returns, or None for a structured return."""
    return signature.outputs[0].name if signature.return_shape == "single" else None


def runtime_signature(
    signature: ir.Signature, state: ir.FunctionState, annotations: dict[str, Any]
) -> tuple[Signature, str | type]:
    """The runtime Signature of `signature` in `state`, and what the call returns.

    `annotations` are the function's real type hints (`typing.get_type_hints(fn)`), including
    `return`: the runtime needs the actual types to describe and parse them.
    """
    inputs = tuple(
        Field(field.name, annotations[field.name], field.description) for field in signature.inputs
    )
    return_type = annotations["return"]
    returns: str | type
    if signature.return_shape == "single":
        outputs: tuple[Field, ...] = (
            Field(signature.outputs[0].name, return_type, signature.outputs[0].description),
        )
        returns = signature.outputs[0].name
    else:
        outputs = fields_from(return_type, {f.name: f.description for f in signature.outputs})
        returns = return_type
    if signature.kind == "chain_of_thought":
        outputs = (REASONING, *outputs)
    return Signature(state.instructions, inputs, outputs), returns


def build_predictor(
    signature: ir.Signature,
    state: ir.FunctionState,
    annotations: dict[str, Any],
) -> Predictor[Any]:
    """A runtime Predictor for `signature` in `state` (see `runtime_signature`)."""
    runtime, returns = runtime_signature(signature, state, annotations)
    return Predictor(
        runtime,
        returns=returns,
        demos=tuple(state.demos),
        adapter=state.adapter,
        lm_params=dict(state.lm_params),
        parse_retries=signature.parse_retries,
    )


def build_react(
    signature: ir.Signature,
    state: ir.FunctionState,
    annotations: dict[str, Any],
    tools: Sequence[Callable[..., Any]],
) -> ReAct[Any]:
    """A runtime ReAct for a `react` signature: the loop over `tools`, then the typed answer."""
    runtime, returns = runtime_signature(signature, state, annotations)
    return ReAct(
        runtime,
        returns=returns,
        tools=tools,
        max_iters=signature.max_iters,
        demos=tuple(state.demos),
        adapter=state.adapter,
        lm_params=dict(state.lm_params),
        parse_retries=signature.parse_retries,
    )
