"""The held-out report of distillation: agreement, accuracy and the paired difference."""

from __future__ import annotations

from reviewsense.distill_eval import agreement_report


def test_agreement_report_counts_chance_agreement():
    import numpy as np

    teacher = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=float)
    report = agreement_report(teacher.copy(), teacher, np.array([1, 1, 0, 1]))
    assert report["agreement"] == 1.0 and report["chance_agreement"] == 0.5
    assert report["kappa"] == 1.0 and report["teacher_accuracy"] == 0.75
    assert report["accuracy_difference"]["difference"] == 0.0
    student = teacher.copy()
    student[0] = [1, 0]  # wrong where the teacher is right
    diff = agreement_report(student, teacher, np.array([1, 1, 0, 1]))["accuracy_difference"]
    assert diff["difference"] == -0.25 and diff["discordant_student_wrong_teacher_right"] == 1
    lo, hi = diff["interval"]
    assert lo < -0.25 < 0 < hi  # one review in four is no evidence


def test_speed_report_times_both_models_in_alternating_rounds():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from reviewsense import distill_eval

    def bert(layers: int):
        torch.manual_seed(0)
        cfg = BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=2,
        )
        return BertForSequenceClassification(cfg).eval()

    seqs = [[1] + [5 + i % 50] * (8 + i % 20) + [2] for i in range(40)]
    rep = distill_eval.speed_report(bert(4), bert(1), seqs, 0, "fp32")
    assert rep["reviews"] == 40 and len(rep["speedup_rounds"]) == distill_eval.SPEED_ROUNDS
    assert rep["teacher_reviews_per_s"] > 0 and rep["student_reviews_per_s"] > 0
    assert rep["speedup"] == sorted(rep["speedup_rounds"])[1]  # the median of 3 rounds
