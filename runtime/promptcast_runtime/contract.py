"""The contract between generated modules and this runtime: an API version and the names.

Generated code is data for the runtime (as protobuf's generated modules are for its runtime):
each compiled step is one literal spec handed to `build_step`, and the spec says which API
version it was written for. The runtime, not the compiler, owns both the version and the list
of names generated code may import, so a module built by one compiler and run beside another
runtime fails at import with one clear error instead of misbehaving later.

Rules for changing this file: a new *optional* spec key with a default keeps `RUNTIME_API`; a
key whose absence or meaning changes behaviour bumps it. A runtime keeps accepting older API
versions for as long as `OLDEST_SUPPORTED_API` says. The names in `GENERATED_NAMES` are never
removed while any supported API version uses them.
"""

from __future__ import annotations

from .errors import PromptcastRuntimeError

RUNTIME_VERSION = "0.1.0"
"""The version of this runtime package (`promptcast_runtime.__version__`)."""

RUNTIME_API = 2
"""The spec version this runtime writes about and reads best."""

OLDEST_SUPPORTED_API = 2
"""The oldest spec version `build_step` still accepts (API 1 modules built `Predictor`s
directly and predate the check)."""

STEP_NAMES = ("AsyncPartialStream", "PartialStream", "Step", "build_step")
"""What a compiled step's code imports: the factory, the type of what it returns, and the
return types of its streaming twins `<name>_stream` / `<name>_astream` (`streaming.py`)."""

SAMPLING_NAMES = ("best_of_n", "majority", "refine")
"""Sampling strategies a program may call (`pc.best_of_n` builds to the runtime's)."""

INPUT_TYPE_NAMES = ("History", "Image")
"""Input types a step may declare (`pc.History` and `pc.Image` build to the runtime's)."""

GENERATED_NAMES = (*STEP_NAMES, *SAMPLING_NAMES, *INPUT_TYPE_NAMES)
"""Every `promptcast_runtime` name generated code may import."""


class RuntimeVersionError(PromptcastRuntimeError, ImportError):
    """A generated module needs a runtime API this runtime does not provide.

    An ImportError, because it is raised while the generated module is being imported.
    """


def check_api(api: object, step: str) -> None:
    """Raise `RuntimeVersionError` unless this runtime can build a spec of version `api`."""
    whole = isinstance(api, int) and not isinstance(api, bool)
    if whole and OLDEST_SUPPORTED_API <= api <= RUNTIME_API:  # type: ignore[operator]
        return
    import os

    where = os.path.dirname(os.path.abspath(__file__))
    supported = (
        f"API {RUNTIME_API}"
        if OLDEST_SUPPORTED_API == RUNTIME_API
        else f"APIs {OLDEST_SUPPORTED_API}..{RUNTIME_API}"
    )
    if isinstance(api, int) and not isinstance(api, bool) and api > RUNTIME_API:
        advice = (
            "this runtime is older than the compiler that built the module: upgrade "
            "promptcast_runtime to the compiler's version, or rebuild with --vendor-runtime "
            "so the module ships with its own runtime"
        )
    elif isinstance(api, int) and not isinstance(api, bool):
        advice = (
            "the module was built by an older promptcast: rebuild it with `promptcast build` "
            "(no LM calls; the lock keeps its optimized state)"
        )
    else:
        advice = "the spec has no valid `api` field; rebuild it with `promptcast build`"
    raise RuntimeVersionError(
        f"{step} was built for promptcast_runtime API {api!r}, but the promptcast_runtime "
        f"{RUNTIME_VERSION} imported from {where} supports {supported}; {advice}"
    )
