"""The one reader of REVIEWSENSE_* variables: bad values are one-line errors naming the variable."""

from __future__ import annotations

import pytest

from reviewsense import runtime
from reviewsense.errors import ConfigError
from reviewsense.settings import ServiceSettings, get_settings


@pytest.fixture
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_variable_is_a_config_error_naming_it(monkeypatch, fresh_settings, value):
    monkeypatch.setenv("REVIEWSENSE_NUM_THREADS", value)
    with pytest.raises(ConfigError, match=rf"^REVIEWSENSE_NUM_THREADS: .*\(got '{value}'\)$"):
        get_settings()
    # every command that reads the setting gets the same error, not a traceback
    with pytest.raises(ConfigError, match="REVIEWSENSE_NUM_THREADS"):
        runtime.default_threads()


def test_good_variable_is_read(monkeypatch, fresh_settings):
    monkeypatch.setenv("REVIEWSENSE_NUM_THREADS", "3")
    assert get_settings().num_threads == 3 == runtime.configured_threads()


def test_flags_are_named_before_variables(monkeypatch):
    monkeypatch.setenv("REVIEWSENSE_BATCH_MAX_TEXTS", "0")
    with pytest.raises(ConfigError, match="^REVIEWSENSE_BATCH_MAX_TEXTS:"):
        ServiceSettings.from_flags({}, {})
    monkeypatch.delenv("REVIEWSENSE_BATCH_MAX_TEXTS")
    with pytest.raises(ConfigError, match="^--batch-max:"):
        ServiceSettings.from_flags({"batch_max_texts": 0}, {"batch_max_texts": "--batch-max"})


def test_progress_bars_follow_reviewsense_progress(monkeypatch, fresh_settings):
    from reviewsense.trainer_utils import runtime_arguments

    monkeypatch.setenv("REVIEWSENSE_PROGRESS", "1")
    assert runtime_arguments("fp32")["disable_tqdm"] is False
    monkeypatch.setenv("REVIEWSENSE_PROGRESS", "0")
    get_settings.cache_clear()
    # pytest captures stderr (not a terminal): no bars unless asked
    assert runtime_arguments("fp32")["disable_tqdm"] is True
