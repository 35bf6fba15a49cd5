"""Trainer plumbing shared by pretrain and distill."""

from __future__ import annotations

import math

from reviewsense.trainer_utils import cleanup_checkpoints, pad_batch, perplexity


def test_pad_batch_pads_right_to_a_multiple_of_16():
    out = pad_batch([[1, 2, 3], list(range(1, 18))], value=0)
    assert out.shape == (2, 32)
    assert out[0, :4].tolist() == [1, 2, 3, 0] and out[1, 16].item() == 17


def test_perplexity_is_exp_loss_and_none_when_not_finite():
    assert perplexity(0.0) == 1.0
    assert math.isclose(perplexity(2.0), math.exp(2.0))
    assert perplexity(float("nan")) is None and perplexity(None) is None


def test_cleanup_checkpoints_removes_unless_kept(tmp_path):
    ckpt = tmp_path / "checkpoints" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    cleanup_checkpoints(tmp_path / "checkpoints", keep=True)
    assert ckpt.is_dir()
    cleanup_checkpoints(tmp_path / "checkpoints", keep=False)
    assert not (tmp_path / "checkpoints").exists()


def test_length_bucket_order_is_a_permutation_of_homogeneous_batches_in_random_order():
    import random

    import torch

    from reviewsense.trainer_utils import BUCKET_BATCHES, length_bucket_order

    rng = random.Random(0)
    lengths = [rng.randint(10, 256) for _ in range(2 * 4 * BUCKET_BATCHES + 5)]  # short tail
    order = length_bucket_order(lengths, 4, generator=torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(len(lengths)))
    batches = [order[i : i + 4] for i in range(0, len(order), 4)]
    assert len(batches[-1]) == 1  # the one short batch comes last
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches[:-1]]
    assert sum(spread) / len(spread) < 12  # similar lengths in a batch (random batches: ~120)
    # ...but not swept from long to short as the Trainer's group_by_length does: batch maxima
    # fall in a bucket's sorted order only by chance
    maxima = [max(lengths[i] for i in b) for b in batches[:-1]]
    falls = sum(a >= b for a, b in zip(maxima, maxima[1:], strict=False))
    assert 0.3 < falls / (len(maxima) - 1) < 0.7


def test_trainer_with_length_buckets_feeds_them_to_training_only_for_group_by_length(tmp_path):
    """Through the real DataLoader path: the Trainer drops the unused "length" column before it
    asks for the sampler, so the lengths must come from the token ids."""
    import datasets
    import torch
    from transformers import Trainer, TrainingArguments

    from reviewsense.trainer_utils import with_length_buckets

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def forward(self, input_ids=None, labels=None):  # "length" is not an input
            return {"loss": self.w(input_ids.float()).mean()}

    n = 16 * 8 * 3
    ds = datasets.Dataset.from_dict(
        {
            "input_ids": [[1] * (1 + (i * 37) % 200) for i in range(n)],
            "labels": [0] * n,
            "length": [1 + (i * 37) % 200 for i in range(n)],
        }
    )

    def batch_lengths(strategy: str) -> list[list[int]]:
        args = TrainingArguments(
            str(tmp_path),
            per_device_train_batch_size=8,
            train_sampling_strategy=strategy,
            use_cpu=True,
            report_to="none",
        )
        trainer = with_length_buckets(Trainer)(
            model=Model(),
            args=args,
            train_dataset=ds,
            data_collator=lambda rows: {"n": torch.tensor([len(r["input_ids"]) for r in rows])},
        )
        assert type(trainer).__name__ == "Trainer"
        return [b["n"].tolist() for b in trainer.get_train_dataloader()]

    bucketed = batch_lengths("group_by_length")
    assert sorted(x for b in bucketed for x in b) == sorted(ds["length"])
    spread = [max(b) - min(b) for b in bucketed]
    assert sum(spread) / len(spread) < 20  # similar lengths (random batches: ~150)
    maxima = [max(b) for b in bucketed]
    falls = sum(a >= b for a, b in zip(maxima, maxima[1:], strict=False)) / (len(maxima) - 1)
    # batch order random, not swept long to short (the Trainer's own sampler: 0.94 here)
    assert 0.2 < falls < 0.8
    shuffled = batch_lengths("random")
    assert sum(max(b) - min(b) for b in shuffled) / len(shuffled) > 60


def test_trained_here_counts_only_this_process_steps():
    from reviewsense.trainer_utils import trained_here

    assert trained_here(100, None, 16, 50.0, 0.3) == {
        "steps_this_run": 100,
        "examples_per_s": 32.0,
        "train_loss": 0.3,
    }
    # resumed at step 60: 40 steps x 16 examples in 20 s
    assert trained_here(100, 60, 16, 20.0, 0.2)["examples_per_s"] == 32.0
    # resumed at the last step: nothing trained here, no speed, no loss (the Trainer says 0.0)
    assert trained_here(100, 100, 16, 0.9, 0.0) == {
        "steps_this_run": 0,
        "examples_per_s": None,
        "train_loss": None,
    }
