"""The latency-bound LM for section 3: the tests' fake OpenAI server, answering from the table.

Why not the server's own `--answers` table: that is keyed by the whole last user message,
which differs between the two systems (DSPy adds a type note to it). This responder finds the
question inside the message instead (`answers.py`), so both systems get the same correct label
for the same question. Run from the repository root with the project's interpreter; prints the
base URL, serves until stdin closes (or `--max-seconds`):

    .venv/bin/python bench/fake_server.py --latency 0.2
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from answers import AnswerTable  # noqa: E402

from tests.support.openai_server import FakeOpenAIServer  # noqa: E402
from tests.support.payloads import last_user_message  # noqa: E402


def _no_delay(server: FakeOpenAIServer) -> None:
    """TCP_NODELAY on every accepted connection.

    The handler writes the status line + headers and then the body as two small sends; with
    Nagle's algorithm on, the second waits for the client's delayed ACK of the first, adding
    ~40 ms to every response on Linux (measured: 200 ms latency answered in ~245 ms). That is
    an artefact of the test server, not of either client, so the benchmark turns it off.
    """
    httpd = server._httpd
    process_request = httpd.process_request

    def with_no_delay(request: socket.socket, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        process_request(request, client_address)

    httpd.process_request = with_no_delay  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--max-seconds", type=float, default=3600)
    parser.add_argument("--accuracy", type=float, default=1.0, help="share of right answers")
    args = parser.parse_args()
    table = AnswerTable(reasoning=False, accuracy=args.accuracy)

    def respond(body: dict[str, Any]) -> str:
        return table(last_user_message(body))

    server = FakeOpenAIServer(respond, latency=args.latency)
    _no_delay(server)
    with server:
        print(server.url, flush=True)
        done = threading.Thread(target=sys.stdin.read, daemon=True)
        done.start()
        done.join(args.max_seconds)


if __name__ == "__main__":
    main()
