"""`build_step`: the one factory that turns a literal step spec into a runnable step.

A generated module holds, per compiled function, one spec literal (plain data: instructions,
field names and descriptions, demos, adapter, sampling parameters, kind options) and hands it
to `build_step` with the live Python types the data cannot carry. During development the
compiler builds the very same spec from the source and the current state and calls the very same
factory, so what the optimizer scores is what ships by construction, not by a test comparing two
implementations (DESIGN principle 1).

A spec looks like this (`api` is checked against the runtime contract first):

    {
        "api": 2,
        "step": "app.triage:question_type",
        "kind": "predict",
        "instructions": "Classify the kind of answer a question asks for.",
        "inputs": {"question": "A question in English."},     # name -> description, in order
        "outputs": {"answer": "The coarse TREC answer type."},
        "shape": "single",           # or "object": outputs are the fields of `returns`
        "demos": (...),
        "adapter": "chat",
        "lm_params": {"max_tokens": 512, "temperature": 0.0},
        "options": {"parse_retries": 0},
        "optimized_for": "openai/qwen0.5b",   # optional: the lock's model (see hooks.StepOrigin)
        "model": "ft:qwen0.5b:trec:1a2b",     # optional: a trained model, sent as the request's
                                              # `model` (a call's own `model=` param wins)
        "nearest": {"k": 3, "pool": (...)},   # optional (knn): demos chosen per call (nearest.py)
        "protocol": "tools",                  # optional (react): native tool calls (tool_calls.py)
        "response_format": {"type": "json_schema", "json_schema": {...}},  # optional (json
                                              # adapter): the answer calls' structured output
        "ensemble": {"members": (...), "reduce": "majority"},  # optional: a vote (ensemble.py)
    }
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from .adapters import ADAPTERS
from .contract import check_api
from .errors import PromptcastRuntimeError
from .hooks import StepOrigin
from .kinds import check_lm_params, get_kind
from .lm import LM, Message
from .predictor import Prediction, Predictor
from .signature import Field, Signature, fields_from
from .streaming import AsyncPartialStream, PartialStream
from .tool_calls import PROTOCOLS

T = TypeVar("T")

SPEC_KEYS = frozenset(
    {
        "api",
        "step",
        "kind",
        "instructions",
        "inputs",
        "outputs",
        "shape",
        "demos",
        "adapter",
        "lm_params",
        "options",
    }
)
OPTIONAL_KEYS = frozenset(
    {"optimized_for", "nearest", "ensemble", "model", "protocol", "response_format"}
)
"""Keys a spec may leave out (contract rule: a new optional key keeps the API version)."""
SHAPES = ("single", "object")


class SpecError(PromptcastRuntimeError, ValueError):
    """A step spec that this runtime cannot build (hand-edited, or corrupted)."""


class Step(Protocol[T]):
    """What `build_step` returns, whatever the kind: a typed, callable LM step."""

    def messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The exact messages the (first) call with these inputs sends."""
        ...

    def forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """Run the step and return the full record (value, fields, messages, completion)."""
        ...

    async def aforward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]: ...

    def __call__(self, **inputs: Any) -> T: ...

    async def acall(self, **inputs: Any) -> T: ...

    def stream_forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> PartialStream[T]:
        """`forward`, yielding partial results as the completion arrives (`streaming.py`)."""
        ...

    def astream_forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> AsyncPartialStream[T]: ...

    def stream(self, **inputs: Any) -> PartialStream[T]: ...

    def astream(self, **inputs: Any) -> AsyncPartialStream[T]: ...


