"""The xNN's fidelity report: the paper's Table 1 plus faithfulness, sparsity, orthogonality.

One row per explained class and a row with category ``"overall"``; accuracies and fractions in
[0, 1]. ``images``, the accuracies and ``mean_significant`` are the paper's Table 1, computed by
:func:`xnn_training.training.table_one.table_one` (as the bundle's ``summary.csv`` is). Columns:

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
``rmse`` differs from Table 1's ``xnn_rmse`` (over the class's own images only): each xNN is a
one-against-all regressor of its class's logit, so its fidelity is measured on every image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from xnn_training.defaults import SIGNIFICANT_SHARE
from xnn_training.maps.significant import significant_features
from xnn_training.nets.xnn import XNN
from xnn_training.training.table_one import table_one

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
    threshold: float = SIGNIFICANT_SHARE,
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
    images, rows, squared, actives = [], [], [], []
    for j, (column, name) in enumerate(zip(columns.tolist(), names, strict=True)):
        target = logits[:, column].float()
        mse = float(((scores[:, j] - target) ** 2).mean())
        chosen = labels == column
        # One row per image of the class, as in a bundle's images.csv, for Table 1.
        images.append(
            pd.DataFrame(
                {
                    "category": name,
                    "true_category": labels[chosen].cpu().numpy().astype(str),
                    "prediction": logits[chosen].argmax(1).cpu().numpy().astype(str),
                    "xnn_prediction": mixed[chosen].argmax(1).cpu().numpy().astype(str),
                    "n_significant": significant_features(terms[j, chosen], threshold).counts,
                }
            )
        )
        active = (x_features[j, chosen] > 0).sum(-1).float()
        unit = F.normalize(x_features[j].T, dim=-1)  # X-features as vectors over the images
        cos = (unit @ unit.T).abs()
        k = cos.shape[0]
        abs_cos = float((cos.sum() - cos.diagonal().sum()) / (k * (k - 1))) if k > 1 else 0.0
        rows.append(
            {
                "rmse": mse**0.5,
                "score_range": float(target.max() - target.min()),
                "mean_active": float(active.mean()),
                "mean_abs_cos": abs_cos,
            }
        )
        squared.append(mse)
        actives.append(active)
    rows.append(
        {
            "rmse": (sum(squared) / len(squared)) ** 0.5,
            "score_range": sum(r["score_range"] for r in rows) / len(rows),
            "mean_active": float(torch.cat(actives).mean()),
            "mean_abs_cos": sum(r["mean_abs_cos"] for r in rows) / len(rows),
        }
    )
    paper = table_one(pd.concat(images, ignore_index=True), categories=names)
    report = paper.rename(columns={"mean_per_image": "mean_significant"}).assign(
        **pd.DataFrame(rows).to_dict("list")
    )
    return report.loc[:, COLUMNS]


def write_fidelity(report: pd.DataFrame, path: str | Path) -> Path:
    """Write the report as CSV (docs/formats.md); return the path."""
    report.to_csv(path, index=False, float_format="%.6f")
    return Path(path)


def print_fidelity(report: pd.DataFrame) -> None:
    """Print the report as a table, with rmse also as a percentage of the score range."""
    shown = report.copy()
    shown["rmse_%range"] = 100 * shown["rmse"] / shown["score_range"]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
