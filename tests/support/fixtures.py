"""pytest fixtures around :class:`FakeOpenAIServer`.

Why a factory: most tests want one default server, but reliability and benchmark tests need
several configurations (latency, faults, answer tables) in one test. Every server a fixture
makes is closed at teardown, so no thread or socket outlives its test.

Use from ``tests/conftest.py``::

    from tests.support.fixtures import fake_openai_server, fake_openai_server_factory  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .openai_server import FakeOpenAIServer

ServerFactory = Callable[..., FakeOpenAIServer]


@pytest.fixture
def fake_openai_server_factory() -> Iterator[ServerFactory]:
    """Returns ``make(**kwargs)``: starts a FakeOpenAIServer(**kwargs); all closed afterwards."""
    servers: list[FakeOpenAIServer] = []

    def make(*args: Any, **kwargs: Any) -> FakeOpenAIServer:
        server = FakeOpenAIServer(*args, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def fake_openai_server(fake_openai_server_factory: ServerFactory) -> FakeOpenAIServer:
    """A running server with default behaviour: echo, no latency, no faults."""
    return fake_openai_server_factory()
