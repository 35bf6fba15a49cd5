"""Session-scoped model folders for the inference tests (built once, in a tmp dir)."""

from __future__ import annotations

import pytest

from .models import build_minilm, build_tiny_bert, build_tiny_distilbert, imdb_reviews


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "model")


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory):
    return build_tiny_distilbert(tmp_path_factory.mktemp("tiny_distilbert") / "model")


@pytest.fixture(scope="session")
def minilm(tmp_path_factory):
    return build_minilm(tmp_path_factory.mktemp("minilm") / "model")


@pytest.fixture(scope="session")
def minilm_onnx(minilm, tmp_path_factory):
    from reviewsense.inference.export import export_onnx

    out = tmp_path_factory.mktemp("minilm_onnx") / "onnx"
    export_onnx(minilm, out)
    return out


@pytest.fixture(scope="session")
def imdb_sample():
    texts = imdb_reviews(200)
    if texts is None:
        pytest.skip("IMDb test data not found at ../shared/data/imdb/test.parquet")
    return texts
