"""IR + state -> the literal step spec, and the runtime step built from it.

`step_spec` is the only place that decides what a compiled step *is*: the code generator writes
its result as a literal into the generated module, and the development call hands the same
result to the same runtime factory (`promptcast_runtime.build_step`). So the request a step
sends while it is optimized is the request the shipped module sends, by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from promptcast_runtime import RUNTIME_API, Step, build_step
from promptcast_runtime.kinds import get_kind

from . import ir
from .json_schema import response_format


def step_spec(
    signature: ir.Signature, state: ir.FunctionState, optimized_for: str | None = None
) -> dict[str, Any]:
    """The spec `build_step` reads: plain data only (strings, numbers, tuples, dicts).

    `optimized_for` (the lock entry's model, for a built module) lets the runtime warn when the
    module is called with another model; development steps leave it out.
    """
    structured = signature.return_shape != "single"
    spec: dict[str, Any] = {
        "api": RUNTIME_API,
        "step": signature.qualname,
        "kind": signature.kind,
        "instructions": state.instructions,
        "inputs": {f.name: f.description for f in signature.inputs},
        "outputs": {f.name: f.description for f in signature.outputs},
        "shape": "object" if structured else "single",
        "demos": tuple(in_field_order(d, signature) for d in state.demos),
        "adapter": state.adapter,
        "lm_params": dict(sorted(state.lm_params.items())),
        "options": signature.kind_options(),
    }
    if optimized_for:
        spec["optimized_for"] = optimized_for
    if state.model:
        spec["model"] = state.model
    if state.protocol:
        spec["protocol"] = state.protocol
    if state.response_format and state.adapter == "json" and not state.members:
        # The structured output the endpoint takes (one probe at optimize time), with the
        # schema derived from the output type: a literal of the generated module.
        spec["response_format"] = response_format(signature, state.response_format)
    if state.members:
        spec["ensemble"] = {
            "members": tuple(
                {
                    "instructions": m.instructions,
                    "demos": tuple(in_field_order(d, signature) for d in m.demos),
                    "adapter": m.adapter,
                    "lm_params": dict(sorted(m.lm_params.items())),
                }
                for m in state.members
            ),
            "reduce": "majority",
        }
    if state.nearest_k:
        spec["nearest"] = {
            "k": state.nearest_k,
            "pool": tuple(in_field_order(d, signature) for d in state.demo_pool),
        }
    return spec


def dev_step(
    signature: ir.Signature,
    state: ir.FunctionState,
    annotations: dict[str, Any],
    tools: Sequence[Callable[..., Any]] = (),
    media: str | None = None,
) -> Step[Any]:
    """The runtime step of `signature` in `state`, from the function's real type hints
    (`typing.get_type_hints(fn)`, with `return`) -- the objects the generated module names.
    `media`: the lock file whose `promptcast.media/` holds the state's demo images."""
    return build_step(
        step_spec(signature, state),
        inputs={f.name: annotations[f.name] for f in signature.inputs},
        returns=annotations["return"],
        tools=tools,
        media=media if takes_images(signature) else None,
    )


def takes_images(signature: ir.Signature) -> bool:
    """The function has an Image input (its demos may reference image files)."""

    def uses(schema: ir.TypeSchema) -> bool:
        return schema.kind == "image" or any(uses(a) for a in schema.args)

    return any(uses(f.type) for f in signature.inputs)


def in_field_order(demo: ir.Demo, signature: ir.Signature) -> ir.Demo:
    """Demo keys in signature order (inputs, the kind's own outputs, outputs), as a reader
    expects them. The lock stores keys sorted; the order never changes the prompt (fields are
    looked up by name), only how the literal reads."""
    extra = get_kind(signature.kind).reserved_names
    order = [f.name for f in signature.inputs] + list(extra) + [f.name for f in signature.outputs]
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(demo.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))
