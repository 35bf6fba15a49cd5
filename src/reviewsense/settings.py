"""The one place where environment variables are read (all prefixed REVIEWSENSE_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# src/reviewsense/settings.py -> project root is three levels up (only meaningful in a checkout).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class CoreSettings(BaseSettings):
    """Settings shared by training, evaluation and prediction."""

    model_config = SettingsConfigDict(env_prefix="REVIEWSENSE_", extra="ignore")

    imdb_dir: Path | None = None  # REVIEWSENSE_IMDB_DIR: folder with train/test/unsupervised.parquet
    runs_dir: Path = Path("runs")  # REVIEWSENSE_RUNS_DIR: default parent of run directories
    num_threads: int | None = None  # REVIEWSENSE_NUM_THREADS: torch intra-op threads
    hf_offline: bool = False  # REVIEWSENSE_HF_OFFLINE (HF_HUB_OFFLINE is honoured by the Hub too)


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    return CoreSettings()
