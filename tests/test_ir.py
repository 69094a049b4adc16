"""IR invariants that lock files depend on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from promptcast.frontend.package import load_package

FIXTURE = Path(__file__).parent / "fixtures" / "onepath" / "onepath"


def test_fields_added_later_do_not_change_existing_hashes_at_their_default() -> None:
    signature = load_package(FIXTURE).signature("onepath.steps:mood")
    assert signature.parse_retries == 0
    retrying = dataclasses.replace(signature, parse_retries=1)
    assert retrying.hash() != signature.hash()
    # The hash a lock written before `parse_retries` existed recorded for this function.
    payload = dataclasses.asdict(signature)
    payload.pop("location")
    for later in ("parse_retries", "tools", "max_iters"):
        payload.pop(later)
    import hashlib

    from promptcast.ir import canonical_json

    old = "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]
    assert signature.hash() == old
    assert dataclasses.replace(signature, max_iters=7).hash() != old
