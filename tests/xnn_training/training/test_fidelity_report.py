"""The fidelity report's significant-X-feature count and its table."""

import torch

from xnn_training.nets.xnn import XNN
from xnn_training.training.fidelity import COLUMNS, fidelity_report


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
