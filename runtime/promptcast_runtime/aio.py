"""One HTTP POST over asyncio streams: the async client's transport, standard library only.

Why not `asyncio.to_thread(urllib...)`: that parks a thread per in-flight call, so 200
concurrent calls would need 200 threads. Here every call is a coroutine on the caller's event
loop: one connection per request (`Connection: close`), TLS through `ssl` for https, the
status line and headers read by hand, the body by Content-Length, chunked encoding, or to EOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Mapping


class HTTPResponse:
    """Status, headers (lower-case names) and the whole body of one response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def get(self, name: str) -> str | None:
        """A header by case-insensitive name (the `headers.get` that `lm.retry_after` reads)."""
        return self.headers.get(name.lower())


_MAX_HEADER_BYTES = 64 * 1024


async def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HTTPResponse:
    """POST `body` to `url`; the whole exchange must finish within `timeout` seconds.

    Raises `ConnectionError`/`OSError` for transport faults, `TimeoutError` on the deadline and
    `ValueError` for a response that is not HTTP/1.x, or before connecting for a header that
    would break the request's header block (a line break or a non-latin-1 character; the
    error names the header, never its value, which may be a key).
    """
    for name, value in headers.items():
        for text in (name, value):
            if "\r" in text or "\n" in text or not text.isascii() and not _latin1(text):
                raise ValueError(f"header {name!r} holds a line break or a non-latin-1 character")
    return await asyncio.wait_for(_exchange(url, body, headers), timeout)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


async def _exchange(url: str, body: bytes, headers: Mapping[str, str]) -> HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    ssl_context = None
    if secure:
        import ssl

        ssl_context = ssl.create_default_context()
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        netloc = parts.netloc.rpartition("@")[2]
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {netloc}",
            "Connection: close",
            f"Content-Length: {len(body)}",
            "Accept-Encoding: identity",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status, response_headers = await _read_head(reader)
        return HTTPResponse(status, response_headers, await _read_body(reader, response_headers))
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # the response is read; a reset on close changes nothing
            await writer.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise ConnectionError(f"connection closed before the response headers: {exc}") from None
    except asyncio.LimitOverrunError:
        raise ValueError("response headers are too long") from None
    if len(head) > _MAX_HEADER_BYTES:
        raise ValueError("response headers are too long")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {status_line[:80]!r}")
    try:
        status = int(rest.split(" ", 1)[0])
    except ValueError:
        raise ValueError(f"bad status line: {status_line[:80]!r}") from None
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader)
        length = headers.get("content-length")
        if length is not None:
            return await reader.readexactly(int(length))
        return await reader.read()
    except asyncio.IncompleteReadError as exc:
        raise ConnectionError(f"response body cut short: {exc}") from None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


class StreamResponse:
    """An open response whose body is read as it arrives (a streamed completion).

    `status` and `headers` are read; `chunks(timeout)` yields the body's bytes as the server
    sends them (chunked transfer decoded), each read bounded by `timeout`; `close()` drops the
    connection, which is how a caller that stops reading tells the server to stop.
    """

    __slots__ = ("_reader", "_writer", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.status = status
        self.headers = headers
        self._reader = reader
        self._writer = writer

    def get(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    async def read_body(self, timeout: float) -> bytes:
        """The whole body (an error status's, or a reply that is not a stream)."""
        return await asyncio.wait_for(_read_body(self._reader, self.headers), timeout)

    async def chunks(self, timeout: float) -> AsyncIterator[bytes]:
        reader = self._reader
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    return
                while size:
                    data = await asyncio.wait_for(reader.read(min(size, 65536)), timeout)
                    if not data:
                        raise ConnectionError("response body cut short inside a chunk")
                    size -= len(data)
                    yield data
                await asyncio.wait_for(reader.readexactly(2), timeout)
        length = self.headers.get("content-length")
        left = int(length) if length is not None else -1
        while left:
            size = 65536 if left < 0 else min(left, 65536)
            data = await asyncio.wait_for(reader.read(size), timeout)
            if not data:
                if left > 0:
                    raise ConnectionError("response body cut short")
                return
            left -= len(data) if left > 0 else 0
            yield data

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self._writer.wait_closed()


async def open_stream(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> StreamResponse:
    """POST `body` and read the status and headers (within `timeout`); the body is left to
    `StreamResponse.chunks`. The same errors as `post` for connecting and the head."""
    for name, value in headers.items():
        for text in (name, value):
            if "\r" in text or "\n" in text or not text.isascii() and not _latin1(text):
                raise ValueError(f"header {name!r} holds a line break or a non-latin-1 character")
    return await asyncio.wait_for(_open(url, body, headers), timeout)


async def _open(url: str, body: bytes, headers: Mapping[str, str]) -> StreamResponse:
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https"
    ssl_context = None
    if secure:
        import ssl

        ssl_context = ssl.create_default_context()
    reader, writer = await asyncio.open_connection(
        parts.hostname or "", parts.port or (443 if secure else 80), ssl=ssl_context
    )
    try:
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {parts.netloc.rpartition('@')[2]}",
            "Connection: close",
            f"Content-Length: {len(body)}",
            "Accept-Encoding: identity",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status, response_headers = await _read_head(reader)
    except BaseException:
        writer.close()
        raise
    return StreamResponse(status, response_headers, reader, writer)
