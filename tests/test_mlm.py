"""MLM building blocks: masking (real tokenizer), and the loss on masked positions only."""

from __future__ import annotations

import pytest
from conftest import make_reviews
from tiny_models import minilm_path

from reviewsense.mlm import (
    MLMCollator,
    load_mlm_model,
    mask_once,
    masked_head_trainer,
    masked_lm_loss,
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def test_collator_masks_15_percent_of_content_tokens(tokenizer):
    import torch

    texts = [t for t, _ in make_reviews(64, seed=3)]
    seqs = tokenizer(texts)["input_ids"]
    batch = MLMCollator(tokenizer)([{"input_ids": s} for s in seqs])
    assert batch["input_ids"].shape[1] % 16 == 0
    masked = batch["labels"] != -100
    special = torch.isin(batch["labels"], torch.tensor(tokenizer.all_special_ids))
    assert not special.any()  # [CLS], [SEP], [PAD] are never predicted
    share = masked.sum().item() / sum(len(s) - 2 for s in seqs)
    assert 0.10 < share < 0.20
    assert (batch["attention_mask"].sum(1).tolist()) == [len(s) for s in seqs]


def test_whole_word_masking_masks_all_pieces_of_a_word(tokenizer):
    text = " ".join(["unbelievably overacted screenplay"] * 60)
    seq = tokenizer(text)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(seq)
    assert any(p.startswith("##") for p in pieces)
    batch = MLMCollator(tokenizer, whole_word=True)([{"input_ids": seq}] * 4)
    for row in (batch["labels"] != -100).tolist():
        assert any(row)
        for i in range(1, len(seq) - 1):
            if pieces[i].startswith("##"):
                assert row[i] == row[i - 1], (i, pieces[i - 1 : i + 1])


def test_mask_once_is_fixed_by_the_seed(tokenizer):
    seqs = tokenizer([t for t, _ in make_reviews(8)])["input_ids"]
    coll = MLMCollator(tokenizer)
    assert mask_once(coll, seqs, seed=1) == mask_once(coll, seqs, seed=1)
    assert mask_once(coll, seqs, seed=1) != mask_once(coll, seqs, seed=2)


def _tiny_mlm(seed: int = 0):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return BertForMaskedLM(cfg)


def _batch(tokenizer, n: int = 8, seed: int = 0) -> dict:
    import torch

    seqs = tokenizer([t for t, _ in make_reviews(n, seed=seed)])["input_ids"]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MLMCollator(tokenizer)([{"input_ids": s} for s in seqs])


def test_masked_positions_loss_equals_the_full_head_loss(tokenizer):
    """Same loss and same gradients as BertForMaskedLM's own (full-vocabulary-everywhere) loss."""
    import torch

    model, batch = _tiny_mlm(), _batch(tokenizer)
    full = model(**batch).loss
    full.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    loss, scored = masked_lm_loss(model, batch)
    loss.backward()
    assert scored == int((batch["labels"] != -100).sum()) > 0
    torch.testing.assert_close(loss, full, rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        if name in grads:
            torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-7, msg=name)


def test_no_masked_position_gives_zero_loss_not_nan(tokenizer):
    model, batch = _tiny_mlm(), _batch(tokenizer, n=2)
    batch["labels"][:] = -100
    loss, scored = masked_lm_loss(model, batch)
    loss.backward()
    assert scored == 0 and loss.item() == 0.0


def test_trainer_computes_the_masked_loss_under_bf16_autocast(tokenizer, tmp_path):
    """Through the real Trainer (bf16 on CPU): close to the full loss, and run in bf16."""
    import torch
    from transformers import Trainer, TrainingArguments

    model, batch = _tiny_mlm(), _batch(tokenizer)
    args = TrainingArguments(output_dir=str(tmp_path), bf16=True, use_cpu=True, report_to=[])
    trainer = masked_head_trainer(Trainer)(model=model, args=args)
    seen = []
    hook = model.cls.predictions.decoder.register_forward_hook(
        lambda mod, inp, out: seen.append((out.dtype, out.shape[0]))
    )
    loss = trainer.compute_loss(trainer.model, dict(batch))
    hook.remove()
    assert seen == [(torch.bfloat16, int((batch["labels"] != -100).sum()))]
    with torch.no_grad():
        full = model(**batch).loss
    assert abs(loss.item() - full.item()) < 0.05 * full.item()


def test_load_mlm_model_takes_train_s_attention_setting(tiny_bert):
    from reviewsense.pretrain import PretrainConfig

    model, _, _, new_head = load_mlm_model(str(tiny_bert), PretrainConfig().attention_dropout)
    assert model.config.attention_probs_dropout_prob == 0.0  # fused SDPA, as in `train`
    assert new_head  # the tiny classifier folder has no MLM head
    model, *_ = load_mlm_model(str(tiny_bert))
    assert model.config.attention_probs_dropout_prob == 0.1  # the checkpoint's own
