"""inference/backends.py: rules that pick how a runner runs."""

from __future__ import annotations

import os

import psutil
import pytest

from reviewsense.inference import backends


@pytest.mark.parametrize(
    "physical, logical, mask, threads, pin",
    [
        (2, 2, 2, None, True),  # all cores (OpenVINO's default)
        (2, 2, 2, 2, True),
        (2, 2, 2, 1, False),  # 2 processes x 1 thread would both sit on core 0
        (16, 16, 16, 4, False),  # 4 Ray actors x 4 threads: all on cores 0-3 if pinned
        (8, 16, 16, 8, True),  # hyper-threads: 8 threads cover the 8 physical cores
        (2, 2, 1, 2, False),  # a process limited to part of the machine (taskset, cpuset)
    ],
)
def test_openvino_pins_threads_only_when_they_take_every_core(
    monkeypatch, physical, logical, mask, threads, pin
):
    monkeypatch.setattr(os, "cpu_count", lambda: logical)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(mask)), raising=False)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: physical)
    assert backends._openvino_pinning(threads) is pin
