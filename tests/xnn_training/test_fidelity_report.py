"""The fidelity report's significant-X-feature count and its table."""

import itertools

import torch

from xnn_training.fidelity import COLUMNS, _significant_counts, fidelity_report
from xnn_training.xnn import XNN


def _brute_force(row, threshold=0.9):
    positive = [v for v in row if v > 0]
    total = sum(positive)
    if total <= 0:
        return 0
    for size in range(1, len(positive) + 1):
        if any(sum(c) >= threshold * total for c in itertools.combinations(positive, size)):
            return size
    raise AssertionError


def test_significant_count_is_the_minimum_subset():
    g = torch.Generator().manual_seed(0)
    terms = torch.randn(300, 5, generator=g, dtype=torch.float64)
    terms[:5] = -terms[:5].abs()  # rows without positive terms
    expected = [_brute_force(row) for row in terms.tolist()]
    assert _significant_counts(terms).tolist() == expected


def test_report_rows_and_perfect_copy():
    torch.manual_seed(0)
    xnn = XNN(6, 3, k=2, hidden=(4,)).eval()
    features = torch.rand(20, 6)
    scores = xnn(features)["scores"].detach()
    labels = scores.argmax(1)
    report = fidelity_report(xnn, features, scores, labels, [0, 1, 2], ["a", "b", "c"])
    assert list(report.columns) == COLUMNS
    assert report["category"].tolist() == ["a", "b", "c", "overall"]
    assert report["rmse"].max() < 1e-5  # the DNN logits are the xNN's own scores
    assert report["xnn_accuracy"].equals(report["dnn_accuracy"])
