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


def test_trainer_with_length_buckets_uses_them_only_for_group_by_length(tmp_path):
    import datasets
    from transformers import Trainer, TrainingArguments

    from reviewsense.trainer_utils import with_length_buckets

    ds = datasets.Dataset.from_dict({"input_ids": [[1] * n for n in range(1, 41)]})
    ds = ds.add_column("length", list(range(1, 41)))
    cls = with_length_buckets(Trainer)
    assert cls.__name__ == "Trainer"

    def sampler(strategy):
        args = TrainingArguments(
            str(tmp_path),
            per_device_train_batch_size=4,
            train_sampling_strategy=strategy,
            use_cpu=True,
            report_to="none",
        )
        import torch

        trainer = cls(model=torch.nn.Linear(1, 1), args=args, train_dataset=ds)
        return trainer._get_train_sampler()

    bucketed = sampler("group_by_length")
    assert type(bucketed).__name__ == "LengthBuckets" and len(bucketed) == 40
    assert sorted(bucketed) == list(range(40))
    assert type(sampler("random")).__name__ == "RandomSampler"
