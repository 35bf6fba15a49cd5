"""bench_service's clients: requests that get no HTTP answer are counted, not dropped."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_service  # noqa: E402


class _DropsPosts(BaseHTTPRequestHandler):
    """Answers GET /metrics (empty), drops every POST without an answer."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.close_connection = True  # closes the socket, nothing written

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("client", ["lean", "httpx"])
def test_requests_without_an_answer_are_counted_with_the_reason(client):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DropsPosts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        r = asyncio.run(
            bench_service.run_clients(url, "k", 2, 0.5, 0.1, ["a review"], os.getpid(), client)
        )
    finally:
        server.shutdown()
    assert set(r["status_codes"]) == {bench_service.NO_ANSWER}
    n = r["status_codes"][bench_service.NO_ANSWER]
    assert n > 0 and n == r["requests"] and sum(r["transport_errors"].values()) == n
    assert r["reviews_per_s"] == 0
