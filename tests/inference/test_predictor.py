"""Predictor: ordering, batching, truncation, chunks mode, backends and precisions agree."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from reviewsense.errors import ModelError
from reviewsense.inference import Prediction, Predictor
from reviewsense.inference.export import Tolerance, compare
from reviewsense.inference.predictor import chunk_windows, model_version

TEXTS = [
    "A wonderful film.",
    "Dull and far too long; I left early.",
    "ok",
    "The plot is thin but the acting carries it, and the soundtrack is superb. " * 6,
    "",
    "Bad.",
]


def probs(preds: list[Prediction]) -> np.ndarray:
    return np.array([p.prob_positive for p in preds])


def bf16_errors(model_dir, texts, option: str, values, **fp32_kwargs) -> dict:
    """|P(positive) in bf16 - in fp32| per text for each value of a Predictor ``option``."""
    reference = Predictor.from_pretrained(model_dir, precision="fp32", **fp32_kwargs)
    fp32 = probs(reference.predict(texts))
    return {
        value: np.abs(
            probs(
                Predictor.from_pretrained(model_dir, precision="bf16", **{option: value}).predict(
                    texts
                )
            )
            - fp32
        )
        for value in values
    }


@pytest.mark.parametrize("arch", ["tiny_bert", "tiny_distilbert"])
def test_predictions_are_consistent(arch, request):
    predictor = Predictor.from_pretrained(request.getfixturevalue(arch), precision="fp32")
    preds = predictor.predict(TEXTS)
    assert len(preds) == len(TEXTS)
    for p in preds:
        assert p.label in ("negative", "positive")
        assert p.prob_negative + p.prob_positive == pytest.approx(1.0)
        assert p.score == max(p.prob_negative, p.prob_positive)
        assert (p.label == "positive") == (p.prob_positive >= p.prob_negative)
    # Order is restored: scoring one at a time gives the same answer per position.
    singles = [predictor.predict([t])[0] for t in TEXTS]
    np.testing.assert_allclose(probs(preds), probs(singles), atol=1e-4)
    assert predictor.predict([]) == []


def test_batch_size_does_not_change_results(tiny_bert):
    a = Predictor.from_pretrained(tiny_bert, precision="fp32", batch_size=1).predict(TEXTS)
    b = Predictor.from_pretrained(tiny_bert, precision="fp32", batch_size=64).predict(TEXTS)
    np.testing.assert_allclose(probs(a), probs(b), atol=1e-4)


def test_predict_many_keeps_order_and_reports_progress(tiny_bert):
    predictor = Predictor.from_pretrained(tiny_bert, precision="fp32", batch_size=2)
    texts = TEXTS * 3  # 18 texts in chunks of 4: progress after each chunk, ending at 18
    seen: list[int] = []
    many = predictor.predict_many(texts, chunk=4, on_progress=seen.append)
    assert seen == [4, 8, 12, 16, 18]
    np.testing.assert_allclose(probs(many), probs(predictor.predict(texts)), atol=1e-4)
    assert predictor.predict_many([]) == []


def test_settings_come_from_the_model_folder(tiny_bert, tiny_distilbert):
    p = Predictor.from_pretrained(tiny_bert)
    assert (p.settings.max_length, p.settings.truncation, p.settings.head_tokens) == (
        64,
        "head_tail",
        16,
    )
    assert p.backend == "torch"
    # A run directory (with model/) resolves to its model folder.
    assert Predictor.from_pretrained(tiny_bert.parent).model_dir == tiny_bert
    q = Predictor.from_pretrained(tiny_distilbert, truncation="chunks")
    assert (q.settings.truncation, q.trained_truncation) == ("chunks", "head")


def test_truncated_flag(tiny_bert):
    preds = Predictor.from_pretrained(tiny_bert).predict(["short", "word " * 100])
    assert [p.truncated for p in preds] == [False, True]


def test_model_version_is_stable_and_content_based(tiny_bert, tiny_distilbert):
    assert model_version(tiny_bert) == model_version(tiny_bert)
    assert model_version(tiny_bert).startswith(f"{tiny_bert.parent.name}-model-")
    assert model_version(tiny_bert).split("-")[-1] != model_version(tiny_distilbert).split("-")[-1]


def test_chunk_windows_cover_the_review():
    ids = list(range(100))
    windows = chunk_windows(ids, window=30, stride=15)
    assert [w[0] for w in windows] == [0, 15, 30, 45, 60, 70]  # last window ends at the end
    assert all(len(w) == 30 for w in windows)
    assert windows[-1][-1] == 99
    assert chunk_windows(ids[:10], window=30, stride=15) == [ids[:10]]


def test_chunks_mode_scores_every_window(tiny_distilbert):
    """max_length 32 → 30-token windows, stride 15: a 100-token review has 6 windows."""
    chunks = Predictor.from_pretrained(tiny_distilbert, precision="fp32", truncation="chunks")
    head = Predictor.from_pretrained(tiny_distilbert, precision="fp32")
    # One word per token in this vocabulary; the verdict comes only at the very end.
    review = " ".join(["plot"] * 90 + ["awful"] * 10)
    seqs, owner, truncated = chunks.encode([review, "fine"])
    assert owner == [0] * 6 + [1]
    assert truncated == [True, False]
    assert all(len(s) <= 32 for s in seqs)
    assert seqs[5][-2] == seqs[5][-3]  # the last window holds the final tokens
    # The review's probability is the mean over its windows.
    window_probs = [head._forward([s])[0, 1] for s in seqs[:6]]
    got = chunks.predict([review, "fine"])
    assert got[0].prob_positive == pytest.approx(np.mean(window_probs), abs=1e-6)
    assert got[0].truncated
    # Head truncation never sees the end, so it scores differently.
    assert head.predict([review])[0].prob_positive != pytest.approx(got[0].prob_positive)
    # Short texts: chunks == head.
    assert got[1].prob_positive == pytest.approx(head.predict(["fine"])[0].prob_positive)


def test_bad_options_raise_model_error(tiny_bert, tmp_path):
    with pytest.raises(ModelError, match="backend"):
        Predictor.from_pretrained(tiny_bert, backend="tensorrt")
    with pytest.raises(ModelError, match="no model.onnx"):
        Predictor.from_pretrained(tiny_bert, backend="onnx")
    with pytest.raises(ModelError, match="truncation"):
        Predictor.from_pretrained(tiny_bert, truncation="tail")
    with pytest.raises(ModelError, match="does not exist"):
        Predictor.from_pretrained(tmp_path / "nothing")
    with pytest.raises(TypeError):
        Predictor.from_pretrained(tiny_bert).predict("one string")


def test_concurrent_calls_are_safe(tiny_bert):
    predictor = Predictor.from_pretrained(tiny_bert, precision="fp32")
    expected = probs(predictor.predict(TEXTS))
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            results.append(probs(predictor.predict(TEXTS)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-4)


@pytest.mark.slow
def test_bf16_agrees_with_fp32_on_real_reviews(minilm, imdb_sample):
    fp32 = Predictor.from_pretrained(minilm, precision="fp32", num_threads=2)
    bf16 = Predictor.from_pretrained(minilm, precision="bf16", num_threads=2)
    assert bf16.precision == "bf16"
    texts = imdb_sample[:64]
    m, failures = compare(
        probs(fp32.predict(texts)),
        probs(bf16.predict(texts)),
        Tolerance(dp_limit=0.02, dp_quantile=1.0, mean_abs_diff=0.005, min_label_agreement=0.99),
    )
    assert not failures, m


@pytest.mark.slow
def test_torch_and_onnx_agree_on_real_reviews(minilm, minilm_onnx, imdb_sample):
    torch_p = Predictor.from_pretrained(minilm, precision="fp32", num_threads=2)
    onnx_p = Predictor.from_pretrained(minilm_onnx, num_threads=2)
    assert onnx_p.backend == "onnx"
    texts = imdb_sample[:100]
    ta, tb = torch_p.predict(texts), onnx_p.predict(texts)
    a, b = probs(ta), probs(tb)
    assert np.mean((a >= 0.5) == (b >= 0.5)) >= 0.99
    assert np.max(np.abs(a - b)) <= 1e-3
    assert [p.truncated for p in ta] == [p.truncated for p in tb]
    assert any(p.truncated for p in ta)


def test_bf16_path_is_verified_like_an_export(minilm, imdb_sample):
    from reviewsense.inference.verify import verify_bf16

    metrics, failures = verify_bf16(minilm, imdb_sample[:100], min_agreement=0.0)
    assert metrics["n_samples"] == 100
    assert 0.0 < metrics["max_abs_diff"] < 0.1  # bf16 differs from fp32, but only a little
    assert failures == []


def test_a_checkpoint_uses_its_runs_truncation(tiny_bert, tmp_path):
    import json
    import shutil

    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "checkpoint-5"
    shutil.copytree(tiny_bert, ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    del cfg["reviewsense"]  # an older checkpoint: settings only in the run's config.yaml
    (ckpt / "config.json").write_text(json.dumps(cfg))
    data = "data:\n  max_length: 48\n  truncation: head_tail\n  head_tokens: 8\n"
    (run / "config.yaml").write_text(data)
    p = Predictor.from_pretrained(ckpt, precision="fp32")
    assert (p.settings.max_length, p.settings.truncation, p.settings.head_tokens) == (
        48,
        "head_tail",
        8,
    )


@pytest.mark.slow
def test_compiled_torch_agrees_with_eager(tiny_bert):
    eager = Predictor.from_pretrained(tiny_bert, precision="fp32")
    compiled = Predictor.from_pretrained(tiny_bert, precision="fp32", compile=True)
    assert compiled.pad_multiple == 64
    np.testing.assert_allclose(
        probs(compiled.predict(TEXTS)), probs(eager.predict(TEXTS)), atol=1e-4
    )
    with pytest.raises(ModelError, match="compile is for the torch backend"):
        Predictor.from_pretrained(tiny_bert, backend="onnx", compile=True)
