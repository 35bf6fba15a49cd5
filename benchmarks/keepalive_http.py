"""A lean HTTP/1.1 keep-alive client for load generators on the server's own machine.

On a 2-core box the load generator and the server share the cores, so every CPU second the
client spends is taken from the server it measures. httpx's AsyncClient costs ~1.2 ms of CPU
per POST (measured: 0.16-0.17 of a core at ~140 requests/s, BENCHMARKS.md); this client writes the
request bytes on one persistent connection and reads the answer by its Content-Length, a small
fraction of that. It speaks plain HTTP/1.1 to the real server: the status line, the headers and
the whole body are read for every request, and anything it does not handle (chunked bodies, a
missing Content-Length) is an error, never silently skipped.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HTTPError(Exception):
    """The server's answer is not what this client can read (or the connection broke)."""


class KeepAliveClient:
    """One connection, one request at a time (a closed-loop client).

    Args:
        url: the server's base URL (``http://host:port``; https is not supported).
        headers: sent with every request (e.g. ``{"X-API-Key": key}``).
        timeout_s: longest wait for an answer (then :class:`HTTPError`).
    """

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, timeout_s: float = 30.0
    ) -> None:
        self.timeout_s = timeout_s
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r}: only http://host:port URLs are supported")
        self.host, self.port = parts.hostname, parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = f"Host: {self.host}:{self.port}\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (already JSON-encoded) to ``path``; returns (status, response body).

        Raises:
            HTTPError: the connection closed early, no answer came within ``timeout_s``, or
                the answer has no Content-Length.
        """
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        request = (
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        self._writer.write(request)
        try:
            return await asyncio.wait_for(self._read_response(), self.timeout_s)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            await self.close()
            raise HTTPError(f"connection to {self.host}:{self.port} broke: {e}") from None
        except TimeoutError:
            await self.close()
            raise HTTPError(
                f"no answer from {self.host}:{self.port} in {self.timeout_s:g} s"
            ) from None

    async def _read_response(self) -> tuple[int, bytes]:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])  # "HTTP/1.1 201 Created"
        length, close = None, False
        for line in lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise HTTPError(f"Transfer-Encoding {value.strip()!r} is not supported")
        if length is None:
            raise HTTPError(f"HTTP {status} answer without Content-Length")
        body = await self._reader.readexactly(length)
        if close:  # the server ends the connection: the next request opens a new one
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        self._reader = self._writer = None