def build_step(
    spec: Mapping[str, Any],
    inputs: Mapping[str, Any],
    returns: Any,
    tools: Sequence[Callable[..., Any]] = (),
    media: str | None = None,
) -> Step[Any]:
    """The runnable step `spec` describes.

    `inputs` maps each input field to its annotation (`{"question": str}`); `returns` is the
    function's return annotation: the single output's type, or the class whose fields are the
    outputs (`shape` "object"). `tools` are the functions of a tool-calling kind. `media` is a
    file beside the `promptcast.media` folder that relative demo image paths resolve against
    (a generated module passes its `__file__`; nothing is read until a call renders them).
    """
    check_api(spec.get("api"), str(spec.get("step", "a generated step")))
    where = str(spec["step"])
    if "ensemble" in spec:
        return build_ensemble(spec, inputs, returns, tools, media)
    unknown = sorted(set(spec) - SPEC_KEYS - OPTIONAL_KEYS)
    missing = sorted(SPEC_KEYS - set(spec))
    if unknown or missing:
        raise SpecError(
            f"{where}: step spec has unknown keys {unknown} / lacks {missing}; rebuild it"
        )
    try:
        kind = get_kind(str(spec["kind"]))
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None
    if spec["adapter"] not in ADAPTERS:
        raise SpecError(
            f"{where}: unknown adapter {spec['adapter']!r}; known: {', '.join(ADAPTERS)}"
        )
    problem = check_lm_params(spec["lm_params"])
    if problem:
        raise SpecError(f"{where}: lm_params must be {problem}")
    options = {**kind.defaults(), **dict(spec["options"])}
    for option in kind.options:
        if option.state or option.source != "literal":
            continue
        problem = option.check(options[option.name])
        if problem:
            raise SpecError(f"{where}: option `{option.name}` must be {problem}")
    stray = sorted(set(spec["options"]) - {o.name for o in kind.options})
    if stray:
        raise SpecError(f"{where}: @{kind.name} has no option(s) {stray}")
    if not tools and any(o.source == "functions" and o.required for o in kind.options):
        raise SpecError(f"{where}: @{kind.name} needs its tools")
    missing_types = [name for name in spec["inputs"] if name not in inputs]
    if missing_types:
        raise SpecError(f"{where}: no annotation given for input(s) {missing_types}")
    input_fields = tuple(
        Field(name, inputs[name], str(desc)) for name, desc in spec["inputs"].items()
    )
    shape = spec["shape"]
    result: str | type
    if shape == "single":
        if len(spec["outputs"]) != 1:
            raise SpecError(f"{where}: a single-output step needs exactly one output")
        ((name, description),) = spec["outputs"].items()
        outputs: tuple[Field, ...] = (Field(name, returns, str(description)),)
        result = name
    elif shape == "object":
        outputs = fields_from(returns, dict(spec["outputs"]))
        result = returns
    else:
        raise SpecError(f"{where}: shape must be one of {SHAPES}, not {shape!r}")
    signature = Signature(str(spec["instructions"]), input_fields, (*kind.extra_outputs, *outputs))
    # The runtime class takes the kind's fixed options as keyword arguments of the same names
    # (tools, for a kind with a `functions` option, as given): adding a kind adds no code here.
    fixed = {o.name: options[o.name] for o in kind.options if not o.state}
    for option in kind.options:
        if option.source == "functions":
            fixed[option.name] = tuple(tools)
    if "protocol" in spec:  # a state option of a tool-calling kind, as the adapter is
        if "protocol" not in {o.name for o in kind.options}:
            raise SpecError(f"{where}: @{kind.name} has no protocol")
        if spec["protocol"] not in PROTOCOLS:
            raise SpecError(
                f"{where}: protocol must be one of {', '.join(PROTOCOLS)}, not {spec['protocol']!r}"
            )
        fixed["protocol"] = str(spec["protocol"])
    step: Step[Any] = kind.runtime_class()(
        signature,
        result,
        demos=tuple(spec["demos"]),
        adapter=str(spec["adapter"]),
        lm_params=dict(spec["lm_params"]),
        **fixed,
    )
    target = spec.get("optimized_for")
    if target is not None and not isinstance(target, str):
        raise SpecError(f"{where}: optimized_for must be a model name, not {target!r}")
    model = spec.get("model")
    if model is not None and not (isinstance(model, str) and model.strip()):
        raise SpecError(f"{where}: model must be a model name, not {model!r}")
    name_predictors(step, StepOrigin(where, target, model))
    if media is not None:
        attach_media(step, media)
    if "nearest" in spec:
        attach_nearest(step, spec["nearest"], [f.name for f in input_fields], where)
    if "response_format" in spec:
        attach_response_format(step, spec["response_format"], signature, spec["adapter"], where)
    return step


