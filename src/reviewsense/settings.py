"""The one place where environment variables are read (all prefixed REVIEWSENSE_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
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
    num_threads: int | None = Field(default=None, ge=1)  # REVIEWSENSE_NUM_THREADS: torch threads
    hf_offline: bool = False  # REVIEWSENSE_HF_OFFLINE (HF_HUB_OFFLINE is honoured by the Hub too)
    # REVIEWSENSE_MALLOC: "tuned" keeps freed tensors mapped in batch jobs (runtime.tune_allocator);
    # "default" leaves glibc's malloc settings as they are
    malloc: Literal["tuned", "default"] = "tuned"
    # REVIEWSENSE_PROGRESS: the Trainer's progress bars even when stderr is not a terminal (the
    # logged progress lines with an ETA are written either way)
    progress: bool = False


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    """The REVIEWSENSE_* settings of training, evaluation and prediction (read once).

    Raises:
        ConfigError: naming the environment variable that holds a bad value.
    """
    from pydantic import ValidationError

    try:
        return CoreSettings()
    except ValidationError as e:
        raise _config_error(e, {}, {}) from None


def _config_error(e, values: dict, flags: dict[str, str]):
    """A pydantic ValidationError as a one-line ConfigError naming the flag or variable."""
    from reviewsense.errors import ConfigError

    err = e.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    where = flags.get(field, field) if field in values else f"REVIEWSENSE_{field.upper()}"
    msg = err["msg"].replace("Value error, ", "")
    return ConfigError(f"{where}: {msg} (got {err.get('input')!r})")


class ServiceSettings(CoreSettings):
    """Settings of `reviewsense serve` / `consume` (each also has a CLI flag that overrides it).

    Validated on creation, whether the values come from the environment or from flags
    (``ServiceSettings(**flags)``); the thread count is CoreSettings.num_threads.
    """

    model_config = SettingsConfigDict(env_prefix="REVIEWSENSE_", extra="ignore")

    # REVIEWSENSE_DB_URL: sqlite:///FILE (default, embedded) or postgresql://user@host/db.
    db_url: str = "sqlite:///reviewsense.db"
    # REVIEWSENSE_THRESHOLD: P(negative) at or above which a review is flagged; None = take it
    # from the model folder's settings, metrics.DEFAULT_THRESHOLD when the model has none.
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    # REVIEWSENSE_MAX_BODY_BYTES: larger request bodies get 413
    max_body_bytes: int = Field(default=2_000_000, ge=1)
    max_text_chars: int = Field(default=100_000, ge=1)  # REVIEWSENSE_MAX_TEXT_CHARS: 413 beyond
    # REVIEWSENSE_MAX_BATCH_REVIEWS: reviews per request (413 beyond)
    max_batch_reviews: int = Field(default=256, ge=1)
    batch_max_texts: int = Field(default=32, ge=1)  # REVIEWSENSE_BATCH_MAX_TEXTS: per model call
    # REVIEWSENSE_BATCH_WAIT_MS: longest wait for a batch to fill (only under load; see batcher)
    batch_wait_ms: float = Field(default=5.0, ge=0.0)
    # REVIEWSENSE_BATCH_SPLIT: a model call takes half of the waiting texts (see batcher)
    batch_split: bool = True
    queue_size: int = Field(default=2048, ge=1)  # REVIEWSENSE_QUEUE_SIZE: waiting texts (503)
    queue_timeout_s: float = Field(default=10.0, gt=0.0)  # REVIEWSENSE_QUEUE_TIMEOUT_S
    flag_poll_s: float = Field(default=0.25, gt=0.0)  # REVIEWSENSE_FLAG_POLL_S: SSE poll period
    key_cache_s: float = Field(default=5.0, ge=0.0)  # REVIEWSENSE_KEY_CACHE_S: revocation delay
    backend: str = "auto"  # REVIEWSENSE_BACKEND: Predictor backend (auto | torch | onnx | openvino)
    # REVIEWSENSE_INFERENCE_PROCESS: run the model in a child process (no GIL shared with the
    # server's event loop and database writes; inference/process.py)
    inference_process: bool = False

    @classmethod
    def from_flags(cls, given: dict, flags: dict[str, str]) -> ServiceSettings:
        """Environment (REVIEWSENSE_*) overridden by the flags given, validated like the env.

        Args:
            given: field -> value of the flags the user passed (None = not given).
            flags: field -> flag name, for error messages.

        Raises:
            ConfigError: naming the flag (or environment variable) and what is allowed.
        """
        from pydantic import ValidationError

        values = {k: v for k, v in given.items() if v is not None}
        try:
            return cls(**values)
        except ValidationError as e:
            raise _config_error(e, values, flags) from None
