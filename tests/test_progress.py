"""LogProgress: rate-limited log lines with an ETA, and always the first and last update."""

from __future__ import annotations

import logging

from reviewsense.progress import LogProgress, eta_text


def test_eta_text():
    assert eta_text(None) == "-"
    assert eta_text(-1) == "-"
    assert eta_text(3725) == "01:02:05"


def test_logs_first_last_and_rate_limited_updates(caplog):
    logger = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        p = LogProgress("test pass", 100, every_s=3600, logger=logger)
        for done in (10, 20, 50, 100):
            p.update(done)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # 20 and 50 fall inside the hour between lines
    assert lines[0].startswith("test pass 10/100 (10%)") and "ETA" in lines[0]
    assert lines[1].startswith("test pass 100/100 (100%)") and "took" in lines[1]


def test_every_update_logged_when_interval_is_zero(caplog):
    logger = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        p = LogProgress("scoring", 3, unit="rows", every_s=0, logger=logger)
        for done in (1, 2, 3):
            p.update(done)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "scoring 1/3",
        "scoring 2/3",
        "scoring 3/3",
    ]
    assert "rows/s" in caplog.records[0].getMessage()
