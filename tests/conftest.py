"""Shared fixtures: the fake OpenAI-compatible server, and the real local model for `slow` tests."""

from __future__ import annotations

import os
import urllib.request

import pytest

from tests.support.fixtures import fake_openai_server, fake_openai_server_factory  # noqa: F401

LOCAL_LM_URL = os.environ.get("PROMPTCAST_TEST_LM_URL", "http://127.0.0.1:8765/v1")
LOCAL_LM_MODEL = os.environ.get("PROMPTCAST_TEST_LM_MODEL", "qwen0.5b")


@pytest.fixture(scope="session")
def local_lm_url() -> str:
    """The real local model's base URL. `slow` tests fail (not skip) when it is not running:
    CI starts it (scripts/test.sh); locally run `scripts/lm/start.sh` or deselect with -m 'not slow'."""
    try:
        with urllib.request.urlopen(f"{LOCAL_LM_URL}/models", timeout=120) as response:
            response.read()
    except OSError as exc:
        pytest.fail(
            f"the local model is not answering at {LOCAL_LM_URL} ({exc}); "
            "start it with scripts/lm/start.sh, or run pytest -m 'not slow'"
        )
    return LOCAL_LM_URL
