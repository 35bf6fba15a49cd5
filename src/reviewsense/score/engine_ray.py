"""The Ray engine: Ray Data streams block specs through an actor pool of Predictors.

Pipeline: ``from_items(block specs)`` -> ``map_batches(BlockScorer, batch_size=1,
concurrency=actors)`` -> results streamed back to the driver. Each actor loads the model once
(with its own intra-op threads) and, per block, reads the input rows, scores them and writes the
block's Parquet file itself (``blocks.score_block``, the same function as the local engine).
Why not ``read_parquet`` -> ``write_parquet``: resume needs a deterministic file name per block
and an atomic rename, and Ray's writer names files by write id / task index and writes in place.
Rows therefore never pass through the object store — only specs and per-block counts do — so
memory stays bounded by (actors x one block) however large the input is.

On a cluster (``--address``) the input files and the output folder must be on storage every
node can see (NFS, a mounted bucket), and reviewsense must be installed on every node.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from reviewsense.errors import ConfigError, ReviewsenseError
from reviewsense.score.blocks import BlockResult, BlockSpec

log = logging.getLogger(__name__)

INSTALL_HINT = "--engine ray needs Ray: install it with pip install 'reviewsense[scale]'"
# Only block specs and per-block counts live in the object store (see the module docstring).
OBJECT_STORE_BYTES = 1 << 30  # 1 GiB; Ray's default (30% of RAM) would take 7 GiB of a 24 GiB box
DEFAULT_MAX_THREADS = 4  # intra-op threads per actor when not given: larger actors scale poorly


class BlockScorer:
    """Ray Data callable class: one Predictor per actor, one block per call."""

    def __init__(self, model: str, predictor_kwargs: dict, out_dir: str, keep_columns: list):
        from transformers.utils import logging as hf_logging

        from reviewsense.inference.predictor import Predictor
        from reviewsense.runtime import tune_allocator

        tune_allocator()  # each actor is its own process, a batch job like the local engine
        hf_logging.disable_progress_bar()  # one "Loading weights" bar per actor is noise
        self.predictor = Predictor.from_pretrained(model, **predictor_kwargs)
        self.out_dir = Path(out_dir)
        self.keep_columns = tuple(keep_columns)

    def __call__(self, batch: dict) -> dict:
        """``batch``: columns of BlockSpec (one row per block) -> columns of BlockResult.

        A user error (bad file, missing column) travels back as data in ``failure``
        ("ClassName: message") so the driver can raise it as one line; Ray would wrap it in
        its own exception with the actor's traceback.
        """
        from reviewsense.score.blocks import score_block

        out: dict[str, list] = {"name": [], "rows": [], "errors": [], "seconds": [], "failure": []}
        for i in range(len(batch["name"])):
            spec = BlockSpec.from_dict({k: batch[k][i] for k in batch})
            try:
                r = score_block(spec, self.predictor, self.out_dir, self.keep_columns)
                failure = ""
            except ReviewsenseError as e:
                r, failure = BlockResult(spec.name, 0), f"{type(e).__name__}: {e}"
            out["name"].append(r.name)
            out["rows"].append(r.rows)
            out["errors"].append(json.dumps(r.errors))  # reason -> count, Arrow-friendly
            out["seconds"].append(r.seconds)
            out["failure"].append(failure)
        return out


def _raise_failure(failure: str) -> None:
    """Re-raise an actor's user error (see BlockScorer.__call__) as the same class."""
    from reviewsense import errors

    name, _, message = failure.partition(": ")
    cls = getattr(errors, name, errors.ReviewsenseError)
    raise cls(message)


def _init_ray(ray, address: str | None) -> bool:
    """Connect to ``address`` or start a local runtime; True when this call started Ray."""
    if ray.is_initialized():
        return False  # the caller (e.g. a test or notebook) owns the runtime
    if address:
        ray.init(address=address, include_dashboard=False)
    else:
        ray.init(
            num_cpus=os.cpu_count() or 1,
            object_store_memory=OBJECT_STORE_BYTES,
            include_dashboard=False,
        )
    return True


def run_ray(pending: list[BlockSpec], config, on_block: Callable[[BlockResult], None]) -> None:
    """Score ``pending`` blocks on Ray (``config``: a ScoreConfig); see the module docstring."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None

    started = _init_ray(ray, config.address)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        threads = config.threads_per_actor or min(DEFAULT_MAX_THREADS, cpus)
        actors = config.actors or max(1, cpus // threads)
        actors = min(actors, len(pending))
        log.info("ray: %d actor(s) x %d thread(s), %d block(s)", actors, threads, len(pending))
        ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI shows one
        kwargs = config.predictor_kwargs() | {"num_threads": threads}
        ds = ray.data.from_items([s.to_dict() for s in pending], override_num_blocks=len(pending))
        ds = ds.map_batches(
            BlockScorer,
            batch_size=1,
            batch_format="numpy",
            fn_constructor_kwargs={
                "model": os.path.abspath(config.model),  # workers run in another folder
                "predictor_kwargs": kwargs,
                "out_dir": str(Path(config.output).resolve()),
                "keep_columns": list(config.keep_columns),
            },
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=threads,
        )
        for row in ds.iter_rows():
            if row["failure"]:
                _raise_failure(row["failure"])
            errors = json.loads(row["errors"])
            on_block(BlockResult(row["name"], int(row["rows"]), errors, float(row["seconds"])))
    finally:
        if started:
            ray.shutdown()