def attach_response_format(
    step: Any, response_format: Any, signature: Signature, adapter: str, where: str
) -> None:
    """A json step's structured output: every Predictor of the step that answers with the
    step's own outputs (the step itself; a ReAct step's answer call, not its turns; each call
    of a multi-chain step) sends `response_format` instead of the adapter's plain JSON mode.

    The compiler chose it once, at optimize time, for the target endpoint (`json_schema` where
    it takes one, else `json_object` with the schema) and scored it: a built module sends it
    as it is and never probes or retries another.
    """
    from .kinds import json_problem

    if adapter != "json":
        raise SpecError(f"{where}: response_format needs the json adapter, not {adapter!r}")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    problem = json_problem(response_format) if kind is not None else "not a dict with a type"
    if problem or kind not in ("json_schema", "json_object"):
        raise SpecError(
            f"{where}: response_format must be a json_schema or json_object format, not"
            f" {response_format!r}"
        )
    found = [step] if isinstance(step, Predictor) else []
    for slot in getattr(type(step), "__slots__", ()):
        value = getattr(step, slot, None)
        if isinstance(value, Predictor):
            found.append(value)
    outputs = [(f.name, f.annotation) for f in signature.outputs]
    for predictor in found:
        if [(f.name, f.annotation) for f in predictor.signature.outputs] == outputs:
            predictor.format_params = {"response_format": dict(response_format)}


def build_ensemble(
    spec: Mapping[str, Any],
    inputs: Mapping[str, Any],
    returns: Any,
    tools: Sequence[Callable[..., Any]],
    media: str | None = None,
) -> Step[Any]:
    """An ensemble step (`ensemble.py`): each member is this spec with the member's state,
    built by `build_step` like any step; their answers are reduced by vote."""
    from .ensemble import EnsembleStep, check_ensemble

    where = str(spec["step"])
    entry = spec["ensemble"]
    problem = check_ensemble(entry)
    if problem:
        raise SpecError(f"{where}: ensemble must be {problem}")
    if "nearest" in spec:
        raise SpecError(f"{where}: an ensemble's members cannot also draw nearest demos")
    base = {k: v for k, v in spec.items() if k != "ensemble"}
    members = [
        build_step({**base, **member}, inputs, returns, tools, media) for member in entry["members"]
    ]
    ensemble: Step[Any] = EnsembleStep(members, str(entry["reduce"]))
    return ensemble


def attach_nearest(step: Any, nearest: Any, fields: Sequence[str], where: str) -> None:
    """A knn step: its demos are chosen per call from the spec's pool (`nearest.py`).

    Only a kind that is one Predictor (predict, chain_of_thought) can: the demos of a ReAct or
    multi-chain step belong to calls whose inputs are not the step's own.
    """
    from .nearest import NearestDemos, check_nearest

    problem = check_nearest(nearest)
    if problem:
        raise SpecError(f"{where}: nearest must be {problem}")
    if not isinstance(step, Predictor):
        raise SpecError(f"{where}: nearest-neighbour demos need a predict or chain_of_thought step")
    step.nearest = NearestDemos(tuple(nearest["pool"]), int(nearest["k"]), fields)


def attach_media(step: Any, media: str) -> None:
    """Relative demo image paths of the step's predictors resolve beside the file `media`."""
    import os

    root = os.path.dirname(os.path.abspath(media))
    for predictor in _predictors(step):
        if predictor.conversation is not None:
            predictor.conversation.root = root


def _predictors(step: Any) -> list[Predictor[Any]]:
    """The step itself if it is a Predictor, and the Predictors in its slots."""
    found = [step] if isinstance(step, Predictor) else []
    for slot in getattr(type(step), "__slots__", ()):
        value = getattr(step, slot, None)
        if isinstance(value, Predictor):
            found.append(value)
    return found


def name_predictors(step: Any, origin: StepOrigin) -> None:
    """Give every `Predictor` of a step (the step itself, or the ones a ReAct or multi-chain
    step holds in its slots) the function's origin: its name for hooks, its target model."""
    found = [step] if isinstance(step, Predictor) else []
    for slot in getattr(type(step), "__slots__", ()):
        value = getattr(step, slot, None)
        if isinstance(value, Predictor):
            found.append(value)
    for predictor in found:
        predictor.origin = origin
