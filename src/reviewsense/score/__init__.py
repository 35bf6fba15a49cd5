"""Batch scoring of review files too large for `reviewsense predict`.

The input is cut into blocks (:mod:`.blocks`); each block is read, scored by a
:class:`~reviewsense.inference.predictor.Predictor` and written as one Parquet file. Two
engines schedule the same per-block function: :mod:`.engine_local` (one process) and
:mod:`.engine_ray` (a Ray Data actor pool, one node or a cluster). :mod:`.run` plans the
blocks, skips those already written (resume) and reports rows, rows/s and errors.
"""
