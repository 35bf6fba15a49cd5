"""Diagnose Hugging Face Trainer runs from their ``trainer_state.json`` (reads files only).

Public entry points: :func:`reviewsense.analysis.report.analyze_run` and
:func:`reviewsense.analysis.compare.compare_runs`. Imported lazily so that importing the
package stays cheap (numpy/matplotlib load only when used).
"""

from __future__ import annotations

__all__ = ["analyze_run", "compare_runs"]


def __getattr__(name: str):
    if name == "analyze_run":
        from reviewsense.analysis.report import analyze_run

        return analyze_run
    if name == "compare_runs":
        from reviewsense.analysis.compare import compare_runs

        return compare_runs
    raise AttributeError(name)
