"""reviewsense.runtime: the malloc settings keep freed tensors for the next step."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reviewsense import runtime

# A fresh process (pytest's own small allocations would interleave with the big ones): tune as
# `set_threads` does, then allocate, fill and free a 64 MiB tensor 20 times; page faults of each, and RSS.
_FILLS = """
import json, resource, torch
from reviewsense.runtime import set_threads
set_threads(1)
out = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 << 20)  # 64 MiB of fp32, every page touched
    del x
    out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"faults": out, "peak_rss_mb": rss_mb}))
"""


def _fills(env_value: str | None) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != runtime.ALLOCATOR_ENV}
    if env_value is not None:
        env[runtime.ALLOCATOR_ENV] = env_value
    done = subprocess.run(
        [sys.executable, "-c", _FILLS], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_a_freed_tensor_is_reused_without_page_faults():
    tuned, untuned = _fills(None), _fills("default")
    # the heap grows to its working size in the first fills (aligned requests split blocks,
    # here ~7 of them), then reuses it: no fresh pages, and the peak stays bounded
    assert sum(tuned["faults"][-5:]) < 2000, tuned
    assert tuned["peak_rss_mb"] < untuned["peak_rss_mb"] + 10 * 64, (tuned, untuned)
    # glibc's defaults: over 32 MiB is mmapped, so every fill faults in 16,384 fresh pages
    assert min(untuned["faults"][-5:]) > 10_000, untuned


def test_the_environment_variable_turns_it_off(monkeypatch):
    from reviewsense.errors import ConfigError
    from reviewsense.settings import get_settings

    monkeypatch.setenv(runtime.ALLOCATOR_ENV, "default")
    get_settings.cache_clear()
    try:
        assert runtime.tune_allocator.__wrapped__() is False
        monkeypatch.setenv(runtime.ALLOCATOR_ENV, "defualt")  # a typo is an error, not "tuned"
        get_settings.cache_clear()
        with pytest.raises(ConfigError, match="^REVIEWSENSE_MALLOC: "):
            runtime.tune_allocator.__wrapped__()
    finally:
        monkeypatch.delenv(runtime.ALLOCATOR_ENV)
        get_settings.cache_clear()


def test_set_threads_applies_it_and_refuses_zero():
    assert runtime.set_threads(1) == 1
    assert runtime.tune_allocator.cache_info().currsize == 1
    with pytest.raises(runtime.ReviewsenseError, match="at least 1"):
        runtime.set_threads(0)


@pytest.fixture
def env_threads(monkeypatch):
    """REVIEWSENSE_NUM_THREADS set to a count the cores would not give; restored after."""
    import psutil
    import torch

    from reviewsense.settings import get_settings

    before = torch.get_num_threads()
    wanted = (psutil.cpu_count(logical=False) or 1) + 1  # not what the cores give
    monkeypatch.setenv("REVIEWSENSE_NUM_THREADS", str(wanted))
    get_settings.cache_clear()
    yield wanted
    get_settings.cache_clear()
    torch.set_num_threads(before)


def test_training_threads_honour_reviewsense_num_threads(env_threads):
    import torch

    assert runtime.configured_threads() == env_threads
    assert runtime.default_threads() == env_threads
    assert runtime.set_threads(None) == env_threads == torch.get_num_threads()
    assert runtime.set_threads(3) == 3  # an explicit --threads wins
