"""The load generator's lean HTTP/1.1 client against a real socket server (bench_service)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from keepalive_http import HTTPError, KeepAliveClient  # noqa: E402


async def _serve(answers: list[bytes], seen: list[bytes], connections: list[int]):
    """A socket server that reads each request (head + Content-Length body) and writes the
    next canned answer; an answer with "Connection: close" ends its connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while answers:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            seen.append(head + await reader.readexactly(length))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer.lower():
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _answer(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_posts_on_one_connection_and_reconnects_after_close():
    answers = [
        _answer("201 Created", b'{"a":1}'),
        _answer("429 Too Many Requests", b"slow down", "connection: close"),
        _answer("201 Created", b"{}"),
    ]
    seen: list[bytes] = []
    connections: list[int] = []

    async def main():
        server = await _serve(answers, seen, connections)
        port = server.sockets[0].getsockname()[1]
        client = KeepAliveClient(f"http://127.0.0.1:{port}", {"X-API-Key": "k"})
        got = [await client.post_json("/v1/reviews", b'{"text":"x"}') for _ in range(3)]
        await client.close()
        server.close()
        return got

    got = asyncio.run(main())
    assert got == [(201, b'{"a":1}'), (429, b"slow down"), (201, b"{}")]
    assert len(connections) == 2  # kept alive, then a new one after "Connection: close"
    assert seen[0].startswith(b"POST /v1/reviews HTTP/1.1\r\n")
    assert b"X-API-Key: k\r\n" in seen[0] and seen[0].endswith(b'\r\n\r\n{"text":"x"}')


@pytest.mark.parametrize(
    "answer, message",
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", "chunked"),
        (b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\n", "without Content-Length"),
        (b"HTTP/1.1 201 Created\r\ncontent-length: 10\r\nconnection: close\r\n\r\nabc", "broke"),
    ],
)
def test_answers_it_cannot_read_are_errors(answer, message):
    async def main():
        server = await _serve([answer], [], [])
        port = server.sockets[0].getsockname()[1]
        client = KeepAliveClient(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(HTTPError, match=message):
                await client.post_json("/", b"{}")
        finally:
            await client.close()
            server.close()

    asyncio.run(main())


def test_a_server_that_never_answers_is_an_error():
    async def main():
        async def mute(reader, writer):
            await reader.read(1 << 16)  # reads the request, never answers
            await asyncio.sleep(5)

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = KeepAliveClient(f"http://127.0.0.1:{port}", timeout_s=0.2)
        try:
            with pytest.raises(HTTPError, match="no answer"):
                await client.post_json("/", b"{}")
        finally:
            server.close()

    asyncio.run(main())


def test_only_http_urls():
    with pytest.raises(ValueError, match="only http://"):
        KeepAliveClient("https://example.org")
