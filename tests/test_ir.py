"""IR invariants that lock files depend on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from promptcast.frontend.package import load_package

FIXTURE = Path(__file__).parent / "fixtures" / "onepath" / "onepath"


def test_fields_added_later_do_not_change_existing_hashes_at_their_default() -> None:
    signature = load_package(FIXTURE).signature("onepath.steps:mood")
    assert signature.parse_retries == 0
    retrying = dataclasses.replace(signature, options=(("parse_retries", 1),))
    assert retrying.parse_retries == 1
    assert retrying.hash() != signature.hash()
    # The hash a lock written before `parse_retries` existed recorded for this function:
    # the fields of the first lock format only.
    payload = dataclasses.asdict(signature)
    payload.pop("location")
    for later in ("options", "tools"):
        payload.pop(later)
    import hashlib

    from promptcast.ir import canonical_json

    old = "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]
    assert signature.hash() == old
    assert dataclasses.replace(signature, options=(("max_iters", 7),)).hash() != old
    lm_params = (("lm_params", {"max_tokens": 64}),)
    assert dataclasses.replace(signature, options=lm_params).hash() != old
