"""Test support shared by the suite and the benchmarks: a fake OpenAI-compatible server.

Stdlib only (``fixtures`` alone imports pytest), so benchmark venvs can run it as a script:
``python -m tests.support.openai_server --port 0 --latency 0.2 --answers FILE.json``.
"""

from .faults import FaultKind, FaultPlan
from .openai_server import FakeOpenAIServer
from .payloads import TableResponder, last_user_message

__all__ = ["FakeOpenAIServer", "FaultKind", "FaultPlan", "TableResponder", "last_user_message"]
