"""Helpers shared by the service and CLI tests (plain functions; no pytest fixtures)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import tiny_models

from reviewsense import rundir


def build_tiny_model(path: Path, *, threshold: float | None = None) -> Path:
    """A random 2-layer BERT with MiniLM's tokenizer, saved as a reviewsense model folder."""
    settings = rundir.ModelSettings(max_length=64, truncation="head", threshold=threshold)
    return tiny_models.build_tiny_model(path, settings=settings)


class FixedPredictor:
    """Wraps the real predictor: P(negative) comes from the text ("bad" → 0.9, else 0.1).

    The tiny model's outputs are random; tests about flags need to know which reviews get
    flagged. Labels, truncation and the model version still come from the real predictor.
    """

    def __init__(self, real) -> None:
        self.real = real
        self.settings = real.settings
        self.model_version = real.model_version
        self.calls: list[int] = []

    def predict(self, texts):
        from dataclasses import replace

        self.calls.append(len(texts))
        out = []
        for t, p in zip(texts, self.real.predict(texts), strict=True):
            neg = 0.9 if "bad" in t.lower() else 0.1
            label = "negative" if neg >= 0.5 else "positive"
            out.append(
                replace(
                    p,
                    label=label,
                    score=max(neg, 1 - neg),
                    prob_negative=neg,
                    prob_positive=1 - neg,
                )
            )
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_key(db_url: str, role: str) -> str:
    from reviewsense.service import crud
    from reviewsense.service.db import make_engine, make_sessionmaker, run_migrations

    engine = make_engine(db_url)
    try:
        run_migrations(engine)
        with make_sessionmaker(engine)() as s:
            _, key = crud.create_api_key(s, role=role)
            s.commit()
        return key
    finally:
        engine.dispose()


class Server:
    """`reviewsense serve` in a subprocess on a free loopback port."""

    def __init__(
        self, model_dir: Path, db_url: str, log_path: Path, *extra: str, threads: int | None = 1
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        env.pop("REVIEWSENSE_NUM_THREADS", None)
        if threads is not None:
            env["REVIEWSENSE_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "-m", "reviewsense", "serve", str(model_dir), "--db", db_url]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), *extra]
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 60.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class ThreadServer:
    """An app served by uvicorn in a thread of this process, on a free loopback port.

    Real HTTP (streaming, SSE, a browser) with an in-process app, so tests can hand it a
    predictor whose outputs they control.
    """

    def __init__(self, app) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
