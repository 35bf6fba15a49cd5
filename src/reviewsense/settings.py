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

    imdb_dir: Path | None = (
        None  # REVIEWSENSE_IMDB_DIR: folder with train/test/unsupervised.parquet
    )
    runs_dir: Path = Path("runs")  # REVIEWSENSE_RUNS_DIR: default parent of run directories
    num_threads: int | None = None  # REVIEWSENSE_NUM_THREADS: torch intra-op threads
    hf_offline: bool = False  # REVIEWSENSE_HF_OFFLINE (HF_HUB_OFFLINE is honoured by the Hub too)


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    return CoreSettings()


class ServiceSettings(BaseSettings):
    """Settings of `reviewsense serve` (each one also has a CLI flag that overrides it)."""

    model_config = SettingsConfigDict(env_prefix="REVIEWSENSE_", extra="ignore")

    # REVIEWSENSE_DB_URL: sqlite:///FILE (default, embedded) or postgresql://user@host/db.
    db_url: str = "sqlite:///reviewsense.db"
    # REVIEWSENSE_THRESHOLD: P(negative) at or above which a review is flagged; None = take it
    # from the model folder's settings, 0.5 when the model has none.
    threshold: float | None = None
    max_body_bytes: int = 2_000_000  # REVIEWSENSE_MAX_BODY_BYTES: larger request bodies get 413
    max_text_chars: int = 100_000  # REVIEWSENSE_MAX_TEXT_CHARS: longer texts get 413
    max_batch_reviews: int = 256  # REVIEWSENSE_MAX_BATCH_REVIEWS: reviews per request (413)
    batch_max_texts: int = 32  # REVIEWSENSE_BATCH_MAX_TEXTS: texts per inference batch
    batch_wait_ms: float = 5.0  # REVIEWSENSE_BATCH_WAIT_MS: how long a batch waits to fill up
    queue_size: int = 2048  # REVIEWSENSE_QUEUE_SIZE: texts waiting for inference (then 503)
    queue_timeout_s: float = 10.0  # REVIEWSENSE_QUEUE_TIMEOUT_S: longest wait in the queue
    flag_poll_s: float = 0.25  # REVIEWSENSE_FLAG_POLL_S: how often SSE looks for new flags
    key_cache_s: float = 5.0  # REVIEWSENSE_KEY_CACHE_S: revocation takes effect within this
    num_threads: int | None = None  # REVIEWSENSE_NUM_THREADS: torch intra-op threads
    backend: str = "auto"  # REVIEWSENSE_BACKEND: Predictor backend (auto | torch | onnx)


@lru_cache(maxsize=1)
def get_service_settings() -> ServiceSettings:
    return ServiceSettings()
