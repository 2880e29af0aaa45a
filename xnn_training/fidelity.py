"""The xNN's fidelity report (the paper's Table 1): faithfulness, sparsity, orthogonality.

One row per explained class and a row with category ``"overall"``; accuracies and fractions in
[0, 1]. Columns:

- ``images``: test images of the class;
- ``dnn_accuracy`` / ``xnn_accuracy``: on those images; the xNN prediction is the argmax after
  replacing the DNN's logits of the explained classes by the xNN scores;
- ``rmse``: xNN score vs DNN logit of the class over all test images (each xNN is a
  one-against-all regressor); ``score_range``: max - min of that logit over the test images;
- ``mean_significant``: significant X-features per image of the class (fewest positive terms
  w_i x_i covering 90% of the positive score); ``mean_active``: X-features > 0 per image;
- ``mean_abs_cos``: mean |cos| over pairs of the class's X-features (vectors over the images).

The overall row pools images (accuracies, mean_significant, mean_active), takes the root of
the mean squared error over classes (rmse), and averages score_range and mean_abs_cos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from xnn_training.significant import significant_features
from xnn_training.xnn import XNN

__all__ = ["COLUMNS", "fidelity_report", "print_fidelity", "write_fidelity"]

COLUMNS = [
    "category",
    "images",
    "dnn_accuracy",
    "xnn_accuracy",
    "rmse",
    "score_range",
    "mean_significant",
    "mean_active",
    "mean_abs_cos",
]


@torch.no_grad()
def fidelity_report(
    xnn: XNN,
    features: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    columns: Sequence[int] | torch.Tensor,
    names: Sequence[str],
    threshold: float = 0.9,
) -> pd.DataFrame:
    """The fidelity table of ``xnn`` on test ``features`` (N, d) with DNN ``logits`` (N, n).

    ``columns[j]`` is the DNN logit explained by the xNN's class j, named ``names[j]``;
    ``labels`` are the true classes as DNN logit indices.
    """
    xnn.eval()
    columns = torch.as_tensor(columns, dtype=torch.long)
    x_features = xnn.encode(features.float())  # (C, N, k)
    scores = xnn.score(x_features)  # (N, C)
    terms = xnn.terms(x_features)
    mixed = logits.clone().float()
    mixed[:, columns] = scores
    dnn_right = logits.argmax(1) == labels
    xnn_right = mixed.argmax(1) == labels
    rows, squared, ranges, cosines, counts, actives, chosen_all = [], [], [], [], [], [], []
    for j, (column, name) in enumerate(zip(columns.tolist(), names, strict=True)):
        target = logits[:, column].float()
        mse = float(((scores[:, j] - target) ** 2).mean())
        chosen = labels == column
        significant = torch.from_numpy(
            significant_features(terms[j, chosen], threshold).counts
        ).float()
        active = (x_features[j, chosen] > 0).sum(-1).float()
        unit = F.normalize(x_features[j].T, dim=-1)  # X-features as vectors over the images
        cos = (unit @ unit.T).abs()
        k = cos.shape[0]
        abs_cos = float((cos.sum() - cos.diagonal().sum()) / (k * (k - 1))) if k > 1 else 0.0
        rows.append(
            {
                "category": name,
                "images": int(chosen.sum()),
                "dnn_accuracy": float(dnn_right[chosen].float().mean()),
                "xnn_accuracy": float(xnn_right[chosen].float().mean()),
                "rmse": mse**0.5,
                "score_range": float(target.max() - target.min()),
                "mean_significant": float(significant.mean()),
                "mean_active": float(active.mean()),
                "mean_abs_cos": abs_cos,
            }
        )
        squared.append(mse)
        ranges.append(rows[-1]["score_range"])
        cosines.append(abs_cos)
        counts.append(significant)
        actives.append(active)
        chosen_all.append(chosen)
    pooled = torch.stack(chosen_all).any(0)
    rows.append(
        {
            "category": "overall",
            "images": int(pooled.sum()),
            "dnn_accuracy": float(dnn_right[pooled].float().mean()),
            "xnn_accuracy": float(xnn_right[pooled].float().mean()),
            "rmse": (sum(squared) / len(squared)) ** 0.5,
            "score_range": sum(ranges) / len(ranges),
            "mean_significant": float(torch.cat(counts).mean()),
            "mean_active": float(torch.cat(actives).mean()),
            "mean_abs_cos": sum(cosines) / len(cosines),
        }
    )
    return pd.DataFrame(rows, columns=COLUMNS)


def write_fidelity(report: pd.DataFrame, path: str | Path) -> Path:
    """Write the report as CSV (docs/formats.md); return the path."""
    report.to_csv(path, index=False, float_format="%.6f")
    return Path(path)


def print_fidelity(report: pd.DataFrame) -> None:
    """Print the report as a table, with rmse also as a percentage of the score range."""
    shown = report.copy()
    shown["rmse_%range"] = 100 * shown["rmse"] / shown["score_range"]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
