"""A :class:`Predictor` in its own process, for servers whose Python is busy with requests.

In one process the model's forward (PyTorch's Python between ops, tokenization) and the web
server's event loop and database writes take turns on one GIL; on a 2-core machine the
server's thread then holds the model back. :class:`ProcessPredictor` loads the model in a
child process (``spawn``) and sends it texts over a pipe; the caller's thread waits in
``recv`` with the GIL released. Same interface as the service uses from a Predictor:
``predict``, ``settings``, ``model_version``, ``backend``, ``precision``, plus ``close``.

A child that dies (killed, out of memory) is reported to the call that was running and
started again, with the model reloaded, by the next call.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reviewsense.errors import ModelError

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 600.0  # a model folder that takes longer to load is reported as broken


def _child_main(conn, model_dir: str, kwargs: dict[str, Any]) -> None:
    """The child: load the Predictor, then answer ("predict", texts) until told to stop."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [inference process] %(message)s"
    )
    from reviewsense.inference.predictor import Predictor

    try:
        predictor = Predictor.from_pretrained(model_dir, **kwargs)
    except Exception as e:  # ModelError, or whatever the backend raised: the parent says it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    facts = {k: getattr(predictor, k) for k in ("settings", "model_version", "backend")}
    conn.send(("ready", facts | {"precision": predictor.precision}))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent is gone
            return
        if msg[0] == "close":
            return
        try:
            conn.send(("ok", predictor.predict(msg[1])))
        except Exception as e:  # reported to the caller; the child keeps serving
            conn.send(("error", f"{type(e).__name__}: {e}"))


class ProcessPredictor:
    """``Predictor.from_pretrained(model_dir, **kwargs)`` run in a child process.

    Raises (on creation):
        ModelError: the folder cannot be loaded (the child's one-line error), or the child
            exited or took longer than ``load_timeout_s`` while loading.
    """

    def __init__(
        self, model_dir: str | Path, *, load_timeout_s: float = LOAD_TIMEOUT_S, **kwargs: Any
    ) -> None:
        self.model_dir = str(model_dir)
        self.kwargs = kwargs
        self.load_timeout_s = load_timeout_s
        self._lock = threading.Lock()  # one request on the pipe at a time
        self._conn = None
        self._proc = None
        self._closed = False
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # fork would copy the server's threads and locks
        conn, child_conn = ctx.Pipe()
        proc = ctx.Process(
            target=_child_main,
            args=(child_conn, self.model_dir, self.kwargs),
            name="reviewsense-inference",
            daemon=True,  # never outlives the server
        )
        proc.start()
        child_conn.close()
        try:
            if not conn.poll(self.load_timeout_s):
                proc.kill()
                raise ModelError(
                    f"{self.model_dir}: the inference process did not load the model within "
                    f"{self.load_timeout_s:.0f} s"
                )
            tag, payload = conn.recv()
        except EOFError:
            proc.join(5)
            raise ModelError(
                f"{self.model_dir}: the inference process exited while loading the model "
                f"(exit code {proc.exitcode}; see the log above)"
            ) from None
        if tag == "error":
            proc.join(5)
            raise ModelError(payload)
        self._conn, self._proc = conn, proc
        self.settings = payload["settings"]
        self.model_version = payload["model_version"]
        self.backend = payload["backend"]
        self.precision = payload["precision"]
        log.info("model %s runs in process %d", self.model_version, proc.pid)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def predict(self, texts: Sequence[str]) -> list:
        """The child's ``Predictor.predict(texts)``.

        Raises:
            RuntimeError: the child raised (its one-line error) or died during the call.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the inference process was closed")
            if self._proc is None or not self._proc.is_alive():
                code = self._proc.exitcode if self._proc is not None else None
                log.error("the inference process is gone (exit code %s); restarting it", code)
                self._start()
            try:
                self._conn.send(("predict", list(texts)))
                tag, payload = self._conn.recv()
            except (EOFError, OSError):
                self._proc.join(5)
                raise RuntimeError(
                    f"the inference process died (exit code {self._proc.exitcode}); "
                    "it is restarted on the next call"
                ) from None
        if tag == "error":
            raise RuntimeError(payload)
        return payload

    def close(self) -> None:
        """Stop the child (idempotent)."""
        with self._lock:
            self._closed = True
            if self._proc is None:
                return
            try:
                self._conn.send(("close",))
            except OSError:
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            self._conn.close()
            self._proc = None

    def __repr__(self) -> str:
        return f"ProcessPredictor({self.model_version!r}, pid={self.pid}, backend={self.backend})"
