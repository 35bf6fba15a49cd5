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
