"""The rate-limited latency server for the scale section: the optimize section's fake server
(`fake_server.py`: correct TREC labels found inside the message, TCP_NODELAY) plus a
provider's request limit -- a token bucket of `--requests-per-minute`, one second deep,
answering 429 with `Retry-After` over it (`tests/support/rate_limit.py`). `GET /_stats` counts
chat requests and the 429s served (`fault:rate_limit`). Run with the project's interpreter;
prints the base URL, serves until stdin closes:

    .venv/bin/python bench/scale_server.py --latency 0.2 --requests-per-minute 600
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from answers import AnswerTable  # noqa: E402
from fake_server import _no_delay  # noqa: E402

from tests.support.openai_server import FakeOpenAIServer  # noqa: E402
from tests.support.payloads import last_user_message  # noqa: E402
from tests.support.rate_limit import RateLimitPlan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--requests-per-minute", type=float, default=None)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=3600)
    args = parser.parse_args()
    table = AnswerTable(reasoning=False, accuracy=1.0)

    def respond(body: dict[str, Any]) -> str:
        return table(last_user_message(body))

    plan = RateLimitPlan(
        requests_per_minute=args.requests_per_minute, retry_after_s=args.retry_after
    )
    server = FakeOpenAIServer(respond, latency=args.latency, faults=plan)
    _no_delay(server)
    with server:
        print(server.url, flush=True)
        done = threading.Thread(target=sys.stdin.read, daemon=True)
        done.start()
        done.join(args.max_seconds)


if __name__ == "__main__":
    main()
