"""The masked-language-model pieces of ``reviewsense pretrain``: masking, model, loss.

- :class:`MLMCollator` masks 15% of the tokens (or whole words) afresh per batch;
  :func:`mask_once` fixes the held-out set's masks so every evaluation scores the same tokens.
- :func:`load_mlm_model` / :func:`save_encoder`: the encoder in and out of its MLM wrapper.
- :func:`masked_lm_loss` / :func:`masked_head_trainer`: the MLM loss with the vocabulary head
  run only where a label is. ``BertForMaskedLM`` projects *every* position onto the 30,522-word
  vocabulary and then ignores the ~85% that carry no label; for MiniLM-L6 that projection
  (384 × 30,522 ≈ 11.7 M multiply-adds per token) is as large as the whole 6-layer encoder
  (≈ 10.6 M per token), so a step does about half its matmul work for nothing. Selecting the
  labelled positions first gives the same loss (same value, same gradients) for ~15% of that.
- :func:`head_warmup_callback`: the encoder stays frozen while a newly initialised head learns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reviewsense.errors import ReviewsenseError
from reviewsense.trainer_utils import pad_batch

log = logging.getLogger(__name__)

MLM_PROBABILITY = 0.15
IGNORE = -100  # label of a position that is not scored (HF convention)


# -- masking ---------------------------------------------------------------------------------
class MLMCollator:
    """Pads to a multiple of 16 and masks 15% of the tokens (or of the words) afresh per batch.

    Examples that already carry ``labels`` (the held-out set, masked once) are only padded,
    so every evaluation scores the same masked tokens.
    """

    def __init__(self, tokenizer, whole_word: bool = False):
        import torch
        from transformers import DataCollatorForLanguageModeling

        self.masker = DataCollatorForLanguageModeling(
            tokenizer, mlm_probability=MLM_PROBABILITY, whole_word_mask=whole_word
        )
        self.whole_word = whole_word
        self.pad_id = tokenizer.pad_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        vocab = tokenizer.get_vocab()
        # WordPiece continuation pieces ("##ing") belong to the previous token's word
        self.continues = np.zeros(max(vocab.values()) + 1, dtype=bool)
        for tok, i in vocab.items():
            self.continues[i] = tok.startswith("##")

    def _offsets(self, input_ids) -> np.ndarray:
        """Synthetic character offsets [batch, width, 2]: no gap before a continuation piece,
        a gap before a new word (what the collator's whole-word masking reads)."""
        step = np.where(self.continues[input_ids.numpy()], 1, 2)
        end = np.cumsum(step, axis=1)
        return np.stack([end - 1, end], axis=-1)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        input_ids = pad_batch([f["input_ids"] for f in features], self.pad_id)
        attention_mask = pad_batch([[1] * len(f["input_ids"]) for f in features], 0)
        if "labels" in features[0]:
            labels = pad_batch([f["labels"] for f in features], IGNORE)
        else:
            special = torch.isin(input_ids, self.special_ids)
            offsets = self._offsets(input_ids) if self.whole_word else None
            input_ids, labels = self.masker.torch_mask_tokens(
                input_ids, special_tokens_mask=special, offset_mapping=offsets
            )
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def mask_once(collator: MLMCollator, seqs: list[list[int]], seed: int) -> list[dict]:
    """Mask each sequence once with a fixed seed: ``{"input_ids", "labels"}`` per sequence."""
    import torch

    out = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for s in seqs:
            b = collator([{"input_ids": s}])
            n = len(s)
            out.append(
                {"input_ids": b["input_ids"][0, :n].tolist(), "labels": b["labels"][0, :n].tolist()}
            )
    return out


# -- model -----------------------------------------------------------------------------------
def load_mlm_model(name: str, attention_dropout: float | None = None):
    """(masked-LM model, tokenizer, source, whether the MLM head is new).

    ``attention_dropout`` overrides the checkpoint's (0 lets training use the fused SDPA
    kernel, as in `train`); logs when the checkpoint has no MLM head of its own.
    """
    from transformers import AutoModelForMaskedLM

    from reviewsense.modeling import load_tokenizer, resolve_model, speed_overrides

    src = resolve_model(name)
    tokenizer = load_tokenizer(name)
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(
            src,
            use_safetensors=True,
            output_loading_info=True,
            **speed_overrides(src, attention_dropout),
        )
    except (OSError, ValueError) as e:
        raise ReviewsenseError(f"cannot load '{name}' as a masked-LM encoder: {e}") from None
    new_head = sorted(k for k in info.get("missing_keys", []) if k.startswith("cls."))
    if new_head:
        log.warning(
            "%s has no MLM head: newly initialised %d tensors (%s ...); its first evaluations "
            "measure a random head",
            name,
            len(new_head),
            new_head[0],
        )
    else:
        log.info("%s: MLM head loaded from the checkpoint", name)
    return model, tokenizer, src, bool(new_head)


def head_warmup_callback(model, steps: int | None, new_head: bool):
    """Freeze the encoder for the first steps while a newly initialised MLM head learns, so its
    random gradients do not disturb the pre-trained encoder (auto: 10% of the steps, <= 200)."""
    from transformers import TrainerCallback

    encoder = getattr(model, model.base_model_prefix)

    def set_frozen(frozen: bool) -> None:
        for p in encoder.parameters():
            p.requires_grad_(not frozen)

    class HeadWarmup(TrainerCallback):
        until = 0

        def on_train_begin(self, args, state, control, **kwargs):
            auto = min(200, state.max_steps // 10) if new_head else 0
            self.until = auto if steps is None else steps
            if state.global_step < self.until:
                log.info("encoder frozen until step %d while the MLM head warms up", self.until)
                set_frozen(True)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == self.until and self.until > 0:
                log.info("step %d: encoder unfrozen", state.global_step)
                set_frozen(False)

    return HeadWarmup()


def save_encoder(mlm_model, src: str, out: Path) -> None:
    """Save the trained encoder as a plain encoder model (keeping the source's pooler)."""
    from transformers import AutoModel

    base = AutoModel.from_pretrained(src, use_safetensors=True)
    prefix = mlm_model.base_model_prefix  # "bert"
    encoder = getattr(mlm_model, prefix).state_dict()
    missing, unexpected = base.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise ReviewsenseError(
            f"encoder weights do not match {src}: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}"
        )
    base.save_pretrained(out, safe_serialization=True)


# -- loss on the masked positions only -------------------------------------------------------
def has_masked_head(model) -> bool:
    """BERT-family masked LMs: an encoder under ``base_model_prefix`` and the head as ``cls``."""
    return hasattr(model, "cls") and hasattr(model, getattr(model, "base_model_prefix", ""))


def masked_lm_loss(model, inputs: dict):
    """Mean cross-entropy over the labelled positions, the head run on those positions only.

    Args:
        model: a BERT-family masked LM (:func:`has_masked_head`).
        inputs: ``input_ids`` / ``attention_mask`` [batch, width] and ``labels`` [batch, width]
            (:data:`IGNORE` where nothing is scored).
    Returns:
        (loss, number of scored positions); the loss is 0 (with a gradient path) when no
        position is scored.
    """
    import torch.nn.functional as F

    labels = inputs["labels"]  # [B, L]
    encoder_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = getattr(model, model.base_model_prefix)(**encoder_inputs)[0]  # [B, L, H]
    scored = labels != IGNORE  # [B, L]
    logits = model.cls(hidden[scored])  # [M, V], M = scored positions
    if logits.shape[0] == 0:
        return hidden.sum() * 0.0, 0
    return F.cross_entropy(logits.float(), labels[scored]), int(logits.shape[0])


def masked_head_trainer(trainer_cls):
    """``trainer_cls`` whose loss is :func:`masked_lm_loss` for BERT-family masked LMs.

    The submodules are called directly, not through ``model.forward``, so the Trainer's mixed
    precision (applied by wrapping ``forward``) is re-applied here with ``torch.autocast``.
    Other models keep the Trainer's own loss.
    """
    import torch

    class MaskedHeadTrainer(trainer_cls):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inner = self.accelerator.unwrap_model(model)
            if not has_masked_head(inner):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            dtype = torch.bfloat16 if self.args.bf16 else torch.float16
            device = next(inner.parameters()).device.type
            with torch.autocast(device, dtype=dtype, enabled=self.args.bf16 or self.args.fp16):
                loss, _ = masked_lm_loss(inner, inputs)
            return (loss, {"loss": loss}) if return_outputs else loss

    MaskedHeadTrainer.__name__ = MaskedHeadTrainer.__qualname__ = trainer_cls.__name__
    return MaskedHeadTrainer
